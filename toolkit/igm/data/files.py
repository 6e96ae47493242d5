"""The ``npz:PATH`` data source: a user's own arrays, plus the safe ``.npz`` reader other sources share.

The archive holds ``x`` (or ``x_train``), and optionally ``y``/``y_train``, ``x_test`` and
``y_test``. Shapes: (N, D) is a vector ("points" when D <= 2), (N, H, W) a one-channel image,
(N, C, H, W) an image. uint8 data is scaled to [0, 1]; float data is kept as it is. Files are
read with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from igm.data.base import DataInfo, Kind, TensorSource, spec_name
from igm.errors import DataError


def read_npz(path: Path | str, source: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, read without pickle; DataError when it cannot be."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"the '{source}' data source: {path} {what}: give the path of an .npz file")
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror}): check its permissions") from None
    if magic.startswith(b"\x93NUMPY"):  # a bare .npy array, not an archive of named arrays
        raise DataError(
            f"{path} holds a single .npy array, not an .npz archive: save it with numpy.savez(path, x=...)"
        )
    if not magic.startswith(b"PK"):  # every .npz is a zip archive
        raise DataError(f"{path} is not an .npz file (not a zip archive): save arrays with numpy.savez")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_npz(path, exc) from None
    try:
        with loaded:  # members that are not .npy arrays come back as bytes: skip them
            arrays = {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _not_npz(path, exc) from None
    return {name: a for name, a in arrays.items() if isinstance(a, np.ndarray)}


def _not_npz(path: Path, exc: Exception) -> DataError:
    if "pickle" in str(exc):
        return DataError(
            f"{path} is not an .npz of plain arrays (it needs pickle, which igm never loads): "
            "save numeric arrays with numpy.savez"
        )
    return DataError(f"{path} is not a valid .npz file ({exc}): save arrays with numpy.savez")


def require_arrays(arrays: dict[str, np.ndarray], required: list[str], path: Path | str) -> None:
    """DataError naming the missing arrays and the expected ones, if any of ``required`` is absent."""
    missing = [name for name in required if name not in arrays]
    if missing:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(
            f"{path} lacks arrays {', '.join(missing)} (found: {found}): "
            f"it must hold {', '.join(required)}"
        )


def to_float(x: np.ndarray, path: Path | str, name: str) -> Tensor:
    """A float32 tensor: uint8 scaled by 1/255, other numeric types kept; DataError on non-finite values."""
    if x.dtype == np.uint8:
        return torch.from_numpy(x).to(torch.float32).div_(255.0)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise DataError(f"array '{name}' in {path} has dtype {x.dtype}: store real numbers (uint8 or float)")
    out = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    if not torch.isfinite(out).all():
        raise DataError(f"array '{name}' in {path} holds NaN or infinite values: remove or replace them")
    return out


def to_labels(y: np.ndarray, n: int, path: Path | str, name: str) -> Tensor:
    """An int64 label tensor (N,); DataError unless ``y`` holds N non-negative integers."""
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"labels '{name}' in {path} have shape {y.shape} but there are {n} examples: "
            f"store one integer label per example, shape ({n},)"
        )
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"labels '{name}' in {path} have dtype {y.dtype}: store integer class labels")
    labels = torch.from_numpy(y.astype(np.int64))
    if n and int(labels.min()) < 0:
        raise DataError(f"labels '{name}' in {path} include negative values: use classes 0, 1, 2, ...")
    return labels


def as_examples(x: Tensor, path: Path | str, name: str) -> tuple[Tensor, Kind]:
    """Reshape an array to (N, *event_shape) and say which kind of data it is."""
    if x.ndim == 1:  # (N,) -> (N, 1): one number per example
        x = rearrange(x, "n -> n 1")
    if x.ndim == 2:  # (N, D)
        return x, ("points" if x.shape[1] <= 2 else "vector")
    if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        return rearrange(x, "n h w -> n 1 h w"), "image"
    if x.ndim == 4:  # (N, C, H, W)
        return x, "image"
    raise DataError(
        f"array '{name}' in {path} has shape {tuple(x.shape)}: use (N, D), (N, H, W) or (N, C, H, W)"
    )


def _first(arrays: dict[str, np.ndarray], *names: str) -> tuple[str, np.ndarray] | None:
    for name in names:
        if name in arrays:
            return name, arrays[name]
    return None


def _value_range(raw: list[np.ndarray], tensors: list[Tensor]) -> tuple[float, float] | None:
    if all(a.dtype == np.uint8 for a in raw):
        return (0.0, 1.0)
    inside = all(t.numel() == 0 or (float(t.min()) >= 0.0 and float(t.max()) <= 1.0) for t in tensors)
    return (0.0, 1.0) if inside else None


def npz(arg: str | None, seed: int) -> TensorSource:
    """Your own arrays from npz:PATH (x, optional y, x_test, y_test)."""
    del seed  # the arrays are fixed; only the stream's shuffling depends on the seed
    if not arg:
        raise DataError("the 'npz' data source needs a path: use --data npz:PATH/file.npz")
    arrays = read_npz(arg, "npz")
    train = _first(arrays, "x", "x_train")
    if train is None:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(
            f"{arg} has no array 'x' (found: {found}): it must hold x (or x_train), "
            "and may hold y, x_test, y_test"
        )
    x_name, x_raw = train
    x_train, kind = as_examples(to_float(x_raw, arg, x_name), arg, x_name)
    labels = _first(arrays, "y", "y_train")
    y_train = None if labels is None else to_labels(labels[1], x_train.shape[0], arg, labels[0])

    x_test = y_test = None
    raw, tensors = [x_raw], [x_train]
    if "x_test" in arrays:
        x_test, _ = as_examples(to_float(arrays["x_test"], arg, "x_test"), arg, "x_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"x_test in {arg} has examples of shape {tuple(x_test.shape[1:])} but {x_name} has "
                f"{tuple(x_train.shape[1:])}: both splits must have the same example shape"
            )
        raw.append(arrays["x_test"])
        tensors.append(x_test)
        if "y_test" in arrays:
            y_test = to_labels(arrays["y_test"], x_test.shape[0], arg, "y_test")
    elif "y_test" in arrays:
        raise DataError(f"{arg} holds y_test but no x_test: add the x_test array or drop y_test")

    all_labels = [y for y in (y_train, y_test) if y is not None and y.numel()]
    num_classes = max(int(y.max()) for y in all_labels) + 1 if all_labels else None
    info = DataInfo(
        spec_name("npz", arg),
        tuple(x_train.shape[1:]),
        num_classes=num_classes,
        value_range=_value_range(raw, tensors),
        kind=kind,
    )
    return TensorSource(info, x_train, y_train, x_test, y_test)
