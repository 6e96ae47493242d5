"""Variational bounds on log p(x): the ELBO and the importance-weighted bound (Burda et al.).

A latent-variable model with an encoder q(z|x) = N(mu(x), diag exp(logvar(x))), a decoder
p(x|z) and a standard normal prior p(z) has, for k draws z_i ~ q(z|x) (reparameterised,
z_i = mu + exp(logvar / 2) * eps_i), the log importance weights

    log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)                (k, B)

and two bounds on log p(x), per example (B,):

- the ELBO, estimated by ``mean_i log w_i`` (k = 1: the VAE's single-sample estimate), or
  computed with the closed-form KL(q || p) by :func:`elbo_analytic`;
- the importance-weighted bound ``L_k = log (1/k) sum_i w_i`` (the IWAE objective), which
  never falls below the ELBO (Jensen) and grows with k towards log p(x).

:func:`log_weights` draws the k samples in chunks so that the decoder never sees more than
``max_elements`` output numbers at once: ``igm eval --metric nll`` uses k = 5,000.

Likelihoods of the decoder (``log p(x|z)`` summed over the event dimensions, shape (N,)) are
:mod:`igm.likelihoods`' :func:`bernoulli_log_prob` (from logits) and :func:`gaussian_log_prob`
(from mean and log-std).

:class:`HasLikelihoodBound` is the protocol a model implements to be scored by the ``nll``
metric: ``log_weights(x, k, labels=None) -> (k, B)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from igm.draws import randn
from igm.likelihoods import LOG_2PI, std_normal_log_prob
from igm.logexp import log_mean_exp  # noqa: F401  (igm.bounds.log_mean_exp, where it lived first)

DEFAULT_MAX_ELEMENTS = 1 << 22  # decoder output numbers per chunk (16 MB in float32)

# log p(x | z): x (B, *event), z (B, L) or (c, B, L), labels (B,) or None -> (B,) or (c, B)
LogLikelihood = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


@runtime_checkable
class HasLikelihoodBound(Protocol):
    """A model whose log-likelihood can be bounded by importance sampling (VAE, IWAE, AAVAE, ...)."""

    def log_weights(self, x: Tensor, k: int, labels: Tensor | None = None) -> Tensor:
        """``log p(x, z_i) - log q(z_i | x)`` for k draws z_i ~ q(z | x): shape (k, B)."""
        ...


def kl_to_std_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` in closed form: (B, L) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def _chunk_size(k: int, batch: int, event_numel: int, max_elements: int) -> int:
    return max(1, min(k, max_elements // max(1, batch * event_numel)))


def log_weights(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_likelihood: LogLikelihood,
    k: int,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Tensor:
    """Log importance weights ``log p(x|z_i) + log p(z_i) - log q(z_i|x)``, shape (k, B).

    Args:
        x: the data, (B, *event).
        mu, logvar: the encoder's Gaussian q(z|x), each (B, L).
        log_likelihood: the decoder's log p(x|z): ``(x (B, *event), z (c, B, L), labels (B,) | None) -> (c, B)``.
        k: importance samples per example.
        labels: (B,) class labels passed to the decoder (conditional models), or None.
        generator: a seeded ``torch.Generator`` for the noise (default: the global RNG).
        max_elements: at most this many decoder outputs (chunk x B x event size) at once.

    Gradients flow through the reparameterised draws, so ``-log_mean_exp(...).mean()`` is the
    IWAE loss. ``log q`` is computed from the noise itself, ``-(eps^2 + logvar + log 2 pi) / 2``,
    which has the value and the total derivative of ``log q(z|x)`` at ``z = mu + sigma * eps``.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of importance samples, got {k}")
    batch, latent = mu.shape
    std = torch.exp(0.5 * logvar)  # (B, L)
    chunk = _chunk_size(k, batch, x[0].numel(), max_elements)
    out: list[Tensor] = []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        eps = randn((c, batch, latent), generator, mu.device, mu.dtype)
        z = mu + std * eps  # (c, B, L)
        log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)  # (c, B)
        log_prior = std_normal_log_prob(z)  # (c, B)
        out.append(log_likelihood(x, z, labels) + log_prior - log_q)  # (c, B)
    return out[0] if len(out) == 1 else torch.cat(out, dim=0)  # (k, B)


def iw_bound(log_w: Tensor) -> Tensor:
    """The importance-weighted bound ``log (1/k) sum_i w_i`` from log weights (k, B) -> (B,)."""
    return log_mean_exp(log_w, dim=0)


def elbo_estimate(log_w: Tensor) -> Tensor:
    """The ELBO estimated by the mean of the log weights (k, B) -> (B,)."""
    return log_w.mean(dim=0)


def elbo_analytic(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_likelihood: LogLikelihood,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The ELBO with one reparameterised draw for ``E_q log p(x|z)`` and the closed-form KL: (B,)."""
    eps = randn(tuple(mu.shape), generator, mu.device, mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps  # (B, L)
    return log_likelihood(x, z, labels) - kl_to_std_normal(mu, logvar)
