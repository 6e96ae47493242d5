"""Pictures of samples as PIL images: image grids, 2-D scatter plots and 1-D histograms.

Pillow + einops + numpy only (no matplotlib). PIL is imported inside the functions so that
importing this module stays cheap::

    from igm.images import image_grid, scatter, histogram, save_samples

    image_grid(x, nrow=8, scale=4).save("digits.png")       # x (N, C, H, W) in [0, 1]
    scatter(points, reference=means).save("grid25.png")      # points (N, 2)
    histogram(v, density=lognormal_pdf).save("lognormal.png")
    save_samples(x, kind="points", path="out/samples.png")   # picks the picture from kind

``save_samples`` is what the CLI uses: "points" with 2-D events -> scatter, 1-D -> histogram;
"image" -> grid; "vector" -> grid when the dimension is a perfect square, else a histogram of
the first coordinate. Pictures are written atomically (a temporary file, then a rename), so a
PNG is never half written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

if TYPE_CHECKING:
    from PIL import Image

Density = Callable[[np.ndarray], np.ndarray]
ArrayLike = Tensor | np.ndarray | Sequence[Sequence[float]]

POINT_COLOR = (31, 91, 180)
REFERENCE_COLOR = (220, 30, 30)
AXIS_COLOR = (205, 205, 205)
TEXT_COLOR = (110, 110, 110)
BAR_COLOR = (140, 175, 220)
BAR_EDGE = (90, 125, 175)
CURVE_COLOR = (215, 35, 35)
PALETTE = (  # class colours of a labelled scatter
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
QUANTILES = (0.005, 0.995)  # robust plotting range: ignore the outer 0.5% on each side


# --------------------------------------------------------------------------------------------- helpers


def _numpy(x: ArrayLike) -> np.ndarray:
    """Any tensor / array / nested list -> float64 numpy array on the CPU."""
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _robust_range(values: np.ndarray) -> tuple[float, float]:
    """Quantile range of finite ``values``, padded by 5% and never of zero width."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return -1.0, 1.0
    lo, hi = (float(q) for q in np.quantile(v, QUANTILES))
    return _pad_interval(lo, hi)


def _pad_interval(lo: float, hi: float, frac: float = 0.05) -> tuple[float, float]:
    span = hi - lo
    if not span > 1e-9 * (1.0 + abs(lo) + abs(hi)):  # degenerate: all values (nearly) equal
        center = 0.5 * (lo + hi)
        half = 0.5 * max(1.0, 0.1 * abs(center))
        return center - half, center + half
    return lo - frac * span, hi + frac * span


def _fmt(v: float) -> str:
    return f"{v:.3g}"


# --------------------------------------------------------------------------------------------- grid


