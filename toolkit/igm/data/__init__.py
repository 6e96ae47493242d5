"""Data sources: the base API and the built-in sources, by name.

``BUILTIN_DATASETS`` maps a source name to a factory called as ``factory(arg, seed)``, where
``arg`` is the text after the first ":" of the user's spec (None when there is none) and
``seed`` is the run's seed. Importing this package imports only torch, numpy and einops:
scikit-learn and torchvision are imported by the sources that need them, when they are built.
"""

from __future__ import annotations

from collections.abc import Callable

from igm.data.base import (
    Batch,
    BatchStream,
    DataInfo,
    DataSource,
    ShuffledStream,
    TensorSource,
    reject_argument,
    spec_name,
)
from igm.data.binarized import BinarizedSource, BinarizedStream, binarize, binarized_digits, binarized_mnist
from igm.data.digits import digits
from igm.data.files import npz
from igm.data.mnist import StackedMnistSource, StackedStream, mnist, stacked_mnist
from igm.data.toy import GRID25, RING8, GaussianMixture, chi2, grid25, lognormal, ring8

DatasetFactory = Callable[[str | None, int], DataSource]

BUILTIN_DATASETS: dict[str, DatasetFactory] = {
    "grid25": grid25,
    "ring8": ring8,
    "lognormal": lognormal,
    "chi2": chi2,
    "digits": digits,
    "mnist": mnist,
    "stacked-mnist": stacked_mnist,
    "binarized-mnist": binarized_mnist,
    "binarized-digits": binarized_digits,
    "npz": npz,
}


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"npz:/tmp/a.npz"`` -> ``("npz", "/tmp/a.npz")``; ``"grid25"`` -> ``("grid25", None)``."""
    name, sep, arg = spec.partition(":")
    return name, (arg if sep else None)


def open_data(spec: str, seed: int = 0) -> DataSource:
    """The data source a user's ``--data`` spec names, resolved through the registry.

    A bare path ending in ``.npz`` is read as ``npz:PATH``.
    """
    from igm.registry import get_registry

    name, arg = split_spec(spec)
    registry = get_registry()
    if name not in registry.components["datasets"] and spec.endswith(".npz"):
        name, arg = "npz", spec
    return registry.get("datasets", name)(arg, seed)


__all__ = [
    "BUILTIN_DATASETS",
    "BinarizedSource",
    "BinarizedStream",
    "binarize",
    "GRID25",
    "RING8",
    "Batch",
    "BatchStream",
    "DataInfo",
    "DataSource",
    "DatasetFactory",
    "GaussianMixture",
    "ShuffledStream",
    "StackedMnistSource",
    "StackedStream",
    "TensorSource",
    "open_data",
    "reject_argument",
    "spec_name",
    "split_spec",
]
