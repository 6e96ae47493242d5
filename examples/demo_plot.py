"""Tiny Pillow helpers the seed demos share: titled panels side by side, and a line/dot plot.

igm draws its own pictures with Pillow (``igm.images``: scatter, histogram, image grid); the
demos put several of them in one PNG with a title each, and draw one x-y plot, without
matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

TEXT = (40, 40, 40)
GRID = (225, 225, 225)
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def titled(img: Image.Image, title: str, lines: Sequence[str] = ()) -> Image.Image:
    """``img`` below a white band holding ``title`` and any further text lines."""
    band = 16 * (1 + len(lines)) + 8
    out = Image.new("RGB", (img.width, img.height + band), "white")
    draw = ImageDraw.Draw(out)
    for i, text in enumerate([title, *lines]):
        draw.text((8, 4 + 16 * i), text, fill=TEXT)
    out.paste(img.convert("RGB"), (0, band))
    return out


def side_by_side(images: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Images in one row on white, top-aligned."""
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (width, max(im.height for im in images)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out


@dataclass
class Series:
    """One curve or set of markers of :func:`plot`."""

    x: Sequence[float]
    y: Sequence[float]
    label: str  # "" keeps it out of the legend
    color: tuple[int, int, int] = COLORS[0]
    style: str = "line"  # line | dots | squares


def plot(series: Sequence[Series], xlim: tuple[float, float], ylim: tuple[float, float],
         xlabel: str = "", ylabel: str = "", size: tuple[int, int] = (560, 420)) -> Image.Image:
    """A light-grid x-y plot with a legend in the top-left corner."""
    w, h = size
    left, right, top, bottom = 48, 12, 12, 36
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - xlim[0]) / (xlim[1] - xlim[0]) * (w - left - right),
                h - bottom - (y - ylim[0]) / (ylim[1] - ylim[0]) * (h - top - bottom))

    for i in range(6):  # grid and tick labels
        fx, fy = xlim[0] + i * (xlim[1] - xlim[0]) / 5, ylim[0] + i * (ylim[1] - ylim[0]) / 5
        draw.line([px(fx, ylim[0]), px(fx, ylim[1])], fill=GRID)
        draw.line([px(xlim[0], fy), px(xlim[1], fy)], fill=GRID)
        draw.text((px(fx, ylim[0])[0] - 10, h - bottom + 4), f"{fx:.2g}", fill=TEXT)
        draw.text((4, px(xlim[0], fy)[1] - 6), f"{fy:.2g}", fill=TEXT)
    draw.text((w // 2 - 4 * len(xlabel), h - 16), xlabel, fill=TEXT)
    draw.text((left + 4, top), ylabel, fill=TEXT)
    for k, s in enumerate(series):
        pts = [px(a, b) for a, b in zip(s.x, s.y)]
        if s.style == "line" and len(pts) > 1:
            draw.line(pts, fill=s.color, width=2)
        for cx, cy in pts if s.style != "line" else []:
            r = 4 if s.style == "dots" else 3
            if s.style == "dots":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=s.color)
            else:
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], outline=s.color, width=2)
        if not s.label:
            continue
        ly = top + 16 + 14 * sum(1 for t in series[:k] if t.label)
        draw.line([(left + 8, ly + 6), (left + 24, ly + 6)], fill=s.color, width=3)
        draw.text((left + 30, ly), s.label, fill=TEXT)
    return img