def image_grid(
    x: Tensor,
    nrow: int | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    pad: int = 2,
    scale: int = 1,
    pad_value: float = 0.5,
) -> Image.Image:
    """Tile images ``x`` (N, C, H, W) (or (N, H, W)) into one picture.

    ``nrow`` is the number of images per row (default ceil(sqrt(N))). Values are clamped to
    ``value_range`` and mapped to 0..255; C == 1 gives mode "L", C == 3 gives "RGB". Each tile
    is upscaled by the integer ``scale`` (nearest neighbour) and ``pad`` pixels of gray
    ``pad_value`` (0 black .. 1 white) separate and surround the tiles, so the picture is
    ``rows * (H*scale + pad) + pad`` by ``nrow * (W*scale + pad) + pad`` pixels.
    """
    from PIL import Image

    t = x.detach().to("cpu", torch.float32)
    if t.ndim == 3:
        t = t[:, None]  # (N, 1, H, W)
    if t.ndim != 4 or t.shape[0] == 0 or t.shape[1] not in (1, 3):
        raise ValueError(
            f"image_grid needs a non-empty (N, C, H, W) tensor with C 1 or 3, got {tuple(x.shape)}"
        )
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    if scale < 1 or pad < 0:
        raise ValueError(f"scale must be >= 1 and pad >= 0, got scale={scale}, pad={pad}")
    n = t.shape[0]
    t = (torch.nan_to_num(t, nan=lo).clamp(lo, hi) - lo) / (hi - lo)  # (N, C, H, W) in [0, 1]
    if scale > 1:
        t = repeat(t, "n c h w -> n c (h s1) (w s2)", s1=scale, s2=scale)  # (N, C, H*s, W*s)

    cols = min(n, nrow if nrow is not None else math.ceil(math.sqrt(n)))
    if cols < 1:
        raise ValueError(f"nrow must be positive, got {nrow}")
    rows = math.ceil(n / cols)
    blank = torch.full((rows * cols - n, *t.shape[1:]), float(pad_value))
    t = torch.cat([t, blank])  # (rows*cols, C, h, w)
    t = torch.nn.functional.pad(t, (pad, 0, pad, 0), value=float(pad_value))  # pad left and top
    grid = rearrange(t, "(r k) c h w -> (r h) (k w) c", r=rows, k=cols)  # (rows*(h+p), cols*(w+p), C)
    grid = torch.nn.functional.pad(grid, (0, 0, 0, pad, 0, pad), value=float(pad_value))  # right, bottom
    pixels = (grid * 255.0).round().to(torch.uint8).numpy()
    if pixels.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))  # mode "L"
    return Image.fromarray(np.ascontiguousarray(pixels))  # mode "RGB"


# --------------------------------------------------------------------------------------------- scatter


def scatter_bounds(
    points: ArrayLike, reference: ArrayLike | None = None
) -> tuple[float, float, float, float]:
    """A square ``(xmin, xmax, ymin, ymax)`` box around the points' 0.5%-99.5% quantiles and
    every reference point, padded by 5% and never of zero width."""
    pts = _numpy(points).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    if len(pts):
        lo, hi = np.quantile(pts, QUANTILES[0], axis=0), np.quantile(pts, QUANTILES[1], axis=0)
    if reference is not None:
        ref = _numpy(reference).reshape(-1, 2)
        ref = ref[np.isfinite(ref).all(axis=1)]
        if len(ref):
            lo, hi = np.minimum(lo, ref.min(axis=0)), np.maximum(hi, ref.max(axis=0))
    if not np.isfinite(lo).all():
        return -1.0, 1.0, -1.0, 1.0
    center, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max())  # equal aspect: one half-width
    a, b = _pad_interval(-half, half)
    return float(center[0] + a), float(center[0] + b), float(center[1] + a), float(center[1] + b)


