"""Mode coverage on Gaussian-mixture data (BENCHMARKS.md Q1, the SIG paper's and PacGAN's protocol).

Each generated sample goes to its nearest mixture mean; it is *high quality* when that distance
is below 3 std. A mode is *captured* when it holds more than half its fair share (n / K) of the
high-quality samples; the PacGAN rule counts a mode when at least one of the high-quality
samples among the first 2,500 falls in it. *KL* = KL(P_g || uniform) over the K modes, with P_g
the histogram of the high-quality samples (natural log). Exact samples from the mixture give
K modes, HQ = 1 − e^(−4.5) ≈ 0.989 in 2-D, and KL ≈ 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from igm.errors import DataError
from igm.metrics.base import Metric

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model


def mode_coverage(x: Tensor, means: Tensor, std: float, pacgan_n: int = 2500) -> dict[str, float | None]:
    """Q1 scores of samples ``x`` (n, D) against mixture ``means`` (K, D) with component ``std``."""
    x, means = x.double(), means.double().to(x.device)
    n, k = x.shape[0], means.shape[0]
    dist, nearest = torch.cdist(x, means).min(dim=1)  # (n,), (n,)
    hq = dist < 3 * std
    counts = torch.bincount(nearest[hq], minlength=k)  # (K,)
    first = torch.bincount(nearest[:pacgan_n][hq[:pacgan_n]], minlength=k)
    total = int(counts.sum())
    kl: float | None = None
    if total:
        p = counts[counts > 0].double() / total
        kl = float((p * (p * k).log()).sum())
    return {
        "modes": int((counts > n / k / 2).sum()),
        "num_modes": k,
        "high_quality": float(hq.double().mean()),
        "kl": kl,
        "modes_pacgan": int((first > 0).sum()),
        "samples": n,
    }


class ModeCoverage(Metric):
    """Modes captured, high-quality share and KL to uniform on a Gaussian-mixture source."""

    name = "modes"
    default_n = 50_000

    def applies_to(self, data: DataInfo) -> bool:
        return "means" in data.extra and "std" in data.extra

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float | None]:
        extra = data.info.extra
        if not self.applies_to(data.info):
            raise DataError(
                f"metric 'modes' needs a Gaussian-mixture data source (grid25, ring8); '{data.info.name}' is not one"
            )
        n = n or self.default_n
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            x = torch.cat([model.generator.sample(min(10_000, n - i), generator=gen).cpu() for i in range(0, n, 10_000)])
        return mode_coverage(x.flatten(1), torch.tensor(extra["means"]), float(extra["std"]))


