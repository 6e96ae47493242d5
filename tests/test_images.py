"""Pictures of samples (igm.images): grid arithmetic, pixel values, scatter, histogram, saving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igm.images import (
    POINT_COLOR,
    REFERENCE_COLOR,
    histogram,
    image_grid,
    save_samples,
    scatter,
    scatter_bounds,
)

# ------------------------------------------------------------------------------------------ image_grid


def test_grid_size_arithmetic():
    img = image_grid(torch.rand(10, 1, 5, 5), nrow=4, pad=2)
    # 4 columns, ceil(10 / 4) = 3 rows; every tile is 5 + 2 pixels plus a 2-pixel border
    assert img.size == (4 * (5 + 2) + 2, 3 * (5 + 2) + 2)
    assert image_grid(torch.rand(10, 1, 5, 5)).size == (4 * 7 + 2, 3 * 7 + 2)  # nrow = ceil(sqrt(10))
    assert image_grid(torch.rand(4, 1, 8, 8), scale=4, pad=2).size == (2 * 34 + 2, 2 * 34 + 2)
    assert image_grid(torch.rand(3, 1, 6, 6), nrow=8, pad=0).size == (18, 6)  # nrow capped at N


def test_grid_modes():
    assert image_grid(torch.rand(4, 1, 6, 6)).mode == "L"
    assert image_grid(torch.rand(4, 6, 6)).mode == "L"
    assert image_grid(torch.rand(4, 3, 6, 6)).mode == "RGB"
    with pytest.raises(ValueError):
        image_grid(torch.rand(4, 2, 6, 6))


def test_grid_pixel_values():
    x = torch.zeros(10, 1, 5, 5)
    x[0] = 1.0  # all-ones tile -> white
    x[1] = 3.0  # clamped to 1
    x[2] = -1.0  # clamped to 0
    px = np.asarray(image_grid(x, nrow=4, pad=2, pad_value=0.5))
    assert px[2:7, 2:7].min() == 255  # tile 0 at rows 2..6, cols 2..6
    assert px[2:7, 9:14].min() == 255  # tile 1
    assert px[2:7, 16:21].max() == 0  # tile 2
    assert px[0, 0] == 128 and px[7, 7] == 128  # padding is mid-gray
    assert (px[16:21, 16:21] == 128).all()  # missing 11th tile (row 2, col 2) is filled like padding

    rgb = torch.zeros(1, 3, 4, 4)
    rgb[0, 0] = 1.0  # pure red in [-1, 1] -> (255, 0, 0); zeros -> mid value
    arr = np.asarray(image_grid(rgb, value_range=(-1.0, 1.0), pad=0))
    assert tuple(arr[1, 1]) == (255, 128, 128)

    up = np.asarray(image_grid(torch.eye(2)[None, None], pad=0, scale=3))
    assert up.shape == (6, 6)
    assert (up[:3, :3] == 255).all() and (up[:3, 3:] == 0).all()


# ------------------------------------------------------------------------------------------ scatter


def test_scatter_marks_near_the_point_only():
    img = scatter(torch.tensor([[0.5, 0.5]]), bounds=(-1.0, 1.0, -1.0, 1.0), size=101)
    assert img.mode == "RGB" and img.size == (101, 101)
    px = np.asarray(img)
    # x = 0.5 -> column 75, y = 0.5 -> row 25 (rows grow downwards)
    assert tuple(px[25, 75]) == POINT_COLOR
    assert tuple(px[25, 76]) == POINT_COLOR
    assert tuple(px[10, 10]) == (255, 255, 255)
    assert tuple(px[25, 90]) == (255, 255, 255)
    assert tuple(px[40, 75]) == (255, 255, 255)
    assert px[50, 20].min() < 255 and tuple(px[50, 20]) != POINT_COLOR  # light horizontal axis y = 0


def test_scatter_reference_markers():
    pts = torch.randn(200, 2) * 0.01
    img = scatter(pts, reference=[[0.8, -0.8]], bounds=(-1.0, 1.0, -1.0, 1.0), size=201)
    px = np.asarray(img)
    assert tuple(px[180, 180]) == REFERENCE_COLOR  # x 0.8 -> col 180, y -0.8 -> row 180


def test_scatter_bounds_robust_and_never_degenerate():
    torch.manual_seed(0)
    pts = torch.cat([torch.randn(2000, 2), torch.tensor([[1e6, -1e6]])])
    xmin, xmax, ymin, ymax = scatter_bounds(pts)
    assert -10 < xmin < -1 and 1 < xmax < 10 and -10 < ymin < -1 and 1 < ymax < 10
    assert np.isclose(xmax - xmin, ymax - ymin)  # equal aspect

    same = torch.full((50, 2), 3.0)
    xmin, xmax, ymin, ymax = scatter_bounds(same)
    assert xmin < 3.0 < xmax and ymin < 3.0 < ymax
    img = np.asarray(scatter(same, size=64))
    assert (img == np.array(POINT_COLOR, dtype=np.uint8)).all(axis=-1).any()

    xmin, xmax, _, _ = scatter_bounds(torch.zeros(5, 2), reference=[[10.0, 0.0]])
    assert xmin < 0 and xmax > 10  # reference points are always inside
    assert scatter_bounds(torch.full((3, 2), float("nan"))) == (-1.0, 1.0, -1.0, 1.0)


# ------------------------------------------------------------------------------------------ histogram


def test_histogram_with_density_curve():
    torch.manual_seed(0)
    v = torch.randn(5000, 1).exp()  # lognormal

    def lognormal_pdf(x: np.ndarray) -> np.ndarray:
        return np.exp(-np.log(x) ** 2 / 2) / (x * np.sqrt(2 * np.pi))  # nan for x <= 0: skipped

    img = histogram(v, bins=50, density=lognormal_pdf, size=(320, 200))
    assert img.size == (320, 200) and img.mode == "RGB"
    px = np.asarray(img).reshape(-1, 3)
    colours = {tuple(c) for c in px}
    assert (215, 35, 35) in colours  # the curve
    assert (140, 175, 220) in colours  # the bars
    assert histogram(torch.full((10,), 2.0)).size == (640, 400)  # constant values still render
    with pytest.raises(ValueError):
        histogram(torch.randn(10, 2))


# ------------------------------------------------------------------------------------------ save_samples


@pytest.mark.parametrize(
    ("x", "kind", "size"),
    [
        (torch.randn(300, 2), "points", (512, 512)),
        (torch.randn(300, 1), "points", (640, 400)),
        (torch.rand(10, 1, 8, 8), "image", (4 * 34 + 2, 3 * 34 + 2)),  # 8x8 upscaled 4x
        (torch.rand(4, 3, 32, 32) * 2 - 1, "image", (2 * 34 + 2, 2 * 34 + 2)),
        (torch.rand(4, 64), "vector", (2 * 34 + 2, 2 * 34 + 2)),  # 64 = 8 x 8
        (torch.randn(100, 5), "vector", (640, 400)),  # not square: histogram of x[:, 0]
    ],
)
def test_save_samples_writes_png(tmp_path: Path, x, kind, size):
    target = tmp_path / "nested" / "samples.png"
    out = save_samples(x, kind, target, reference=[[0.0, 0.0]] if x.shape[-1] == 2 else None)
    assert out == target and target.exists()
    with Image.open(target) as img:
        assert img.format == "PNG"
        assert img.size == size
    assert not list(target.parent.glob("*.tmp"))


def test_save_samples_histogram_density_and_bad_kind(tmp_path: Path):
    pdf = lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    out = save_samples(torch.randn(100), "points", str(tmp_path / "h.png"), reference=pdf)
    with Image.open(out) as img:
        assert img.size == (640, 400)
    with pytest.raises(ValueError, match="kind"):
        save_samples(torch.randn(10, 2), "audio", tmp_path / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png"]


def test_import_does_not_load_pil():
    code = "import sys, igm.images; print('PIL' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_class_grid_rows_are_named_by_the_users_labels(tmp_path: Path):
    from PIL import Image

    from igm.images import save_class_grid

    class Stripes:
        """Class i draws images of value i / 10."""

        num_classes = 3

        def sample(self, n, labels=None, generator=None):
            return (labels.float() / 10)[:, None, None, None].expand(n, 1, 6, 6).clone()

    plain = Image.open(save_class_grid(Stripes(), 4, "image", tmp_path / "a.png", value_range=(0.0, 1.0)))
    named = Image.open(save_class_grid(Stripes(), 4, "image", tmp_path / "b.png", value_range=(0.0, 1.0),
                                       class_labels=["cat", "dog", "emu-9"]))
    margin = named.width - plain.width
    assert margin > 10 and named.height == plain.height
    a, b = np.asarray(plain), np.asarray(named)
    assert np.array_equal(b[:, margin:], a)  # the grid itself is unchanged
    assert (b[:, :margin] < 128).any()  # text drawn in the margin
    with pytest.raises(ValueError, match="2 class labels for a generator of 3 classes"):
        save_class_grid(Stripes(), 4, "image", tmp_path / "c.png", class_labels=["a", "b"])
