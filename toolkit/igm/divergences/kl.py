"""Kullback–Leibler divergence through a density-ratio critic.

The critic is trained with the same logistic loss as ``jsd``, so its logit
``r(x) ≈ log p_data(x) / p_g(x)`` estimates the log density ratio. Then:

* ``"reverse"``: ``KL(p_g ‖ p_data) = E_fake[−r]``; generator loss and estimate ``E_fake[−r]``;
* ``"forward"``: ``KL(p_data ‖ p_g) ≥ E_real[T] − E_fake[exp(T − 1)]`` (f-GAN bound) with the
  ratio critic ``T = 1 + r``, i.e. ``estimate = E_real[r] − E_fake[exp(r)] + 1``
  (equal to the KL when ``exp(r) = p_data/p_g``); the generator minimises the part that
  depends on it, ``−E_fake[exp(r)]``, with ``r`` clamped to ≤ 20 before the exponential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from igm.divergences.base import Critic, Divergence, check_r1, critic_logits, logistic_critic_step

MAX_LOG_RATIO = 20.0  # clamp of r before exp(r) in the forward direction


@dataclass
class KLConfig:
    direction: Literal["reverse", "forward"] = "reverse"  # reverse: KL(p_g‖p_data)
    r1_weight: float = 0.0  # R1 penalty on the critic's gradient at the data (0: none)

    def __post_init__(self) -> None:
        check_r1(self.r1_weight)


class KL(Divergence):
    """KL divergence in either direction from a logistic density-ratio critic."""

    name = "kl"
    Config = KLConfig

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return the logistic loss ``E_real softplus(-r) + E_fake softplus(r)`` (minimised), plus R1 when set."""
        return logistic_critic_step(critic, real, fake, self.name, self.config.r1_weight)

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``E_fake[-r]`` (reverse) or ``-E_fake[exp(min(r, 20))]`` (forward)."""
        fake_r = critic_logits(critic, fake, self.name)  # (M,)
        if self.config.direction == "forward":
            return -fake_r.clamp(max=MAX_LOG_RATIO).exp().mean()
        return -fake_r.mean()

    def estimate(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return the KL estimate: ``E_fake[-r]`` or ``E_real[r] − E_fake[exp(r)] + 1``."""
        fake_r = critic_logits(critic, fake, self.name)  # (M,)
        if self.config.direction == "forward":
            real_r = critic_logits(critic, real, self.name)  # (N,)
            return real_r.mean() - fake_r.clamp(max=MAX_LOG_RATIO).exp().mean() + 1.0
        return -fake_r.mean()
