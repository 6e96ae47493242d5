"""``moons[:NOISE]``: two interleaving half circles in 2-D (scikit-learn's make_moons, in torch).

``igm fit lsgan --data moons`` uses noise 0.05; ``--data moons:0.1`` sets it. The training
split (20,000 points) and the test split (5,000) are drawn from the run's seed.
"""

from __future__ import annotations

import math

import torch

from igm import DataError, DataInfo, TensorSource

NUM_TRAIN, NUM_TEST = 20_000, 5_000


def draw_moons(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points (n, 2) on two half circles plus Gaussian noise, and their moon (n,) in {0, 1}."""
    moon = torch.randint(2, (n,), generator=generator)  # (n,)
    angle = math.pi * torch.rand(n, generator=generator)  # (n,)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)
    lower = torch.stack([1.0 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)  # (n, 2)
    x = torch.where(moon[:, None] == 0, upper, lower)
    return x + noise * torch.randn(n, 2, generator=generator), moon


def moons(arg: str | None, seed: int) -> TensorSource:
    """Two interleaving half circles in 2-D, 2 classes ([:NOISE], default 0.05)."""
    try:
        noise = 0.05 if arg is None else float(arg)
    except ValueError:
        noise = -1.0
    if not 0.0 <= noise < 10.0:
        raise DataError(f"moons:{arg}: the argument is the noise level, a number like 0.05 (use --data moons:0.05)")
    name = "moons" if arg is None else f"moons:{arg}"
    info = DataInfo(name, (2,), num_classes=2, kind="points", extra={"noise": noise})
    x, y = draw_moons(NUM_TRAIN, noise, torch.Generator().manual_seed(seed))
    x_test, y_test = draw_moons(NUM_TEST, noise, torch.Generator().manual_seed(seed + 1_000_003))
    return TensorSource(info, x, y, x_test, y_test)
