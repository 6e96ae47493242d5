"""Precision, recall, density and coverage (Naeem et al. 2020): which failure a generator has.

FID alone cannot tell mode collapse (samples are good but cover little: low recall and
coverage) from blur (samples cover everything but are poor: low precision and density). With
real features R (N of them), generated features F (M) and k nearest neighbours, each point's
k-NN radius is the distance to its k-th nearest neighbour within its own set:

- precision = share of F inside some real point's k-NN ball;
- recall    = share of R inside some generated point's k-NN ball;
- density   = (1 / kM) Σ_j #{i : F_j inside R_i's ball}   (about 1 when F is distributed as R);
- coverage  = share of R whose own ball holds at least one generated point.

Features are the data themselves for points and vectors, and the data's judge's 128
penultimate features for labelled images (flattened pixels for unlabelled ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from einops import rearrange
from torch import Tensor

from igm.metrics.base import Metric

if TYPE_CHECKING:
    from igm.data import DataSource
    from igm.models import Model

CHUNK = 2048


def _pairwise(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a.double(), b.double())  # (len a, len b)


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each row of ``x`` (N, D) to its k-th nearest other row: (N,)."""
    if k >= x.shape[0]:
        raise ValueError(f"k = {k} needs more than {k} points, got {x.shape[0]}")
    out = [_pairwise(chunk, x).kthvalue(k + 1, dim=1).values for chunk in x.split(CHUNK)]  # +1: itself at 0
    return torch.cat(out)


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D)."""
    real, fake = rearrange(real, "n ... -> n (...)"), rearrange(fake, "m ... -> m (...)")
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    inside_real = torch.zeros(fake.shape[0], dtype=torch.long)  # per fake: real balls holding it
    covered = torch.zeros(real.shape[0], dtype=torch.bool)  # per real: its ball holds a fake
    recalled = torch.zeros(real.shape[0], dtype=torch.bool)  # per real: inside some fake's ball
    for start in range(0, real.shape[0], CHUNK):
        d = _pairwise(real[start : start + CHUNK], fake)  # (n, M)
        in_real_ball = d <= r_real[start : start + CHUNK, None]
        inside_real += in_real_ball.sum(dim=0)
        covered[start : start + CHUNK] = in_real_ball.any(dim=1)
        recalled[start : start + CHUNK] = (d <= r_fake[None, :]).any(dim=1)
    return {
        "precision": float((inside_real > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(inside_real.double().sum() / (k * fake.shape[0])),
        "coverage": float(covered.double().mean()),
    }


class PRDC(Metric):
    """Precision, recall, density and coverage of samples (k-NN; judge features for images)."""

    name = "prdc"
    default_n = 5_000
    k = 5

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        from igm.metrics.classifier import draw, judge_for

        n = n or self.default_n
        split = data.split("test") or data.split("train")
        real = split[0]
        if real.shape[0] > n:
            real = real[torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:n]]
        fake = draw(model, n, seed)
        space = "data"
        if data.info.kind == "image":
            if (data.info.num_classes or 0) >= 2:
                judge = judge_for(data, metric=self.name)
                real, fake, space = judge.features(real), judge.features(fake), "judge features"
            else:
                space = "pixels"
        return {**prdc(real, fake, self.k), "k": self.k, "space": space}
