"""Squared maximum mean discrepancy with a sum of Gaussian kernels (critic-free).

    k(a, b) = Σ_s exp(−‖a − b‖² / (2 s²))
    MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y)

for data x (N, *event) and generator samples y (M, *event). ``unbiased=True`` gives the
U-statistic (the diagonals of K_xx and K_yy are dropped; it can be slightly negative),
``unbiased=False`` the V-statistic (means over full matrices; always ≥ 0). Distances come
from one (N, M) matmul, never an N×M×D tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from igm.divergences._distances import flatten_events, squared_distances
from igm.divergences.base import Critic, Divergence
from igm.errors import ConfigError
from igm.logexp import floored_exp  # a narrow width's terms underflow: torch's slow path


def gaussian_kernel(a: Tensor, b: Tensor, bandwidths: tuple[float, ...]) -> Tensor:
    """Σ_s exp(−‖a_i − b_j‖² / (2 s²)) for a (N, D), b (M, D): shape (N, M)."""
    sq = squared_distances(a, b)  # (N, M)
    # sq · (−1 / 2s²): one pass a width, where −sq / 2s² took two (an mmd step on ring8 in 0.86x the time)
    return sum(floored_exp(sq * (-0.5 / (s * s))) for s in bandwidths)  # type: ignore[return-value]


def mmd2(x: Tensor, y: Tensor, bandwidths: tuple[float, ...], unbiased: bool = True) -> Tensor:
    """Return the scalar squared MMD between x (N, *event) and y (M, *event)."""
    x, y = flatten_events(x), flatten_events(y)  # (N, D), (M, D)
    n, m = x.shape[0], y.shape[0]
    if unbiased and (n < 2 or m < 2):
        raise ValueError(f"the unbiased MMD needs at least 2 samples per side, got {n} and {m}")
    k_xx = gaussian_kernel(x, x, bandwidths)  # (N, N)
    k_yy = gaussian_kernel(y, y, bandwidths)  # (M, M)
    k_xy = gaussian_kernel(x, y, bandwidths)  # (N, M)
    if unbiased:
        xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    else:
        xx, yy = k_xx.mean(), k_yy.mean()
    return xx + yy - 2.0 * k_xy.mean()


@dataclass
class MMDConfig:
    bandwidths: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # kernel widths s
    unbiased: bool = True  # U-statistic (True) or V-statistic (False)

    def __post_init__(self) -> None:
        self.bandwidths = tuple(float(s) for s in self.bandwidths)
        if not self.bandwidths or not all(s > 0.0 for s in self.bandwidths):
            raise ConfigError(
                f"bandwidths must be a non-empty list of positive numbers, got {self.bandwidths}"
            )


class MMD(Divergence):
    """Squared MMD with a sum of Gaussian kernels (critic-free)."""

    name = "mmd"
    needs_critic = False
    Config = MMDConfig

    def generator_loss(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return MMD²(real, fake) (minimised by the generator)."""
        return mmd2(real, fake, self.config.bandwidths, self.config.unbiased)

    def estimate(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return MMD²(real, fake), the same value as the generator loss."""
        return self.generator_loss(critic, real, fake)
