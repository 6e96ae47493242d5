"""The ``npz:PATH`` data source: a user's own arrays, plus the safe ``.npz`` reader other sources share.

The archive holds ``x`` (or ``x_train``), and optionally ``y``/``y_train``, ``x_test`` and
``y_test``. Shapes: (N, D) is a vector ("points" when D <= 2), (N, H, W) a one-channel image,
(N, C, H, W) an image. The reading rule (:func:`read_values`), for any dtype:

* data whose values are all 0 or 1 (bool, any integer or float dtype) is kept as it is and
  marked binary, so Bernoulli likelihoods and the binary fast paths apply (uint8 data of 0 and
  255 only is scaled to 0/1 and marked binary too);
* other uint8 data (0..255) is scaled by 1/255 to [0, 1]; the result must not be nearly constant
  (a spread under 0.05, as uint8 values 0..3 would give, is an error: scale it yourself);
* other integers and floats (up to float64) are kept as they are;
* a constant training array, an array with no examples or no values, NaN or infinite values and
  other dtypes (complex, longdouble, strings, objects) are errors.

Labels are integers (or whole-number floats), not negative; the classes are the labels present
(:func:`encode_classes`): labels 0, 1, 3, 9 make a 4-class problem and the checkpoint keeps the
mapping back to them. Files are read with ``allow_pickle=False`` (object arrays are refused,
never unpickled) after every member's ``.npy`` header has been read and its size checked against
:func:`igm.limits.memory_budget`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from igm.data.base import DataInfo, Kind, TensorSource, spec_name
from igm.errors import DataError
from igm.limits import check_allocation

MIN_SPREAD = 0.05  # uint8 data spanning less than this after scaling is refused


def read_npz(path: Path | str, source: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, read without pickle; DataError when it cannot be."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        hint = f": for a folder of images use --data folder:{path}" if path.is_dir() else ""
        raise DataError(f"the '{source}' data source: {path} {what}{hint or ': give the path of an .npz file'}")
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
    headers = npz_headers(path)
    need = sum(_nbytes(shape, dtype) + _nbytes(shape, np.dtype(np.float32)) for shape, dtype in headers.values())
    sizes = ", ".join(f"{name} {shape}" for name, (shape, _) in headers.items())
    check_allocation(need, f"reading {path} ({sizes})", "use a smaller file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_npz(path, exc) from None
    try:
        with loaded:  # only the .npy members: anything else in the archive is never read
            return {name: loaded[name] for name in headers}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _not_npz(path, exc) from None


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every ``.npy`` member, from its header alone (no data is read)."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                out[member.filename[: -len(".npy")]] = (tuple(int(d) for d in shape), dtype)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise _not_npz(path, exc) from None
    for name, (_, dtype) in out.items():
        if dtype.hasobject:
            raise _not_npz(path, ValueError(f"member {name} needs pickle"))
    return out


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    n = 1
    for d in shape:
        n *= d  # Python ints: a lying header cannot overflow the product
    return n * dtype.itemsize


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


def read_values(x: np.ndarray, path: Path | str, name: str, train: bool = True) -> tuple[Tensor, bool]:
    """The reading rule (module docstring): ``x`` as float32 and whether its values are all 0 or 1."""
    kind = x.dtype.kind
    if kind not in "biuf" or (kind == "f" and x.dtype.itemsize > 8):
        raise DataError(
            f"array '{name}' in {path} has dtype {x.dtype}: store real numbers (uint8, bool, integers, float32 or float64)"
        )
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"array '{name}' in {path} holds no examples (shape {x.shape}): store at least one")
    if x.size == 0:
        raise DataError(f"array '{name}' in {path} has shape {x.shape}: its examples hold no values")
    if kind == "f" and not np.isfinite(x).all():
        raise DataError(f"array '{name}' in {path} holds NaN or infinite values: remove or replace them")
    low, high = x.min().item(), x.max().item()
    if train and low == high and x.shape[0] > 1:
        raise DataError(f"every value of '{name}' in {path} is {low}: constant data leaves nothing to learn")
    kept = low >= 0 and high <= 1 and bool(((x == 0) | (x == 1)).all())  # 0/1 data: kept, any dtype
    out = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    if x.dtype == np.uint8 and not kept:
        if train and (high - low) / 255 < MIN_SPREAD:
            raise DataError(
                f"'{name}' in {path} is uint8 with values {low}..{high}, nearly constant once scaled by 1/255 "
                f"to [0, 1]: store 0/1 for binary data, or floats scaled as you want them (igm keeps floats as they are)"
            )
        out.div_(255.0)
    elif not torch.isfinite(out).all():
        raise DataError(f"array '{name}' in {path} holds values too large for float32: rescale them")
    binary = kept or bool(((out == 0) | (out == 1)).all())  # uint8 0/255 reads as 0/1 too
    return out, binary


def check_labels(y: np.ndarray, n: int, path: Path | str, name: str) -> None:
    """DataError unless ``y`` holds ``n`` labels that are whole numbers, none negative."""
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"labels '{name}' in {path} have shape {y.shape} but there are {n} examples: "
            f"store one integer label per example, shape ({n},)"
        )
    if y.dtype.kind == "f" and y.dtype.itemsize <= 8:
        if not (np.isfinite(y).all() and (np.floor(y) == y).all()):
            raise DataError(f"labels '{name}' in {path} include non-integer values: store integer class labels")
    elif y.dtype.kind not in "biu":
        raise DataError(f"labels '{name}' in {path} have dtype {y.dtype}: store integer class labels")
    if n and y.min() < 0:
        raise DataError(f"labels '{name}' in {path} include negative values: use labels 0, 1, 2, ...")


def encode_classes(
    y_train: np.ndarray, y_test: np.ndarray | None, where: str
) -> tuple[Tensor, Tensor | None, tuple[Hashable, ...]]:
    """Labels -> classes 0..K-1 in sorted label order: int64 (N,) per split and the label of each class.

    The classes are the labels present in the training split; a test label with no training
    example is an error (a model cannot learn a class it never saw).
    """
    values, train_index = np.unique(y_train, return_inverse=True)
    labels = tuple(_plain(v) for v in values)
    test = None
    if y_test is not None:
        known = {v: i for i, v in enumerate(labels)}
        test_values, test_index = np.unique(y_test, return_inverse=True)
        tv = [_plain(v) for v in test_values]
        unseen = [v for v in tv if v not in known]
        if unseen:
            raise DataError(
                f"the test split of {where} has labels the training split lacks ({', '.join(map(str, unseen[:5]))}): "
                "a model cannot learn a class it never saw; give each such class training examples or drop them"
            )
        test = torch.from_numpy(np.array([known[v] for v in tv], dtype=np.int64)[test_index.reshape(-1)])
    return torch.from_numpy(train_index.reshape(-1).astype(np.int64)), test, labels


def _plain(value: object) -> Hashable:
    """A numpy scalar label as a JSON-able Python value: 3.0 -> 3, np.str_('cat') -> 'cat'."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) else value  # type: ignore[return-value]


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