def scatter(
    points: ArrayLike,
    reference: ArrayLike | None = None,
    size: int = 512,
    bounds: tuple[float, float, float, float] | None = None,
    labels: ArrayLike | None = None,
) -> Image.Image:
    """Square scatter plot of ``points`` (N, 2): small blue dots on white, light axes through 0.

    With ``labels`` (N,) integers, each class gets its own colour (a fixed palette, cycled).

    ``reference`` points (M, 2), e.g. mixture means, are drawn as red crosses on top.
    ``bounds`` is ``(xmin, xmax, ymin, ymax)``; by default :func:`scatter_bounds` (robust to
    outliers, equal aspect). Points outside the bounds are not drawn.
    """
    from PIL import Image, ImageDraw

    pts = _numpy(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"scatter needs points of shape (N, 2), got {tuple(pts.shape)}")
    ref = None if reference is None else _numpy(reference).reshape(-1, 2)
    xmin, xmax, ymin, ymax = bounds if bounds is not None else scatter_bounds(pts, ref)
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax) with max > min, got {bounds}")

    def to_pixels(p: np.ndarray) -> np.ndarray:  # (M, 2) data -> (M, 2) float pixel (col, row)
        col = (p[:, 0] - xmin) / (xmax - xmin) * (size - 1)
        row = (ymax - p[:, 1]) / (ymax - ymin) * (size - 1)
        return np.stack([col, row], axis=1)

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    if xmin < 0 < xmax:  # vertical axis x = 0
        c = to_pixels(np.array([[0.0, 0.0]]))[0, 0]
        draw.line([(c, 0), (c, size - 1)], fill=AXIS_COLOR)
    if ymin < 0 < ymax:  # horizontal axis y = 0
        r = to_pixels(np.array([[0.0, 0.0]]))[0, 1]
        draw.line([(0, r), (size - 1, r)], fill=AXIS_COLOR)
    draw.text((4, size - 14), f"x {_fmt(xmin)}..{_fmt(xmax)}   y {_fmt(ymin)}..{_fmt(ymax)}", fill=TEXT_COLOR)

    canvas = np.array(img)  # (size, size, 3) uint8
    finite = np.isfinite(pts).all(axis=1)
    pix = np.rint(to_pixels(pts[finite])).astype(np.int64)  # (M, 2)
    if labels is None:
        colors = np.broadcast_to(np.array(POINT_COLOR, dtype=np.uint8), (len(pix), 3))
    else:
        lab = _numpy(labels).astype(np.int64).reshape(-1)[finite]
        colors = np.array(PALETTE, dtype=np.uint8)[lab % len(PALETTE)]  # (M, 3)
    for dc, dr in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):  # a 5-pixel "+" dot per point
        c, r = pix[:, 0] + dc, pix[:, 1] + dr
        keep = (c >= 0) & (c < size) & (r >= 0) & (r < size)
        canvas[r[keep], c[keep]] = colors[keep]
    img = Image.fromarray(canvas)

    if ref is not None and len(ref):
        draw = ImageDraw.Draw(img)
        arm = max(3, size // 100)
        for c, r in to_pixels(ref[np.isfinite(ref).all(axis=1)]):
            draw.line([(c - arm, r - arm), (c + arm, r + arm)], fill=REFERENCE_COLOR, width=2)
            draw.line([(c - arm, r + arm), (c + arm, r - arm)], fill=REFERENCE_COLOR, width=2)
    return img


# --------------------------------------------------------------------------------------------- histogram


def histogram(
    values: ArrayLike,
    bins: int = 100,
    density: Density | None = None,
    size: tuple[int, int] = (640, 400),
) -> Image.Image:
    """Histogram of ``values`` (N,) or (N, 1) scaled as a density, with an optional curve.

    The range is the 0.5%-99.5% quantile range padded by 5%; bar heights are
    ``count / (N * bin_width)`` with N all finite samples, so they are comparable to the
    analytic ``density`` (a vectorised pdf, e.g. the lognormal's), drawn in red on top.
    """
    from PIL import Image, ImageDraw

    v = _numpy(values)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"histogram needs values of shape (N,) or (N, 1), got {tuple(v.shape)}")
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("histogram needs at least one finite value")
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    lo, hi = _robust_range(v)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    heights = counts / (v.size * (edges[1] - edges[0]))  # (bins,) density scale

    xs = np.linspace(lo, hi, 512)
    ys = None
    if density is not None:
        with np.errstate(all="ignore"):
            ys = np.asarray(density(xs), dtype=np.float64).reshape(-1)
        if ys.shape != xs.shape:
            raise ValueError(f"density must map an array of shape {xs.shape} to that shape, not {ys.shape}")
    top = float(heights.max())
    if ys is not None and np.isfinite(ys).any():
        curve_max = float(np.nanmax(np.where(np.isfinite(ys), ys, np.nan)))
        # a spike of the curve (e.g. chi-squared with 1 dof at 0) must not flatten the bars
        top = max(top, min(curve_max, 2.0 * top) if top > 0 else curve_max)
    top = 1.05 * top if top > 0 else 1.0

    width, height = size
    left, right, upper, lower = 56, 12, 12, 28  # margins in pixels
    pw, ph = width - left - right, height - upper - lower  # plot area

    def px(x: np.ndarray | float) -> Any:
        return left + (np.asarray(x) - lo) / (hi - lo) * pw

    def py(y: np.ndarray | float) -> Any:
        return upper + ph - np.clip(np.asarray(y) / top, 0.0, 1.0) * ph

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for a, b, h in zip(edges[:-1], edges[1:], heights):
        if h > 0:
            box = [float(px(a)), float(py(h)), float(px(b)), upper + ph]
            draw.rectangle(box, fill=BAR_COLOR, outline=BAR_EDGE)
    draw.line([(left, upper), (left, upper + ph), (left + pw, upper + ph)], fill=AXIS_COLOR)
    if ys is not None:
        ok = np.isfinite(ys)
        cols, rows = px(xs), py(np.where(ok, ys, 0.0))
        start = None
        for i in range(len(xs) + 1):  # draw each finite run of the curve as one polyline
            if i < len(xs) and ok[i]:
                start = i if start is None else start
            elif start is not None:
                if i - start > 1:
                    run = list(zip(cols[start:i].tolist(), rows[start:i].tolist()))
                    draw.line(run, fill=CURVE_COLOR, width=2)
                start = None
    for x in (lo, 0.5 * (lo + hi), hi):  # x tick labels
        draw.text((float(px(x)) - 12, upper + ph + 6), _fmt(x), fill=TEXT_COLOR)
    draw.text((4, upper), _fmt(top), fill=TEXT_COLOR)
    draw.text((4, upper + ph - 10), "0", fill=TEXT_COLOR)
    return img


