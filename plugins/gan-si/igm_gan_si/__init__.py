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
* ``sigma_start`` / ``anneal_share`` / ``anneal_max`` / ``anneal_steps``: as in the sig family,
  the bandwidth of the loss starts wide and decays geometrically to ``sigma`` over the first
  ``anneal_share`` of the run's steps (0, the default: 0.8 on points with σ ≥ 0.05 such as
  grid25, half the run otherwise, e.g. ring8's σ 0.01) but at most 8,000 (``anneal_max``), or
  over ``anneal_steps`` when set; a step counter buffer and the
  run's length from the trainer (:meth:`igm.Model.plan`) keep resume exact.
* ``lam``: the weight λ; none (the default) means 10 for points and, for images, 0.3 as a
  gradient ratio (``lam_adaptive``). ``lam_auto=true``
  instead measures both terms on the first generator
  batch and sets ``λ = |L_GAN| / E_H`` so that they start on the same scale, where ``E_H`` is
  H_M without the Gaussian normalising constant (``−mean_i log mean_j exp(−‖x_i − x̃_j‖²/2σ²)``,
  which is ≥ 0 and does not change with the dimension-dependent constant). The measured λ is a
  buffer of the model (``lam_value``), so checkpoints and resumed runs use the very same λ.
* ``lam_adaptive`` (none: on for images, off for points): ``lam`` is then a ratio of gradients,
  not a weight. Each generator step sets ``λ_t = lam · ‖∂L_GAN/∂x̃‖ / ‖∂H_M/∂x̃‖`` (norms over the
  generated samples, λ_t treated as a constant), so the likelihood pulls the samples ``lam``
  times as hard as the critic does, at every bandwidth of the anneal. With a fixed λ on 28×28
  images the likelihood's gradient at the samples is ~10³ times the critic's at σ = 1 and ~10⁵
  at σ = 0.1 (untrained networks, MNIST): the generator ignores the critic, draws blurred
  averages, and the critic wins (loss ~1e-4). The last λ_t is ``lam_value`` in the log.
* ``M``: the mixture's centres per step: the adversarial batch's N fakes plus ``M − N`` fresh
  draws of the generator (or the first M fakes when M < N); 0 means 512 for points
  (:data:`igm.POINTS_M`) and the
  batch's fakes for images. The critic only ever sees the batch's fakes.
* ``lr_g``: 0 means, for points, 6e-3 when σ ≥ 0.05 (grid25), or 1e-3 when σ < 0.05 (ring8's
  σ = 0.01, where the sig family diverged at 3e-3); ``lr_d``: 0 means 1e-3 for points. On images
  both are the adversarial recipe's (:data:`igm.adversarial.IMAGE_DEFAULTS`: DCGAN's 2e-4).
* every field of :class:`igm.AdversarialConfig` (divergence, networks, optimizers).

