"""The semi-implicit finite-mixture loss (semi-implicit generators, e.g. SIVI-style models).

The generator outputs likelihood parameters ``θ_1..θ_M`` (not samples); the model is the
mixture ``(1/M) Σ_j p(x | θ_j)`` and its negative log-likelihood on data ``x_1..x_N`` is

    H_M = −(1/N) Σ_i log (1/M) Σ_j p(x_i | θ_j).

The likelihood is ``"gaussian"`` (θ the means, σ the bandwidth) or ``"bernoulli"`` (θ the
probabilities); :func:`igm.likelihoods.pairwise_log_prob` computes every log p(x_i | θ_j) as an
(N, M) matrix by one matmul, never an N×M×D tensor, so the peak memory is O(N·M + (N+M)·D).
Float32 inputs stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from igm.divergences._distances import flatten_events
from igm.divergences.base import Critic, Divergence, full_precision
from igm.errors import ConfigError
from igm.likelihoods import LikelihoodName, pairwise_log_prob
from igm.logexp import log_mean_exp

DEFAULT_SIGMA = 0.1


@full_precision
def sig_loss(
    x: Tensor,
    theta: Tensor,
    sigma: float | Tensor | None = None,
    likelihood: LikelihoodName = "gaussian",
) -> Tensor:
    """Return the scalar ``H_M = −mean_i log (1/M) Σ_j p(x_i | θ_j)``.

    ``x`` is data (N, *event), ``theta`` the generated parameters (M, *event): means for
    ``"gaussian"`` (with standard deviation ``sigma``, default 0.1; a tensor is allowed and
    receives a gradient), probabilities for ``"bernoulli"`` (``sigma`` is ignored).
    """
    if x.shape[1:] != theta.shape[1:]:
        raise ValueError(
            f"x and theta need the same event shape, got {tuple(x.shape)} and {tuple(theta.shape)}"
        )
    if x.shape[0] == 0 or theta.shape[0] == 0:
        raise ValueError("sig_loss needs at least one x and one theta")
    dtype = torch.result_type(x, theta)  # no upcast: float32 stays float32
    x2 = flatten_events(x).to(dtype)  # (N, D)
    t2 = flatten_events(theta).to(dtype)  # (M, D)
    log_p = pairwise_log_prob(x2, t2, likelihood, DEFAULT_SIGMA if sigma is None else sigma)  # (N, M)
    return -log_mean_exp(log_p, dim=1).mean()  # fast where a sharp kernel's terms underflow


def annealed_sigma(step: int, sigma: float, sigma_start: float = 0.0, anneal_steps: int = 0) -> float:
    """A bandwidth schedule: geometric decay from ``sigma_start`` (step 0) to ``sigma`` (from step ``anneal_steps`` on).

    ``sigma_start = 0`` or ``anneal_steps = 0`` means no annealing (always ``sigma``). A wide
    kernel first gives every generated θ a gradient towards the data, however far it lies;
    the kernel then sharpens to the model's own bandwidth. Used by the sig and gan-si families.
    """
    if not sigma_start or not anneal_steps or step >= anneal_steps:
        return sigma
    return sigma_start * (sigma / sigma_start) ** (step / anneal_steps)


def anneal_length(anneal_steps: int, anneal_share: float, run_steps: int, anneal_max: int = 0) -> int:
    """Steps of a bandwidth anneal: ``anneal_steps`` when set, else ``anneal_share`` of the run's
    ``run_steps``, at most ``anneal_max`` of them (0: no cap)."""
    if anneal_steps:
        return anneal_steps
    length = max(1, round(anneal_share * run_steps))
    return min(length, anneal_max) if anneal_max else length


def planned_sigma(config: Any, step: int, run_steps: int) -> float:
    """The bandwidth at ``step`` of a ``run_steps`` run for a config with the fields ``sigma``,
    ``sigma_start``, ``anneal_steps``, ``anneal_share`` and ``anneal_max`` (the sig and gan-si families)."""
    length = anneal_length(config.anneal_steps, config.anneal_share, run_steps, config.anneal_max)
    return annealed_sigma(step, config.sigma, config.sigma_start, length)


@dataclass
class SIGConfig:
    likelihood: LikelihoodName = "gaussian"
    sigma: float = DEFAULT_SIGMA  # standard deviation of the gaussian likelihood

    def __post_init__(self) -> None:
        if not self.sigma > 0.0:
            raise ConfigError(f"sigma must be > 0, got {self.sigma}")


class SIG(Divergence):
    """The semi-implicit finite-mixture negative log-likelihood (critic-free)."""

    name = "sig"
    needs_critic = False
    Config = SIGConfig

    def generator_loss(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``H_M`` of data ``real`` (N, *event) under parameters ``fake`` (M, *event)."""
        return sig_loss(real, fake, self.config.sigma, self.config.likelihood)

    def estimate(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``H_M`` (the loss itself: a cross-entropy in nats, not a divergence)."""
        return self.generator_loss(critic, real, fake)
