"""The core's built-in components, registered through the same hooks as any plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from igm.hookspecs import hookimpl


@hookimpl
def register_divergences(register: Callable[[str, Any], None]) -> None:
    from igm.divergences import BUILTIN_DIVERGENCES

    for name, cls in BUILTIN_DIVERGENCES.items():
        register(name, cls)


@hookimpl
def register_datasets(register: Callable[[str, Any], None]) -> None:
    from igm.data import BUILTIN_DATASETS

    for name, factory in BUILTIN_DATASETS.items():
        register(name, factory)


@hookimpl
def register_metrics(register: Callable[[str, Any], None]) -> None:
    from igm.metrics import BUILTIN_METRICS

    for name, metric in BUILTIN_METRICS.items():
        register(name, metric)


@hookimpl
def register_trainers(register: Callable[[str, Any], None]) -> None:
    from igm.trainer import Trainer

    register("default", Trainer)
