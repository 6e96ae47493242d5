"""The ``folder:PATH`` data source: a folder of PNG and JPEG files, read with Pillow.

Spec: ``folder:PATH[,size=S|HxW][,mode=gray|rgb]``.

* Layout (the ImageFolder convention): image files directly in PATH are unlabelled data; class
  subfolders (``PATH/cat/*.png``, ``PATH/dog/*.jpg``, searched recursively) make labelled data,
  the folder names being the labels. ``PATH/train/`` and ``PATH/test/``, each laid out so, give a
  training and a test split (the test split is what ``nll``, ``classifier-fid`` and the judged
  metrics score); otherwise every image trains and there is no test split.
* Channels: one (grayscale) when every image is gray, else three (RGB; alpha is dropped);
  ``mode=gray`` or ``mode=rgb`` forces it.
* Size: ``size=32`` (or ``size=24x32``, height x width) resizes every image (bilinear); without
  it the files' own size, which must then agree (the error names the sizes found).
* Values: the npz reading rule for uint8 (:func:`igm.data.files.read_values`): scaled to [0, 1],
  and marked binary when every pixel is black or white.
* Cache: the decoded uint8 images are stored once as safetensors under
  ``<cache dir>/folders/<key>.safetensors``, the key hashing every file's name, size and mtime
  and the options, so a changed, added or removed file decodes the folder again.
* Unreadable files are named, all in one line, and nothing is trained.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from igm.data.base import TensorSource, spec_name
from igm.data.cache import cache_dir
from igm.data.files import as_examples, encode_classes, read_values, source_info
from igm.errors import DataError
from igm.limits import check_allocation

SUFFIXES = (".png", ".jpg", ".jpeg")
FORMAT = "1"
MODES = ("gray", "rgb")


@dataclass(frozen=True)
class FolderSpec:
    """The parsed ``folder:`` argument."""

    path: Path
    size: tuple[int, int] | None = None  # (height, width)
    mode: str | None = None  # "gray", "rgb" or None (decided from the images)


def parse_spec(arg: str | None) -> FolderSpec:
    """``"imgs,size=32,mode=gray"`` -> FolderSpec(Path("imgs"), (32, 32), "gray")."""
    if not arg:
        raise DataError("the 'folder' data source needs a path: use --data folder:PATH[,size=32][,mode=gray|rgb]")
    path, *options = arg.split(",")
    size: tuple[int, int] | None = None
    mode = None
    for option in options:
        key, _, value = option.partition("=")
        key, value = key.strip(), value.strip().lower()
        if key == "size":
            try:
                h, _, w = value.partition("x")
                size = (int(h), int(w or h))
            except ValueError:
                size = (0, 0)
            if min(size) < 1:
                raise DataError(f"folder option size={value!r} is not a size: use size=32 or size=HEIGHTxWIDTH")
        elif key == "mode":
            if value not in MODES:
                raise DataError(f"folder option mode={value!r}: use mode=gray or mode=rgb")
            mode = value
        else:
            raise DataError(f"unknown folder option {option!r}: use folder:PATH[,size=32][,mode=gray|rgb]")
    return FolderSpec(Path(path).expanduser(), size, mode)


def _images_in(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def list_split(root: Path) -> tuple[list[Path], list[str] | None]:
    """The image files of one split and their class names (None when unlabelled)."""
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _images_in(p))
    if loose and classes:
        raise DataError(
            f"{root} holds both image files ({loose[0].name}, ...) and class folders ({classes[0].name}, ...): "
            "move the loose files into a class folder, or the class folders' files out"
        )
    if not classes:
        return loose, None
    files: list[Path] = []
    names: list[str] = []
    for folder in classes:
        found = _images_in(folder)
        files += found
        names += [folder.name] * len(found)
    return files, names


def _split_roots(root: Path) -> dict[str, Path]:
    train, test = root / "train", root / "test"
    if train.is_dir() and test.is_dir():
        return {"train": train, "test": test}
    return {"train": root}


def cache_key(spec: FolderSpec, files: dict[str, list[Path]]) -> str:
    """sha256 of the options and every file's path (relative to the folder), size and mtime."""
    listing = []
    for split, paths in files.items():
        for p in paths:
            st = p.stat()
            listing.append([split, str(p.relative_to(spec.path)), st.st_size, st.st_mtime_ns])
    text = json.dumps({"format": FORMAT, "size": spec.size, "mode": spec.mode, "files": listing}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def decode(files: list[Path], spec: FolderSpec, where: Path) -> tuple[np.ndarray, list[str]]:
    """The images as uint8 (N, H, W, 3) RGB and the names of the files that could not be read."""
    from PIL import Image

    images: list[np.ndarray] = []
    bad: list[str] = []
    sizes: dict[tuple[int, int], int] = {}
    for p in files:
        try:
            with Image.open(p) as img:
                img.load()
                rgb = img.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            bad.append(str(p.relative_to(where)))
            continue
        if spec.size is not None and (rgb.height, rgb.width) != spec.size:
            rgb = rgb.resize((spec.size[1], spec.size[0]), Image.Resampling.BILINEAR)
        sizes[(rgb.height, rgb.width)] = sizes.get((rgb.height, rgb.width), 0) + 1
        images.append(np.asarray(rgb, dtype=np.uint8))
    if bad:
        shown = ", ".join(bad[:10]) + (f", ... ({len(bad)} in all)" if len(bad) > 10 else "")
        raise DataError(f"{len(bad)} file(s) in {where} cannot be read as PNG or JPEG images: {shown}; fix or remove them")
    if len(sizes) > 1:
        found = ", ".join(f"{h}x{w} ({n} files)" for (h, w), n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        (h, w), _ = max(sizes.items(), key=lambda kv: kv[1])
        raise DataError(
            f"the images in {where} have different sizes: {found}; choose one with --data folder:{where},size={h}x{w}"
        )
    return np.stack(images), bad


def _expected_bytes(files: list[Path], spec: FolderSpec) -> int:
    """Bytes the decoded images will take (RGB uint8 plus float32), from the files' headers."""
    from PIL import Image

    total = 0
    for p in files:
        if spec.size is not None:
            h, w = spec.size
        else:
            try:
                with Image.open(p) as img:
                    w, h = img.size
            except (OSError, SyntaxError, ValueError):
                continue  # decode() names it
        total += h * w * 3 * (1 + 4)
    return total


def load_folder(spec: FolderSpec) -> dict[str, tuple[Tensor, list[str] | None]]:
    """Every split's uint8 images (N, C, H, W) and class names, from the cache or decoded and cached."""
    from igm import checkpoint
    from igm.errors import CheckpointError

    if not spec.path.is_dir():
        what = "is a file, not a folder" if spec.path.is_file() else "does not exist"
        raise DataError(f"the 'folder' data source: {spec.path} {what}: give a folder of PNG or JPEG files")
    listed = {split: list_split(root) for split, root in _split_roots(spec.path).items()}
    files = {split: paths for split, (paths, _) in listed.items()}
    for split, paths in files.items():
        if not paths:
            raise DataError(
                f"{_split_roots(spec.path)[split]} holds no .png, .jpg or .jpeg files: put the images there "
                "(or in one subfolder per class)"
            )
    if (listed["train"][1] is None) != (listed.get("test", listed["train"])[1] is None):
        raise DataError(f"{spec.path}: train/ and test/ must both have class folders, or neither")
    path = cache_dir() / "folders" / f"{cache_key(spec, files)}.safetensors"
    try:
        tensors, meta = checkpoint.read_file(path)
        if meta.get("igm.folder.format") == FORMAT:
            return {
                split: (tensors[f"x_{split}"], json.loads(meta[f"igm.folder.labels_{split}"]))
                for split in files
            }
    except (CheckpointError, KeyError, ValueError):
        pass  # missing or unusable: decode again
    check_allocation(
        _expected_bytes([p for paths in files.values() for p in paths], spec),
        f"decoding the images of {spec.path}",
        f"choose a smaller size (--data folder:{spec.path},size=64)",
    )
    decoded = {split: decode(paths, spec, spec.path)[0] for split, paths in files.items()}
    shapes = {tuple(x.shape[1:3]) for x in decoded.values()}
    if len(shapes) > 1:
        raise DataError(f"train/ and test/ of {spec.path} hold images of different sizes: choose one with ,size=HxW")
    gray = spec.mode == "gray" or (
        spec.mode is None and all(bool((x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()) for x in decoded.values())
    )
    out: dict[str, tuple[Tensor, list[str] | None]] = {}
    for split, x in decoded.items():
        if gray:  # ITU-R 601 luma, as Pillow's convert("L")
            x = np.rint(x @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[..., None]
        out[split] = (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), listed[split][1])
    meta = {"igm.folder.format": FORMAT, "igm.folder.path": str(spec.path)}
    meta.update({f"igm.folder.labels_{split}": json.dumps(names) for split, (_, names) in out.items()})
    try:
        checkpoint.save_tensors(path, {f"x_{split}": x for split, (x, _) in out.items()}, meta)
    except OSError as exc:  # a read-only cache only costs decoding again next time
        print(f"igm: could not cache the decoded images at {path} ({exc}); set IGM_CACHE_DIR", file=sys.stderr)
    return out


def folder(arg: str | None, seed: int) -> TensorSource:
    """PNG/JPEG files in a folder (class subfolders = labels): folder:PATH[,size=S][,mode=gray|rgb]."""
    del seed
    spec = parse_spec(arg)
    splits = load_folder(spec)
    x_raw, names = splits["train"]
    values, binary = read_values(x_raw.numpy(), spec.path, "the images")
    x_train, kind = as_examples(values, spec.path, "images")
    x_test = y_train = y_test = labels = None
    tensors = [x_train]
    if "test" in splits:
        test_values, test_binary = read_values(splits["test"][0].numpy(), spec.path / "test", "the images", train=False)
        x_test, _ = as_examples(test_values, spec.path, "images")
        binary = binary and test_binary
        tensors.append(x_test)
    if names is not None:
        test_names = splits["test"][1] if "test" in splits else None
        y_train, y_test, labels = encode_classes(
            np.array(names), None if test_names is None else np.array(test_names), str(spec.path)
        )
    extra = {"dtype": "uint8", "files": sum(x.shape[0] for x, _ in splits.values())}
    info = source_info(spec_name("folder", arg), x_train, kind, tensors, binary, labels, extra)
    return TensorSource(info, x_train, y_train, x_test, y_test)
