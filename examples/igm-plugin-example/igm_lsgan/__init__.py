"""igm-lsgan: an example third-party plugin for igm.

It adds, without touching igm's core:

* divergences ``least-squares`` and ``hinge`` (:mod:`igm_lsgan.divergences`), usable by any
  adversarial family: ``igm fit gan --data ring8 --set divergence=hinge``;
* the model family ``lsgan`` (:mod:`igm_lsgan.model`): ``igm fit lsgan --data grid25``;
* the data source ``moons[:NOISE]`` (:mod:`igm_lsgan.data`);
* the metric ``energy`` (:mod:`igm_lsgan.metric`): ``igm eval CKPT --metric energy``.

igm finds this module through the entry point ``[project.entry-points.igm] lsgan = "igm_lsgan"``
and calls the ``@igm.hookimpl`` functions below with a ``register`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import igm
from igm_lsgan.data import moons
from igm_lsgan.divergences import Hinge, LeastSquares
from igm_lsgan.metric import Energy
from igm_lsgan.model import LSGAN, LSGANConfig

__version__ = "0.1.0"
__all__ = ["LSGAN", "LSGANConfig", "Energy", "Hinge", "LeastSquares", "moons"]


@igm.hookimpl
def register_models(register: Callable[[str, Any], None]) -> None:
    register("lsgan", LSGAN)


@igm.hookimpl
def register_divergences(register: Callable[[str, Any], None]) -> None:
    register("least-squares", LeastSquares)
    register("hinge", Hinge)


@igm.hookimpl
def register_datasets(register: Callable[[str, Any], None]) -> None:
    register("moons", moons)


@igm.hookimpl
def register_metrics(register: Callable[[str, Any], None]) -> None:
    register("energy", Energy())
