"""Mode coverage on Gaussian-mixture data (BENCHMARKS.md Q1, the SIG paper's and PacGAN's protocol).

Each generated sample goes to its nearest mixture mean; it is *high quality* when that distance
is below 3 std. A mode is *captured* when the high-quality samples in it number more than half
its fair share of *all* n samples, n / K / 2 (the SIG paper's rule and the protocol's: more than
1,000 of 50,000 on grid25), so a model whose samples are mostly far from every mean captures
few modes however well it spreads. Beside it stand, always: the high-quality share, the PacGAN
count (a mode counts when at least one high-quality sample among the first 2,500 falls in it)
and, when the two counts disagree, a ``note`` saying why in words. *KL* = KL(P_g || uniform)
over the K modes, with P_g the histogram of the high-quality samples (natural log). Exact samples
from the mixture give K modes, HQ = 1 − e^(−4.5) ≈ 0.989 in 2-D, and KL ≈ 0.
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


def mode_coverage(x: Tensor, means: Tensor, std: float, pacgan_n: int = 2500) -> dict[str, float | str | None]:
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
    need = n / k / 2
    modes, pacgan, share = int((counts > need).sum()), int((first > 0).sum()), float(hq.double().mean())
    out: dict[str, float | str | None] = {
        "modes": modes,
        "num_modes": k,
        "min_count": need,
        "high_quality": share,
        "kl": kl,
        "modes_pacgan": pacgan,
        "samples": n,
    }
    if pacgan > modes:
        out["note"] = (
            f"{pacgan} modes hold high-quality samples but only {modes} hold more than {need:g} "
            f"(half their fair share of all {n} samples); {share:.1%} of samples lie within 3 std of a mean"
        )
    return out


class ModeCoverage(Metric):
    """Modes captured, high-quality share and KL to uniform on a Gaussian-mixture source."""

    name = "modes"
    default_n = 50_000

    def applies_to(self, data: DataInfo) -> bool:
        return "means" in data.extra and "std" in data.extra

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float | str | None]:
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


