"""GAN-SI: a GAN regularised by the semi-implicit mixture likelihood (Yin & Zhou, 2019).

Yin & Zhou, "Semi-Implicit Generative Model", eq. 12. The critic trains exactly as in a GAN
(``jsd``, or ``wasserstein`` for WGAN-GP-SI). The generator ``x = G(z)`` is implicit; its M
samples ``x̃_1..x̃_M`` of a step also define an explicit finite mixture of Gaussians
``(1/M) Σ_j N(x; x̃_j, σ²I)``, and the generator minimises

    L_G = L_GAN(G) + λ · H_M,     H_M = −(1/N) Σ_i log (1/M) Σ_j N(x_i; x̃_j, σ²I)

over the real batch ``x_1..x_N``: it *maximises* the likelihood of the data under the mixture
centred at its samples (the sign of eq. 12; the paper's Algorithm 1 flips it, which would push
the samples away from the data). The adversarial term keeps samples sharp (mode seeking); the
likelihood term pulls some generator mass to every data point (mode covering), which is what
cures mode collapse on the 2-D mixtures and Stacked MNIST.

Settings (``igm fit gan-si --data grid25`` with no option runs the tuned one):

* ``sigma``: the mixture bandwidth; 0 means the data's component std when the source declares
  one (2-D mixtures), else 0.1.
* ``sigma_start`` / ``anneal_steps``: as in the sig family, the bandwidth of the loss may start
  wide and decay geometrically to ``sigma`` (a step counter buffer keeps resume exact).
* ``lam``: the weight λ; ``lam_auto=true`` instead measures both terms on the first generator
  batch and sets ``λ = |L_GAN| / E_H`` so that they start on the same scale, where ``E_H`` is
  H_M without the Gaussian normalising constant (``−mean_i log mean_j exp(−‖x_i − x̃_j‖²/2σ²)``,
  which is ≥ 0 and does not change with the dimension-dependent constant). The measured λ is a
  buffer of the model (``lam_value``), so checkpoints and resumed runs use the very same λ.
* every field of :class:`igm.models.AdversarialConfig` (divergence, networks, optimizers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import igm
from igm.data import DataInfo
from igm.divergences.sig import annealed_sigma, sig_loss
from igm.errors import ConfigError
from igm.models import AdversarialConfig, AdversarialModel

__version__ = "0.1.0"

DEFAULT_SIGMA = 0.1


@dataclass
class GANSIConfig(AdversarialConfig):
    """GAN-SI settings: every AdversarialConfig field, plus the regulariser's λ and σ."""

    lam: float = 1.0  # λ, the weight of H_M in the generator loss (ignored when lam_auto)
    lam_auto: bool = False  # set λ on the first batch so that both terms start on the same scale
    sigma: float = 0.0  # mixture bandwidth; 0: the data's component std, else 0.1
    sigma_start: float = 1.0  # bandwidth at step 0, annealed geometrically to sigma; 0: none
    anneal_steps: int = 8000  # generator steps of the anneal
    lr_g: float = 1e-3
    lr_d: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lam < 0:
            raise ConfigError(f"lam must be >= 0, got {self.lam}")
        if self.sigma < 0:
            raise ConfigError(f"sigma must be > 0 (or 0 for the data's std), got {self.sigma}")


def default_sigma(data: DataInfo) -> float:
    std = data.extra.get("std")
    return float(std) if isinstance(std, (int, float)) and std > 0 else DEFAULT_SIGMA


def gaussian_log_norm(d: int, sigma: float) -> float:
    """The constant of log N(x; θ, σ²I) in D dimensions: −(D/2)·log(2πσ²)."""
    return -0.5 * d * math.log(2 * math.pi * sigma * sigma)


class GANSI(AdversarialModel):
    """GAN (or WGAN-GP) + λ · semi-implicit mixture likelihood of the data (Yin & Zhou)."""

    name = "gan-si"
    Config = GANSIConfig

    def __init__(self, config: GANSIConfig, data: DataInfo) -> None:
        config = GANSIConfig(**{**vars(config), "sigma": config.sigma or default_sigma(data)})
        super().__init__(config, data)
        # λ in use: the configured one, or 0 until lam_auto measures it on the first batch
        lam = 0.0 if config.lam_auto else config.lam
        self.register_buffer("lam_value", torch.tensor(lam, dtype=torch.float32))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))  # generator steps taken

    def current_sigma(self) -> float:
        c = self.config
        return annealed_sigma(int(self.step), c.sigma, c.sigma_start, c.anneal_steps)

    def si_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """H_M: −mean_i log (1/M) Σ_j N(real_i; fake_j, σ²I) (minimised: data likely under the mixture)."""
        return sig_loss(real, fake, self.current_sigma(), "gaussian")

    def generator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Mapping[str, Tensor]:
        gan = self.divergence.generator_loss(self.critic_fn(labels), real, fake)
        sigma = self.current_sigma()
        h = self.si_loss(real, fake)
        if self.training:
            if self.config.lam_auto and float(self.lam_value) == 0.0:
                energy = h.detach() + gaussian_log_norm(real[0].numel(), sigma)  # ≥ 0
                self.lam_value.fill_(float(gan.detach().abs() / energy.clamp_min(1e-8)))
            self.step += 1
        lam = self.lam_value
        return {"loss": gan + lam * h, "gan": gan.detach(), "si": h.detach(), "lam": lam.detach()}

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return {"steps": 10_000, "batch_size": 64, "sample_every": 500}
        return {"steps": 15_000, "batch_size": 256}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("gan-si", GANSI)
