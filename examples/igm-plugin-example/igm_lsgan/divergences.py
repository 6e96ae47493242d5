"""Two critic-based divergences: the least-squares GAN loss and the hinge loss.

Both follow the contract of :mod:`igm.divergences.base`: the critic is a callable passed in by
the model (``critic(x) -> (N,)`` real scores), every loss is a scalar that its owner minimises,
and ``estimate`` is the divergence implied by the current critic.

Least squares (Mao et al., 2017, targets a=0 for fake, b=1 for real, c=1 for the generator)::

    critic:     ½ E_real (c(x) − 1)² + ½ E_fake c(x)²
    generator:  ½ E_fake (c(x) − 1)²

The optimal critic is ``c* = p / (p + q)`` and the critic loss there is ``½ ∫ pq / (p + q)``,
so ``¼ − critic_loss = (1/8) ∫ (p − q)² / (p + q)``: one eighth of the triangular
discrimination between data ``p`` and generator ``q`` (0 iff p = q).

Hinge (Lim & Ye 2017; Miyato et al. 2018, as in SN-GAN and BigGAN)::

    critic:     E_real relu(1 − c(x)) + E_fake relu(1 + c(x))
    generator:  −E_fake c(x)

The optimal critic is ``c* = sign(p − q)`` and the critic loss there is ``2 ∫ min(p, q)``, so
``1 − critic_loss / 2`` is the total variation distance ``TV(p, q)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from igm import Critic, Divergence, critic_logits


class LeastSquares(Divergence):
    """Least-squares GAN loss (Mao et al.): one eighth of the triangular discrimination."""

    name = "least-squares"

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ½ E_real (c − 1)² + ½ E_fake c² (minimised by the critic)."""
        real_c = critic_logits(critic, real, self.name)  # (N,)
        fake_c = critic_logits(critic, fake, self.name)  # (M,)
        return 0.5 * (real_c - 1.0).pow(2).mean() + 0.5 * fake_c.pow(2).mean()

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ½ E_fake (c − 1)² (minimised by the generator)."""
        return 0.5 * (critic_logits(critic, fake, self.name) - 1.0).pow(2).mean()

    def estimate(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return ¼ − critic_loss: (1/8) ∫ (p − q)² / (p + q) at the optimal critic."""
        return 0.25 - self.critic_loss(critic, real, fake)


class Hinge(Divergence):
    """Hinge GAN loss (SN-GAN, BigGAN): the total variation distance at the optimal critic."""

    name = "hinge"

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return E_real relu(1 − c) + E_fake relu(1 + c) (minimised by the critic)."""
        real_c = critic_logits(critic, real, self.name)  # (N,)
        fake_c = critic_logits(critic, fake, self.name)  # (M,)
        return F.relu(1.0 - real_c).mean() + F.relu(1.0 + fake_c).mean()

    def generator_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return −E_fake c (minimised by the generator)."""
        return -critic_logits(critic, fake, self.name).mean()

    def estimate(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return 1 − critic_loss / 2: TV(p, q) at the optimal critic."""
        return 1.0 - 0.5 * self.critic_loss(critic, real, fake)