def value_range(tensors: list[Tensor]) -> tuple[float, float] | None:
    """(0, 1) when every value lies in [0, 1] (scaled uint8 always does), else None (unbounded)."""
    inside = all(float(t.min()) >= 0.0 and float(t.max()) <= 1.0 for t in tensors if t.numel())
    return (0.0, 1.0) if inside else None


def source_info(
    name: str,
    x_train: Tensor,
    kind: Kind,
    tensors: list[Tensor],
    binary: bool,
    labels: tuple[Hashable, ...] | None,
    extra: dict[str, object],
) -> DataInfo:
    """The DataInfo of a user's data: classes with their labels (None when they are 0..K-1), binary mark."""
    extra = {**extra, **({"binarized": "static"} if binary else {})}
    class_values = None if labels is None or list(labels) == list(range(len(labels))) else tuple(labels)
    return DataInfo(
        name,
        tuple(x_train.shape[1:]),
        num_classes=None if labels is None else len(labels),
        value_range=value_range(tensors),
        kind=kind,
        extra=extra,
        class_values=class_values,  # type: ignore[arg-type]
    )


def npz(arg: str | None, seed: int) -> TensorSource:
    """Your own arrays from npz:PATH (x, optional y, x_test, y_test); see the reading rules."""
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
    values, binary = read_values(x_raw, arg, x_name)
    x_train, kind = as_examples(values, arg, x_name)
    y_found = _first(arrays, "y", "y_train")
    if y_found is not None:
        check_labels(y_found[1], x_train.shape[0], arg, y_found[0])

    x_test = None
    tensors = [x_train]
    if "x_test" in arrays:
        test_values, test_binary = read_values(arrays["x_test"], arg, "x_test", train=False)
        x_test, _ = as_examples(test_values, arg, "x_test")
        binary = binary and test_binary
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"x_test in {arg} has examples of shape {tuple(x_test.shape[1:])} but {x_name} has "
                f"{tuple(x_train.shape[1:])}: both splits must have the same example shape"
            )
        tensors.append(x_test)
    elif "y_test" in arrays:
        raise DataError(f"{arg} holds y_test but no x_test: add the x_test array or drop y_test")
    y_test_raw = arrays.get("y_test") if x_test is not None else None
    if y_test_raw is not None:
        check_labels(y_test_raw, x_test.shape[0], arg, "y_test")  # type: ignore[union-attr]
        if y_found is None:
            raise DataError(f"{arg} labels its test split (y_test) but not its training split: add y or drop y_test")

    y_train = y_test = labels = None
    if y_found is not None:
        y_train, y_test, labels = encode_classes(y_found[1], y_test_raw, arg)
    info = source_info(
        spec_name("npz", arg), x_train, kind, tensors, binary, labels, {"dtype": str(x_raw.dtype)}
    )
    return TensorSource(info, x_train, y_train, x_test, y_test)
