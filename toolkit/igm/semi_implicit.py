"""The semi-implicit recipe that the ``sig`` and ``gan-si`` families share: bandwidth, anneal, rate.

A semi-implicit family fits the data's likelihood under a mixture of kernels centred at its
generated parameters (:func:`igm.sig_loss`). What it needs beyond the loss:

- :func:`default_sigma`: the kernel's bandwidth when the config leaves it at 0 — the data's own
  component std when the source declares one (the 2-D mixtures), else ``DEFAULT_SIGMA``;
- :func:`generator_rate`: the generator's learning rate when the config leaves it at 0 — 3e-3,
  or 1e-3 for a sharp kernel (σ < ``SHARP_SIGMA``, where 3e-3 diverged on ring8);
- ``POINTS_M``: the generated draws per step in H_M on points when a family's ``M`` is 0;
- :func:`wide_points`, ``WIDE_RATE`` and :func:`default_anneal_share`: on points with a kernel of
  σ ≥ ``SHARP_SIGMA`` (grid25) a faster rate and an anneal over most of the run (benchmarks/README.md,
  Q1, "Faster semi-implicit defaults"); a sharper kernel (ring8) keeps half the run;
- :class:`AnnealedBandwidth`: a mixin for the model that counts generator steps in a buffer
  (saved in checkpoints) and gives :meth:`~AnnealedBandwidth.current_sigma`, the annealed
  bandwidth of :func:`igm.planned_sigma` at that step of a run of ``run_steps``, so a resumed run
  anneals exactly as an unbroken one; its ``plan`` notes a run shorter than the tuned budget.
"""

from __future__ import annotations

from typing import Any

import torch

from igm.data.base import DataInfo
from igm.divergences.sig import DEFAULT_SIGMA, planned_sigma
from igm.models import short_run_note

SHARP_SIGMA = 0.05  # below it a Gaussian kernel is too sharp for the faster rate
FAST_RATE, SLOW_RATE = 3e-3, 1e-3
# sig on grid25 (σ 0.05), seed 0, 10k steps, modes / HQ (benchmarks/README.md, Q1):
WIDE_RATE = 6e-3  # rate for wide_points: 25 / 0.846 against 0.797 at 3e-3; 1.2e-2 left 5 modes empty
WIDE_ANNEAL_SHARE = 0.8  # anneal share for wide_points: with WIDE_RATE 25 / 0.916 (0.5: 0.846)
SHARP_ANNEAL_SHARE = 0.5  # anyone else's (ring8's σ 0.01 was tuned with it)
# H_M's draws per step on points: the (N, M) matrix is a step's cost. Seed 0, one thread, load ~1.8:
# sig grid25 10k 25 / 0.916 in 2m00s (M 1,024: 25 / 0.921 in 3m38s), ring8 12k 8 / 0.924 in 2m23s;
# gan-si grid25 25 / 0.917 in 2m47s (benchmarks/README.md, "Semi-implicit budgets on a quiet thread")
POINTS_M = 512


def default_sigma(data: DataInfo) -> float:
    """The data's own component std when the source declares one (Gaussian mixtures), else ``DEFAULT_SIGMA``."""
    std = data.extra.get("std")
    return float(std) if isinstance(std, (int, float)) and std > 0 else DEFAULT_SIGMA


def generator_rate(sigma: float) -> float:
    """The generator's default rate: ``SLOW_RATE`` for a sharp kernel, else ``FAST_RATE``."""
    return SLOW_RATE if sigma < SHARP_SIGMA else FAST_RATE


def wide_points(sigma: float, data: DataInfo) -> bool:
    """Points (not images) under a kernel of σ ≥ ``SHARP_SIGMA``: where the ``WIDE_*`` defaults apply."""
    return data.kind != "image" and sigma >= SHARP_SIGMA


def default_anneal_share(wide: bool) -> float:
    """The anneal's share of the run when the config leaves it at 0: ``WIDE_ANNEAL_SHARE`` for
    :func:`wide_points` (θ's stranded between modes once the kernel is sharp stay there, so the
    wide kernel lasts longer), else ``SHARP_ANNEAL_SHARE``."""
    return WIDE_ANNEAL_SHARE if wide else SHARP_ANNEAL_SHARE


class AnnealedBandwidth:
    """Mixin for a semi-implicit :class:`igm.Model`: a step buffer and the bandwidth annealed over the run.

    Call :meth:`init_bandwidth` in ``__init__`` (after ``super().__init__``) and
    :meth:`count_step` once per generator step; the config needs the fields that
    :func:`igm.planned_sigma` reads (``sigma``, ``sigma_start``, ``anneal_share``, ``anneal_max``,
    ``anneal_steps``).
    """

    config: Any
    run_steps: int
    training: bool

    def init_bandwidth(self) -> None:
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))  # type: ignore[attr-defined]

    def current_sigma(self) -> float:
        return planned_sigma(self.config, int(self.step), self.run_steps)  # type: ignore[attr-defined]

    def count_step(self) -> None:
        if self.training:
            self.step += 1  # type: ignore[attr-defined]

    def plan(self, steps: int) -> str | None:
        super().plan(steps)  # type: ignore[misc]
        return short_run_note(self, steps)  # type: ignore[arg-type]
