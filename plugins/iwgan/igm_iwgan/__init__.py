"""The importance-weighted GAN family (Hu et al., "On Unifying Deep Generative Models", 2018, eq. 16).

Hu et al. read the GAN generator update as minimising a KL divergence whose posterior
``q^r(x) ∝ p_θ(x) · D(x) / (1 − D(x))`` reweights generated samples by the discriminator's
density ratio, as importance weighting does in IWAE. The discriminator trains exactly as in a
GAN (logistic loss); the generator's non-saturating gradient weights each of the k fake
samples of a group by the self-normalised importance weight

    w_i = [D(x_i) / (1 − D(x_i))] / Σ_j [D(x_j) / (1 − D(x_j))] = softmax(l)_i,

where ``l_i`` are the discriminator's logits (``D/(1 − D) = exp(l)``), treated as constants:

    L_G = −Σ_i w_i log D(x_i) = Σ_i w_i softplus(−l_i)   (averaged over groups of k).

Samples the discriminator already finds realistic get more of the generator's gradient.
``k`` (config ``k``; 0 means the whole batch) is the group size. ``conditional=true`` gives
IWCGAN: labels go to both networks as in the cGAN family. The weights need a logistic
discriminator, so the divergence is ``jsd`` (or ``kl``, whose critic is the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

import igm
from igm import AdversarialConfig, AdversarialModel, ConfigError, critic_logits

__version__ = "0.1.0"


@dataclass
class IWGANConfig(AdversarialConfig):
    """IWGAN settings: every AdversarialConfig field plus the importance-weighting group size."""

    k: int = 0  # samples per self-normalised group; 0: the whole batch

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 0:
            raise ConfigError(f"k must be 0 (the whole batch) or positive, got {self.k}")
        if self.divergence not in ("jsd", "kl"):
            raise ConfigError(
                f"iwgan weights samples by D/(1-D) and needs a logistic discriminator: set divergence=jsd, not {self.divergence}"
            )


def importance_weights(logits: Tensor, k: int) -> Tensor:
    """Self-normalised ``w ∝ D/(1 − D) = exp(logit)`` within consecutive groups of ``k``: shape (N,).

    ``logits`` (N,) with N a multiple of k; each group's weights sum to 1. Detached.
    """
    if k < 1 or logits.shape[0] % k:
        raise ValueError(f"the batch ({logits.shape[0]}) must be a multiple of k ({k})")
    groups = rearrange(logits.detach(), "(g k) -> g k", k=k)  # (G, k)
    return rearrange(groups.softmax(dim=1), "g k -> (g k)")  # (N,)


class IWGAN(AdversarialModel):
    """Importance-weighted GAN: GAN discriminator, D/(1-D)-weighted generator gradient."""

    name = "iwgan"
    Config = IWGANConfig

    def group_size(self, n: int) -> int:
        k = self.config.k or n
        if n % k:
            raise ConfigError(f"iwgan: the batch size ({n}) must be a multiple of k ({k}); change --batch-size or k")
        return k

    def generator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        logits = critic_logits(self.critic_fn(labels), fake, "iwgan")  # (N,)
        k = self.group_size(logits.shape[0])
        w = importance_weights(logits, k)  # (N,), each group sums to 1
        return (w * F.softplus(-logits)).sum() / (logits.shape[0] // k)


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("iwgan", IWGAN)
