"""Jensen–Shannon divergence, the original GAN (Goodfellow et al., 2014).

The critic returns logits ``l`` with ``D = sigmoid(l)`` and minimises the logistic loss
``L = E_real softplus(-l) + E_fake softplus(l)``. At the optimal critic
``l* = log p_data/p_g`` the loss is ``log 4 − 2·JSD``, so ``estimate = (log 4 − L) / 2``.

Generator losses (minimised):

* ``"minimax"``:        ``E_fake log(1 − D) = −E_fake softplus(l)`` (saturates when D ≈ 0);
* ``"non-saturating"``: ``−E_fake log D = E_fake softplus(−l)`` (the usual choice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from igm.divergences.base import Critic, Divergence, check_r1, critic_logits, logistic_critic_step


@dataclass
class JSDConfig:
    loss: Literal["non-saturating", "minimax"] = "non-saturating"  # generator loss
    r1_weight: float = 0.0  # R1 penalty on the critic's gradient at the data (0: none)

    def __post_init__(self) -> None:
        check_r1(self.r1_weight)


class JSD(Divergence):
    """Jensen–Shannon divergence through a logistic critic."""

    name = "jsd"
    Config = JSDConfig

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``E_real softplus(-l) + E_fake softplus(l)`` (logistic loss, minimised), plus R1 when set."""
        return logistic_critic_step(critic, real, fake, self.name, self.config.r1_weight)

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``E_fake softplus(-l)`` (non-saturating) or ``-E_fake softplus(l)`` (minimax)."""
        fake_l = critic_logits(critic, fake, self.name)  # (M,)
        if self.config.loss == "minimax":
            return -F.softplus(fake_l).mean()
        return F.softplus(-fake_l).mean()

    def estimate(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ``(log 4 − logistic loss) / 2``, the JSD (in nats) at the optimal critic."""
        return (math.log(4.0) - logistic_critic_step(critic, real, fake, self.name)) / 2.0