# --------------------------------------------------------------------------------------------- save


def _auto_value_range(x: Tensor) -> tuple[float, float]:
    """(0, 1) or (-1, 1) when the values fit (with a little slack), else their robust range."""
    finite = x[torch.isfinite(x)]
    if finite.numel() == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= -0.05 and hi <= 1.05:
        return 0.0, 1.0
    if lo >= -1.05 and hi <= 1.05:
        return -1.0, 1.0
    a, b = (float(q) for q in np.quantile(finite.double().numpy(), QUANTILES))
    return (a, b) if b > a else _pad_interval(a, b)


def save_samples(
    x: Tensor,
    kind: str,
    path: str | Path,
    reference: ArrayLike | Density | None = None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save a picture of samples ``x`` (N, *event_shape) as a PNG and return its path.

    ``kind`` is the data kind: "points" (2-D events -> scatter, using the first two
    coordinates if there are more; 1-D -> histogram), "image" (N, C, H, W) -> grid, "vector"
    (N, D) -> grid of sqrt(D) x sqrt(D) images when D > 1 is a perfect square, else a
    histogram of the first coordinate. ``reference`` is drawn when it fits the picture:
    points (M, 2) for a scatter, a density callable for a histogram. ``value_range`` is the
    images' (low, high), guessed from the values when None. Small images are upscaled so
    that tiles are about 32 pixels.
    """
    path = Path(path)
    t = x.detach().to("cpu", torch.float32)
    if t.ndim == 0 or t.shape[0] == 0:
        raise ValueError(f"save_samples needs a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    flat = t.reshape(t.shape[0], -1)  # (N, D)
    density = reference if callable(reference) else None
    points_ref = None if reference is None or callable(reference) else reference

    if kind == "points":
        if flat.shape[1] == 1:
            img = histogram(flat[:, 0], density=density)
        else:
            img = scatter(flat[:, :2], reference=points_ref)
    elif kind == "image":
        if t.ndim not in (3, 4):
            raise ValueError(f"image samples must be (N, C, H, W), got shape {tuple(x.shape)}")
        side = max(t.shape[-2:])
        img = image_grid(t, value_range=value_range or _auto_value_range(t), scale=max(1, 32 // side))
    elif kind == "vector":
        d = flat.shape[1]
        s = math.isqrt(d)
        if d > 1 and s * s == d:
            squares = rearrange(flat, "n (c h w) -> n c h w", c=1, h=s, w=s)  # (N, 1, s, s)
            vr = value_range or _auto_value_range(flat)
            img = image_grid(squares, value_range=vr, scale=max(1, 32 // s))
        else:
            img = histogram(flat[:, 0], density=density)
    else:
        raise ValueError(f"unknown sample kind {kind!r}; choose 'points', 'vector' or 'image'")

    return save_png(img, path)


# --------------------------------------------------------------------------------------------- per class


def class_samples(
    sampler: Any, per_class: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``per_class`` samples of every class from a conditional generator, class by class.

    Returns ``x`` (K * per_class, *event_shape) and its labels (K * per_class,) = 0,0,..,1,1,..
    so that a grid with ``per_class`` images per row has one row per class.
    """
    k = getattr(sampler, "num_classes", None)
    if not k:
        raise ValueError("a per-class grid needs a conditional generator (one trained with labels)")
    if per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    labels = repeat(torch.arange(k), "k -> (k n)", n=per_class)  # (K*n,)
    with torch.no_grad():
        x = sampler.sample(labels.shape[0], labels=labels, generator=generator)
    return x, labels


def class_grid(
    x: Tensor,
    labels: Tensor,
    per_class: int,
    kind: str,
    reference: ArrayLike | None = None,
    value_range: tuple[float, float] | None = None,
) -> Image.Image:
    """The picture of :func:`class_samples`: one row per class for images, colours per class for points."""
    t = x.detach().to("cpu", torch.float32)
    if kind == "points" and t.reshape(t.shape[0], -1).shape[1] >= 2:
        return scatter(t.reshape(t.shape[0], -1)[:, :2], reference=reference, labels=labels)
    if kind == "vector":
        d = t.reshape(t.shape[0], -1).shape[1]
        s = math.isqrt(d)
        if s * s != d:
            raise ValueError(f"a per-class grid of {d}-d vectors needs a square dimension")
        t = rearrange(t.reshape(t.shape[0], -1), "n (c h w) -> n c h w", c=1, h=s, w=s)
    elif kind != "image":
        raise ValueError(f"no per-class picture for {kind!r} samples of shape {tuple(x.shape)}")
    side = max(t.shape[-2:])
    vr = value_range or _auto_value_range(t)
    return image_grid(t, nrow=per_class, value_range=vr, scale=max(1, 32 // side))


def label_rows(img: Image.Image, labels: Sequence[Any]) -> Image.Image:
    """``img`` with a left margin naming each of its ``len(labels)`` equal rows (the user's class labels)."""
    from PIL import Image, ImageDraw

    texts = [str(v) for v in labels]
    draw_probe = ImageDraw.Draw(img)
    width = max(int(draw_probe.textlength(t)) for t in texts) + 6
    out = Image.new(img.mode, (img.width + width, img.height), 255 if img.mode == "L" else (255, 255, 255))
    out.paste(img, (width, 0))
    draw = ImageDraw.Draw(out)
    row = img.height / len(texts)
    for i, text in enumerate(texts):
        draw.text((3, int((i + 0.5) * row) - 5), text, fill=0 if img.mode == "L" else (0, 0, 0))
    return out


def save_class_grid(
    sampler: Any,
    per_class: int,
    kind: str,
    path: str | Path,
    reference: ArrayLike | None = None,
    value_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    class_labels: Sequence[Any] | None = None,
) -> Path:
    """Draw :func:`class_samples` and write :func:`class_grid` to ``path`` (atomically); returns it.

    This is what ``igm sample CHECKPOINT --per-class N --out grid.png`` calls. With
    ``class_labels`` (the data's ``info.labels()``: the user's label of each class) an image
    grid names each row by it.
    """
    x, labels = class_samples(sampler, per_class, generator)
    img = class_grid(x, labels, per_class, kind, reference, value_range)
    if class_labels is not None and kind in ("image", "vector"):
        if len(class_labels) != sampler.num_classes:
            raise ValueError(f"{len(class_labels)} class labels for a generator of {sampler.num_classes} classes")
        img = label_rows(img, class_labels)
    return save_png(img, path)


def save_png(img: Any, path: str | Path) -> Path:
    """Save a PIL image as PNG atomically (igm's one writer, :func:`igm.checkpoint.write_atomic`); returns the path."""
    import io

    from igm.checkpoint import write_atomic

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path = Path(path)
    write_atomic(path, buf.getvalue())
    return path
