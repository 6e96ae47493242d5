"""Explicit likelihoods p(x | θ): the one place their log-densities are written.

Three families use them — a semi-implicit generator draws x ~ p(x | θ) (:class:`Likelihood`),
the SIG loss scores every data point under every θ (:func:`pairwise_log_prob`), and a VAE's
decoder is scored per example (:func:`gaussian_log_prob`, :func:`bernoulli_log_prob`):

* Gaussian:  ``log N(x; μ, σ²) = −(x − μ)² / (2σ²) − log σ − ½ log 2π`` per dimension;
* Bernoulli: ``log p(x | θ) = x·log θ + (1 − x)·log(1 − θ)`` per dimension, θ ∈ (0, 1) — or,
  from logits l = log θ − log(1 − θ), ``x·l − softplus(l)`` (exact for binary x, the negative
  cross-entropy for x in [0, 1]).

Each sums over the event dimensions: (B, *event) -> (B,). Probabilities are clamped to
``[BERNOULLI_EPS, 1 − BERNOULLI_EPS]`` so that a saturated θ never gives −inf.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from igm.draws import rand, randn

LOG_2PI = math.log(2 * math.pi)
BERNOULLI_EPS = 1e-6  # probabilities are clamped to [eps, 1 − eps]

LikelihoodName = Literal["gaussian", "bernoulli"]


def _sum_event(ll: Tensor, x: Tensor) -> Tensor:
    """Sum ``ll`` (*lead, B, *event) over the event dimensions of ``x`` (B, *event): -> (*lead, B)."""
    return ll.flatten(ll.dim() - x.dim() + 1).sum(-1)


def gaussian_log_prob(x: Tensor, mean: Tensor, log_std: Tensor | float) -> Tensor:
    """``Σ_d log N(x_d; mean_d, exp(log_std_d)²)``: (B, *event) -> (B,) (``log_std`` broadcasts).

    ``mean`` may carry extra leading dimensions, (*lead, B, *event) -> (*lead, B).
    """
    log_std = torch.as_tensor(log_std, dtype=mean.dtype, device=mean.device)
    ll = -0.5 * ((x - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * LOG_2PI  # (*lead, B, *event)
    return _sum_event(ll, x)


def bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """``Σ_d log Bernoulli(x_d; sigmoid(logits_d))`` for x in [0, 1]: (B, *event) -> (B,).

    ``logits`` may carry extra leading dimensions, (*lead, B, *event) -> (*lead, B), and ``x``
    broadcasts over them without a copy. One fused kernel (binary cross-entropy with logits).
    """
    lead = logits.dim() - x.dim() + 1
    flat = logits.flatten(lead)  # (*lead, B, D): a view; fewer dimensions make a faster kernel
    ll = F.binary_cross_entropy_with_logits(flat, x.flatten(1).expand_as(flat), reduction="none")
    return -ll.sum(-1)


def probability_logits(theta: Tensor) -> Tensor:
    """Logits of probabilities ``theta``, clamped to ``[BERNOULLI_EPS, 1 − BERNOULLI_EPS]`` first."""
    return torch.logit(theta, eps=BERNOULLI_EPS)


def std_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over the last dimension: (..., L) -> (...)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def pairwise_log_prob(x: Tensor, theta: Tensor, likelihood: LikelihoodName, sigma: float | Tensor = 1.0) -> Tensor:
    """``log p(x_i | θ_j)`` for every pair, x (N, D) and θ (M, D): shape (N, M).

    ``"gaussian"``: θ are means, ``sigma`` the shared std (a tensor receives a gradient);
    ``"bernoulli"``: θ are probabilities. One matmul, never an (N, M, D) tensor.
    """
    d = x.shape[1]
    if likelihood == "gaussian":
        from igm.divergences._distances import squared_distances

        var = torch.as_tensor(sigma, dtype=x.dtype, device=x.device) ** 2
        return -squared_distances(x, theta) / (2.0 * var) - 0.5 * d * torch.log(2.0 * math.pi * var)  # (N, M)
    if likelihood == "bernoulli":
        theta = theta.clamp(BERNOULLI_EPS, 1.0 - BERNOULLI_EPS)
        log_p, log_q = torch.log(theta), torch.log1p(-theta)  # (M, D) each
        # x·log θ + (1 − x)·log(1 − θ) = x·(log θ − log(1 − θ)) + Σ_d log(1 − θ_d)
        return x @ (log_p - log_q).T + log_q.sum(dim=1)  # (N, M)
    raise ValueError(f"unknown likelihood {likelihood!r}: expected 'gaussian' or 'bernoulli'")


class Likelihood(nn.Module):
    """An explicit p(x | θ): draws and log-densities (summed over the event dimensions)."""

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        raise NotImplementedError


class GaussianLikelihood(Likelihood):
    """x ~ N(θ, σ² I): θ is the mean, σ a fixed bandwidth."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return theta + self.sigma * randn(tuple(theta.shape), generator, theta.device)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        return gaussian_log_prob(x, theta, math.log(self.sigma))


class BernoulliLikelihood(Likelihood):
    """x ~ Bernoulli(θ) per dimension: θ holds probabilities in (0, 1)."""

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return (rand(tuple(theta.shape), generator, theta.device) < theta).to(theta.dtype)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        return bernoulli_log_prob(x, probability_logits(theta))