The point defaults (λ 10, M 512, lr_g 6e-3 / 1e-3, the anneal over 0.8 / 0.5 of the run, a
cosine decay of every rate, and the budgets of ``run_defaults``) let the likelihood lead once the
kernel is sharp — a sample
stranded between modes gets almost no pull from a narrow H_M, and a constant rate keeps the
adversarial game jittering. How they were chosen, run by run: benchmarks/README.md (Q1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import igm
from igm import (
    IMAGE_RUN_DEFAULTS,
    POINTS_M,
    WIDE_RATE,
    AdversarialConfig,
    AdversarialModel,
    AnnealedBandwidth,
    ConfigError,
    DataInfo,
    default_anneal_share,
    default_sigma,
    generator_rate,
    sig_loss,
    wide_points,
)

__version__ = "0.1.0"

POINTS_LAM = 10.0  # λ on non-image data when lam is not given
# on images (lam_adaptive): the likelihood pulls the samples 0.3 times as hard as the critic. MNIST,
# 1,500 steps, seed 0: critic / generator-GAN loss 1.09 / 1.09 (plain gan 1.13 / 1.04), IS 5.81;
# at 1: 0.38 / 3.98, IS 5.49; a fixed λ 1: 0.001 / 15.9, IS 4.16 (benchmarks/README.md)
IMAGE_LAM = 0.3
POINTS_LR_D = 1e-3
# run_defaults on points: grid25 (lr_g 6e-3, 0.8 anneal) and ring8 (at M 512 ring8's seed 1: HQ 0.894 at 8k, 0.944 at 10k)
POINTS_STEPS = 10_000


@dataclass
class GANSIConfig(AdversarialConfig):
    """GAN-SI settings: every AdversarialConfig field, plus the regulariser's λ and σ."""

    lam: float | None = None  # λ, the weight of H_M (a gradient ratio under lam_adaptive; ignored when lam_auto); None: 10 for points, 0.3 for images
    lam_auto: bool = False  # set λ on the first batch so that both terms start on the same scale
    lam_adaptive: bool | None = None  # lam is a ratio of the terms' gradients at the samples; None: images only
    sigma: float = 0.0  # mixture bandwidth; 0: the data's component std, else 0.1
    sigma_start: float = 1.0  # bandwidth at step 0, annealed geometrically to sigma; 0: none
    anneal_share: float = 0.0  # share of the run over which sigma decays; 0: 0.8 on points if sigma >= 0.05, else 0.5
    anneal_max: int = 8000  # at most this many steps of it (0: no cap)
    anneal_steps: int = 0  # generator steps of the anneal; 0: anneal_share of the run, at most anneal_max
    M: int = 0  # generated draws in H_M (the batch's fakes + fresh ones); 0: 512 for points (igm.POINTS_M), the batch for images
    lr_g: float = 0.0  # 0: the image table's 2e-4 for images; for points 6e-3 when sigma >= 0.05, else 1e-3
    lr_d: float = 0.0  # 0: the image table's 2e-4 for images, 1e-3 for points
    # the networks gan-si was tuned with (Q1), not the plain GAN's point defaults
    g_hidden: tuple[int, ...] = (100, 100)
    d_hidden: tuple[int, ...] = (100,)
    d_activation: str = "relu"
    beta2: float = 0.999

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lam is not None and self.lam < 0:
            raise ConfigError(f"lam must be >= 0 (or none for the default), got {self.lam}")
        if self.sigma < 0:
            raise ConfigError(f"sigma must be > 0 (or 0 for the data's std), got {self.sigma}")
        if self.M < 0:
            raise ConfigError(f"M must be >= 0 (0: 512 for points, the batch size for images), got {self.M}")
        if self.lr_g < 0 or self.lr_d < 0:
            raise ConfigError(f"lr_g and lr_d must be > 0 (or 0 for the default), got {self.lr_g} and {self.lr_d}")
        if self.lam_auto and self.lam_adaptive:
            raise ConfigError("lam_auto (λ measured once) and lam_adaptive (λ set every step) exclude each other: set one")
        if self.anneal_steps < 0 or self.anneal_max < 0 or not 0 <= self.anneal_share <= 1:
            raise ConfigError("anneal_steps and anneal_max must be >= 0 and anneal_share in (0, 1] (0: the default)")


def pull_ratio(gan: Tensor, fake: Tensor, h: Tensor, centres: Tensor) -> float:
    """``‖∂gan/∂fake‖ / ‖∂h/∂centres‖``: how hard the critic pulls the samples, per unit of the likelihood's pull."""
    (g_gan,) = torch.autograd.grad(gan, fake, retain_graph=True)
    (g_h,) = torch.autograd.grad(h, centres, retain_graph=True)
    return float(g_gan.norm() / g_h.norm().clamp_min(1e-12))


def gaussian_log_norm(d: int, sigma: float) -> float:
    """The constant of log N(x; θ, σ²I) in D dimensions: −(D/2)·log(2πσ²)."""
    return -0.5 * d * math.log(2 * math.pi * sigma * sigma)


class GANSI(AnnealedBandwidth, AdversarialModel):
    """GAN (or WGAN-GP) + λ · semi-implicit mixture likelihood of the data (Yin & Zhou)."""

    name = "gan-si"
    Config = GANSIConfig

    def __init__(self, config: GANSIConfig, data: DataInfo, **parts: Any) -> None:
        image = data.kind == "image"
        sigma = config.sigma or default_sigma(data)
        lam = config.lam if config.lam is not None else (IMAGE_LAM if image else POINTS_LAM)
        wide = wide_points(sigma, data)  # grid25's σ 0.05, not ring8's 0.01 nor images
        # images: rates left at 0 take the adversarial recipe's image table (resolved by super().__init__)
        lr_g = config.lr_g or (0.0 if image else WIDE_RATE if wide else generator_rate(sigma))
        lr_d = config.lr_d or (0.0 if image else POINTS_LR_D)
        share = config.anneal_share or default_anneal_share(wide)
        m = config.M or (0 if image else POINTS_M)  # images: 0 stays "the batch's fakes"
        adaptive = config.lam_adaptive if config.lam_adaptive is not None else image and not config.lam_auto
        config = dataclasses.replace(config, sigma=sigma, lam=lam, lr_g=lr_g, lr_d=lr_d, M=m, anneal_share=share,
                                     lam_adaptive=adaptive)
        super().__init__(config, data, **parts)  # parts: the divergence the registry looked up
        # λ in use: the configured one, or 0 until lam_auto measures it on the first batch
        lam = 0.0 if config.lam_auto else config.lam
        self.register_buffer("lam_value", torch.tensor(lam, dtype=torch.float32))
        self.init_bandwidth()

    def mixture_size(self, batch: int) -> int:
        """M, the number of generated draws in H_M for a batch of ``batch`` fakes."""
        return self.config.M or batch

    def mixture_centres(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        """The M centres of H_M: the adversarial batch's fakes, then fresh draws up to M (or its first M)."""
        m = self.mixture_size(fake.shape[0])
        extra = m - fake.shape[0]
        if extra <= 0:
            return fake[:m]
        extra_labels = None
        if self.num_classes is not None and labels is not None:  # fresh draws with the batch's label mix
            extra_labels = labels[torch.randint(labels.shape[0], (extra,), device=labels.device)]
        more = self.trained.sample(extra, extra_labels)  # (M - N, *event)
        return torch.cat([fake, more])  # (M, *event)

    def si_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """H_M: −mean_i log (1/M) Σ_j N(real_i; fake_j, σ²I) (minimised: data likely under the mixture)."""
        return sig_loss(real, fake, self.current_sigma(), "gaussian")

    def generator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Mapping[str, Tensor]:
        gan = self.divergence.generator_loss(self.critic_fn(labels), real, fake)
        sigma = self.current_sigma()
        centres = self.mixture_centres(fake, labels)
        h = self.si_loss(real, centres)
        if self.training:
            if self.config.lam_auto and float(self.lam_value) == 0.0:
                energy = h.detach() + gaussian_log_norm(real[0].numel(), sigma)  # ≥ 0
                self.lam_value.fill_(float(gan.detach().abs() / energy.clamp_min(1e-8)))
            elif self.config.lam_adaptive and torch.is_grad_enabled() and fake.requires_grad:
                self.lam_value.fill_(self.config.lam * pull_ratio(gan, fake, h, centres))
        self.count_step()
        lam = self.lam_value
        return {"loss": gan + lam * h, "gan": gan.detach(), "si": h.detach(), "lam": lam.detach()}

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return dict(IMAGE_RUN_DEFAULTS)
        # 10,000 steps on grid25 and on ring8 (at M 512 ring8 needs them: benchmarks/README.md)
        return {"steps": POINTS_STEPS, "batch_size": 256, "lr_decay": "cosine"}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("gan-si", GANSI)
