"""Toy data sources: 2-D Gaussian mixtures (``grid25``, ``ring8``) and 1-D skewed laws (``lognormal``, ``chi2``).

Each source draws its 100,000 training points once, with a ``torch.Generator`` seeded by the
run's seed, and 50,000 test points with a different, fixed derivation of that seed. The mixture
definitions live in :class:`GaussianMixture` so that metrics (mode coverage, high-quality
fraction) can rebuild them from ``DataInfo.extra`` and use the same means and std.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from igm.data.base import DataInfo, TensorSource, reject_argument, spec_name

NUM_TRAIN = 100_000
NUM_TEST = 50_000


def held_out_seed(seed: int) -> int:
    """The seed of a toy source's test split: a fixed mix of the run's seed, never equal to it."""
    return (seed * 0x9E3779B97F4A7C15 + 0x7E57_DA7A) % 2**64


@dataclass(frozen=True)
class GaussianMixture:
    """An equally weighted mixture of isotropic Gaussians with a shared std."""

    means: tuple[tuple[float, ...], ...]  # K means, each of dimension D
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.means)

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def means_tensor(self) -> Tensor:
        """The means as a float32 tensor of shape (K, D)."""
        return torch.tensor(self.means, dtype=torch.float32)

    def sample_with_modes(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points (n, D) float32 and the mode each was drawn from (n,) int64."""
        modes = torch.randint(self.num_modes, (n,), generator=generator)  # (n,)
        noise = torch.randn(n, self.dim, generator=generator) * self.std  # (n, D)
        return self.means_tensor()[modes] + noise, modes

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points of shape (n, D): a uniformly chosen mode plus Gaussian noise."""
        return self.sample_with_modes(n, generator)[0]

    def nearest(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """For points (N, D): the index of the nearest mean (N,) and the distance to it (N,)."""
        dist = torch.cdist(x.float(), self.means_tensor())  # (N, K)
        d, idx = dist.min(dim=1)
        return idx, d

    def to_extra(self) -> dict[str, Any]:
        """The JSON-able form stored in ``DataInfo.extra``."""
        return {"means": [list(m) for m in self.means], "std": self.std}

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> GaussianMixture:
        """Rebuild a mixture from ``DataInfo.extra`` (as written by :meth:`to_extra`)."""
        return cls(tuple(tuple(float(v) for v in m) for m in extra["means"]), float(extra["std"]))


GRID25 = GaussianMixture(
    tuple((float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)), std=0.05
)
RING8 = GaussianMixture(
    tuple((math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)), std=0.01
)
MIXTURES: dict[str, GaussianMixture] = {"grid25": GRID25, "ring8": RING8}

# 1-D laws as functions of h ~ N(0, 1).
TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {"lognormal": torch.exp, "chi2": torch.square}


def sample_1d(distribution: str, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws of shape (n, 1) from ``"lognormal"`` (exp h) or ``"chi2"`` (h²), h ~ N(0, 1)."""
    h = torch.randn(n, 1, generator=generator)  # (n, 1)
    return TRANSFORMS[distribution](h)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mixture_source(key: str, arg: str | None, seed: int) -> TensorSource:
    """A 2-D mixture source (``grid25`` or ``ring8``) with its splits drawn from ``seed``."""
    reject_argument(key, arg)
    mixture = MIXTURES[key]
    info = DataInfo(
        spec_name(key, arg), (mixture.dim,), mixture.num_modes, kind="points", extra=mixture.to_extra()
    )  # labelled by component: a conditional family (cgan) learns each mode by its label
    x_train, y_train = mixture.sample_with_modes(NUM_TRAIN, _generator(seed))  # (100000, 2), (100000,)
    x_test, y_test = mixture.sample_with_modes(NUM_TEST, _generator(held_out_seed(seed)))  # (50000, 2), (50000,)
    return TensorSource(info, x_train, y_train, x_test, y_test)


def one_dim_source(key: str, arg: str | None, seed: int) -> TensorSource:
    """A 1-D source (``lognormal`` or ``chi2``) with its splits drawn from ``seed``."""
    reject_argument(key, arg)
    info = DataInfo(spec_name(key, arg), (1,), kind="points", extra={"distribution": key})
    x_train = sample_1d(key, NUM_TRAIN, _generator(seed))  # (100000, 1)
    x_test = sample_1d(key, NUM_TEST, _generator(held_out_seed(seed)))  # (50000, 1)
    return TensorSource(info, x_train, None, x_test, None)


def grid25(arg: str | None, seed: int) -> TensorSource:
    """25 Gaussians on {-4, -2, 0, 2, 4}², std 0.05."""
    return mixture_source("grid25", arg, seed)


def ring8(arg: str | None, seed: int) -> TensorSource:
    """8 Gaussians on the unit circle, std 0.01."""
    return mixture_source("ring8", arg, seed)


def lognormal(arg: str | None, seed: int) -> TensorSource:
    """x = exp(h), h ~ N(0, 1)."""
    return one_dim_source("lognormal", arg, seed)


def chi2(arg: str | None, seed: int) -> TensorSource:
    """x = h², h ~ N(0, 1) (chi-squared with one degree of freedom)."""
    return one_dim_source("chi2", arg, seed)
