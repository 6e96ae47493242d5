"""``--data folder:PATH``: PNG/JPEG files read with Pillow, class folders as labels, decoded once."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igm.data import describe, open_data
from igm.errors import DataError

folder_mod = importlib.import_module("igm.data.folder")  # igm.data.folder is also the source function


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IGM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def gray(value: np.ndarray) -> Image.Image:
    return Image.fromarray(value.astype(np.uint8), mode="L")


def make_classes(root: Path, classes: dict[str, int], side: int = 6, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """``n`` gray PNGs per class folder, pixel values class-dependent; returns the arrays written."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    for c, (name, n) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 200, (side, side)) + 5 * c
            gray(a).save(root / name / f"{i:03d}.png")
            written.setdefault(name, []).append(a.astype(np.uint8))
    return written


def test_class_folders_become_labels_in_sorted_order(tmp_path: Path) -> None:
    written = make_classes(tmp_path / "pets", {"dog": 3, "cat": 2, "emu": 1})
    (tmp_path / "pets" / "README.txt").write_text("not an image")
    source = open_data(f"folder:{tmp_path / 'pets'}")
    info = source.info
    assert (info.kind, info.event_shape, info.num_classes) == ("image", (1, 6, 6), 3)
    assert info.class_values == ("cat", "dog", "emu") and not info.binary
    x, y = source.split("train")
    assert y.tolist() == [0, 0, 1, 1, 1, 2]  # cat, cat, dog x3, emu
    expected = np.stack(written["cat"] + written["dog"] + written["emu"])
    assert torch.allclose(x[:, 0], torch.from_numpy(expected).float() / 255)
    assert source.split("test") is None
    assert info.class_index("dog") == 1
    line = describe(source)
    assert "6 train examples, image (1, 6, 6), uint8 scaled by 1/255 to [0, 1]" in line
    assert "3 classes: cat, dog, emu" in line


def test_rgb_jpeg_unlabelled_and_a_bare_folder_spec(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (5, 7, 3)).astype(np.uint8), "RGB").save(root / f"p{i}.jpg", quality=95)
    info = open_data(str(root)).info
    assert info.name == f"folder:{root}" and info.event_shape == (3, 5, 7) and info.num_classes is None
    forced = open_data(f"folder:{root},mode=gray").info
    assert forced.event_shape == (1, 5, 7)


def test_sizes_must_agree_unless_a_size_is_chosen(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(3):
        gray(np.full((8, 8), 40 * i + 10)).save(root / f"a{i}.png")
    gray(np.full((4, 6), 100)).save(root / "small.png")
    with pytest.raises(DataError, match=r"different sizes: 8x8 \(3 files\), 4x6 \(1 files\); choose one with --data folder:.*,size=8x8"):
        open_data(f"folder:{root}")
    x, _ = open_data(f"folder:{root},size=4").split("train")
    assert x.shape == (4, 1, 4, 4)
    assert torch.allclose(x[3, 0], torch.full((4, 4), 100 / 255))  # a constant image stays constant
    assert open_data(f"folder:{root},size=3x5").info.event_shape == (1, 3, 5)


def test_unreadable_files_are_named_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    make_classes(root, {"a": 2, "b": 2})
    (root / "a" / "bad.png").write_bytes(b"not a png")
    (root / "b" / "half.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match=r"^2 file\(s\) in .* cannot be read as PNG or JPEG images: a/bad.png, b/half.jpg; fix or remove them$"):
        open_data(f"folder:{root}")


def test_decoded_once_then_read_from_the_cache_until_a_file_changes(tmp_path: Path, cache: Path, monkeypatch) -> None:
    root = tmp_path / "c"
    make_classes(root, {"x": 2, "y": 2})
    first = open_data(f"folder:{root}").split("train")[0]
    assert len(list((cache / "folders").glob("*.safetensors"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_mod, "decode", no_decoding)
    assert torch.equal(open_data(f"folder:{root}").split("train")[0], first)
    target = root / "x" / "000.png"
    gray(np.full((6, 6), 7)).save(target)
    os.utime(target, ns=(1, 1))  # a new mtime and content
    monkeypatch.undo()
    monkeypatch.setenv("IGM_CACHE_DIR", str(cache))
    again = open_data(f"folder:{root}").split("train")[0]
    assert torch.allclose(again[0, 0], torch.full((6, 6), 7 / 255))
    assert len(list((cache / "folders").glob("*.safetensors"))) == 2


def test_train_and_test_subfolders_are_the_splits(tmp_path: Path) -> None:
    make_classes(tmp_path / "d" / "train", {"0": 3, "3": 3, "9": 3})
    make_classes(tmp_path / "d" / "test", {"3": 2, "9": 1}, seed=1)
    source = open_data(f"folder:{tmp_path / 'd'}")
    assert source.info.class_values == ("0", "3", "9")
    assert source.split("test")[1].tolist() == [1, 1, 2]
    make_classes(tmp_path / "e" / "train", {"a": 2})
    make_classes(tmp_path / "e" / "test", {"b": 2})
    with pytest.raises(DataError, match=r"labels the training split lacks \(b\)"):
        open_data(f"folder:{tmp_path / 'e'}")


def test_black_and_white_images_are_binary(tmp_path: Path) -> None:
    root = tmp_path / "bw"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.random((6, 6)) < 0.5).save(root / f"{i}.png")  # mode "1"
    source = open_data(f"folder:{root}")
    assert source.info.binary and set(source.split("train")[0].unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("folder", "needs a path"),
        ("folder:{root}/nowhere", "does not exist: give a folder of PNG or JPEG files"),
        ("folder:{root}/empty", "holds no .png, .jpg or .jpeg files"),
        ("folder:{root}/empty,size=0", "size='0' is not a size"),
        ("folder:{root}/empty,colour=red", "unknown folder option 'colour=red'"),
        ("npz:{root}/empty", "is a directory, not a file: for a folder of images use --data folder:"),
    ],
)
def test_folder_errors(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=message):
        open_data(spec.format(root=tmp_path))


def test_image_families_train_on_a_folder(tmp_path: Path) -> None:
    from igm.testing import check_model

    make_classes(tmp_path / "f", {"a": 8, "b": 8}, side=8)
    source = open_data(f"folder:{tmp_path / 'f'}")
    for family in ("vae", "cgan"):
        check_model(family, source, tmp_path / family)
