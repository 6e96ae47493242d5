"""Data sources: the base API and the built-in sources, by name.

``BUILTIN_DATASETS`` maps a source name to a factory called as ``factory(arg, seed)``, where
``arg`` is the text after the first ":" of the user's spec (None when there is none) and
``seed`` is the run's seed. Importing this package imports only torch, numpy and einops:
scikit-learn and torchvision are imported by the sources that need them, when they are built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from igm.data.base import (
    Batch,
    BatchStream,
    DataInfo,
    DataSource,
    ShuffledStream,
    TensorSource,
    describe,
    reject_argument,
    spec_name,
)
from igm.data.binarized import BinarizedSource, BinarizedStream, binarize, binarized_digits, binarized_mnist
from igm.data.digits import digits
from igm.data.files import npz
from igm.data.folder import folder
from igm.data.mnist import StackedMnistSource, StackedStream, mnist, stacked_mnist
from igm.data.toy import GRID25, RING8, GaussianMixture, chi2, grid25, lognormal, ring8
from igm.errors import DataError

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
    "folder": folder,
}


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"npz:data/a.npz"`` -> ``("npz", "data/a.npz")``; ``"grid25"`` -> ``("grid25", None)``."""
    name, sep, arg = spec.partition(":")
    return name, (arg if sep else None)


def open_data(spec: str, seed: int = 0) -> DataSource:
    """The data source a user's ``--data`` spec names, resolved through the registry.

    A bare path ending in ``.npz`` is read as ``npz:PATH``, a bare folder as ``folder:PATH``.
    The source's ``info.resolved`` is the spec with its path made absolute (when it names one).
    """
    from dataclasses import replace

    from igm.registry import get_registry

    name, arg = split_spec(spec)
    registry = get_registry()
    if name not in registry.components["datasets"]:
        if spec.endswith(".npz"):
            name, arg = "npz", spec
        elif Path(spec).expanduser().is_dir():
            name, arg = "folder", spec
    source = registry.get("datasets", name)(arg, seed)
    resolved = resolve_path(name, arg)
    if resolved is not None and getattr(source, "info", None) is not None:
        source.info = replace(source.info, resolved=resolved)
    return source


def resolve_path(name: str, arg: str | None) -> str | None:
    """``name:ARG`` with the longest leading part of ARG that exists on disk made absolute, or None.

    ``("npz", "../d/x.npz")`` -> ``"npz:/home/me/d/x.npz"``; options after a comma stay as they
    are (``folder:imgs,size=32`` -> ``folder:/abs/imgs,size=32``).
    """
    if not arg:
        return None
    cuts = [len(arg)] + [i for i in range(len(arg) - 1, 0, -1) if arg[i] == ","]
    for cut in cuts:
        path = Path(arg[:cut]).expanduser()
        if path.exists():
            return spec_name(name, str(path.resolve()) + arg[cut:])
    return None


def reopen_data(info: DataInfo, seed: int = 0) -> DataSource:
    """The data a checkpoint was trained on, from its absolute path first, then the spec as typed.

    DataError naming ``--data`` when neither opens (the data moved, or another machine).
    """
    errors = []
    for spec in dict.fromkeys(s for s in (info.resolved, info.name) if s):
        try:
            return open_data(spec, seed)
        except DataError as exc:
            errors.append(str(exc))
    where = f" (stored as {info.resolved})" if info.resolved and info.resolved != info.name else ""
    raise DataError(
        f"cannot open the data this checkpoint was trained on, '{info.name}'{where}: {errors[-1]}; "
        "name it with --data SOURCE"
    )


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
    "describe",
    "folder",
    "npz",
    "open_data",
    "reopen_data",
    "resolve_path",
    "reject_argument",
    "spec_name",
    "split_spec",
]
