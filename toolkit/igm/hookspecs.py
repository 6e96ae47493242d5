"""The plugin hooks: what a plugin may add to igm.

A plugin is a module (found through the ``igm`` entry-point group) with functions decorated by
``@igm.hookimpl`` and named after one of the hooks below. Each hook receives a ``register``
callback; call it once per component: ``register("my-model", MyModel)``. The core's own
models, divergences, data sources, metrics and trainer register through these same hooks.

This module imports nothing heavy: ``igm --help`` and plugin discovery must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from igm.data import DataSource
    from igm.divergences import Divergence
    from igm.metrics import Metric
    from igm.models import Model
    from igm.trainer import Trainer

hookspec = pluggy.HookspecMarker("igm")
hookimpl = pluggy.HookimplMarker("igm")

Register = Callable[[str, Any], None]


@hookspec
def register_models(register: Callable[[str, type[Model]], None]) -> None:
    """Register model families: ``register(name, ModelSubclass)``.

    The class has a ``Config`` dataclass and is built as ``Model(config, data_info)``.
    """


@hookspec
def register_divergences(register: Callable[[str, type[Divergence]], None]) -> None:
    """Register divergences: ``register(name, DivergenceSubclass)``, built as ``cls(config)``."""


@hookspec
def register_datasets(register: Callable[[str, Callable[[str | None, int], DataSource]], None]) -> None:
    """Register data sources: ``register(name, factory)``.

    ``factory(arg, seed)`` returns a DataSource; ``arg`` is the text after ``name:`` in the
    user's ``--data`` spec (``None`` when absent).
    """


@hookspec
def register_metrics(register: Callable[[str, Metric], None]) -> None:
    """Register metrics: ``register(name, metric)``; see :class:`igm.metrics.Metric`."""


@hookspec
def register_trainers(register: Callable[[str, type[Trainer]], None]) -> None:
    """Register trainers: ``register(name, TrainerSubclass)``, built like :class:`igm.Trainer`."""


HOOKS = ("register_models", "register_divergences", "register_datasets", "register_metrics", "register_trainers")
KINDS = {hook: hook.removeprefix("register_") for hook in HOOKS}  # hook name -> registry kind
