"""Wasserstein-1 distance with a gradient penalty (WGAN-GP, Gulrajani et al., 2017).

The critic ``c`` (real-valued, no sigmoid) minimises

    E_fake c − E_real c + gp_weight · E[(‖∇c(x̂)‖₂ − 1)²],  x̂ = ε·real + (1 − ε)·fake,

with ``ε ~ U(0, 1)`` drawn per example from torch's global RNG. With ``gp_one_sided`` the penalty
is ``E[max(0, ‖∇c(x̂)‖₂ − 1)²]`` (WGAN-LP, Petzka et al., 2018): it bounds the critic's slope
without forcing it to 1 everywhere between the two samples. The generator minimises
``−E_fake c`` and ``estimate = E_real c − E_fake c`` (the Kantorovich–Rubinstein dual value).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from igm.divergences.base import Critic, Divergence, critic_logits, full_precision
from igm.errors import ConfigError


@full_precision
def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor, one_sided: bool = False) -> Tensor:
    """Return ``E[(‖∇c(x̂)‖₂ − 1)²]`` on random interpolates of ``real`` and ``fake``.

    ``one_sided``: ``E[max(0, ‖∇c(x̂)‖₂ − 1)²]``, norms under 1 go unpenalised.

    ``real`` and ``fake`` have the same shape (N, *event); ``ε`` has shape (N, 1, ..., 1).
    Both are detached: the penalty trains the critic only. The gradient is built with
    ``create_graph=True`` so that the penalty can be back-propagated to the critic's weights
    (also when called under ``torch.no_grad()``).
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient penalty needs real and fake of one shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)  # (N, 1, ..., 1)
    eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    with torch.enable_grad():
        x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
        out = critic_logits(critic, x_hat, "wasserstein")  # (N,)
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)  # (N, *event)
        excess = torch.linalg.vector_norm(grad.flatten(1), dim=1) - 1.0  # (N,)
        return (excess.clamp(min=0.0) if one_sided else excess).pow(2).mean()


@dataclass
class WassersteinConfig:
    gp_weight: float = 10.0  # weight of the gradient penalty in the critic loss
    gp_one_sided: bool = False  # penalise only gradient norms above 1 (WGAN-LP)

    def __post_init__(self) -> None:
        if not self.gp_weight >= 0.0:
            raise ConfigError(f"gp_weight must be >= 0, got {self.gp_weight}")


class Wasserstein(Divergence):
    """Wasserstein-1 distance through a gradient-penalised critic (WGAN-GP, or WGAN-LP with gp_one_sided)."""

    name = "wasserstein"
    Config = WassersteinConfig

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``E_fake c − E_real c + gp_weight · gradient_penalty`` (minimised)."""
        fake_c = critic_logits(critic, fake, self.name)  # (M,)
        real_c = critic_logits(critic, real, self.name)  # (N,)
        loss = fake_c.mean() - real_c.mean()
        if self.config.gp_weight > 0:
            loss = loss + self.config.gp_weight * gradient_penalty(critic, real, fake, self.config.gp_one_sided)
        return loss

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``−E_fake c`` (minimised by the generator)."""
        return -critic_logits(critic, fake, self.name).mean()

    def estimate(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``E_real c − E_fake c``, the dual estimate of W1 for a 1-Lipschitz critic."""
        real_c = critic_logits(critic, real, self.name)  # (N,)
        fake_c = critic_logits(critic, fake, self.name)  # (M,)
        return real_c.mean() - fake_c.mean()
