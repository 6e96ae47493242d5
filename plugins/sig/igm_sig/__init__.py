"""The semi-implicit generator (SIG) family: maximum likelihood of a finite mixture, no critic.

Yin & Zhou, "Semi-Implicit Generative Model" (2019). A network maps noise to likelihood
parameters, ``θ = g(z)``, and a sample is ``x ~ p(x | θ)`` with an explicit kernel:
``N(θ, σ²I)`` for real-valued data, ``Bernoulli(θ)`` for data in [0, 1] such as binarized
images. The marginal ``∫ p(x | g(z)) p(z) dz`` has no closed form, but with M draws
``θ_1..θ_M`` the finite mixture ``(1/M) Σ_j p(x | θ_j)`` is an explicit density whose
negative log-likelihood on the data batch,

    H_M = −(1/N) Σ_i log (1/M) Σ_j p(x_i | θ_j),

is an upper bound (in expectation over the θ's) of the cross-entropy of the data under the
model that tightens as M grows. The generator minimises it — a maximum-likelihood, hence
mode-covering, objective: every data point pulls the θ nearest to it, so no mode is left
without generator mass. The core's ``sig`` divergence computes H_M from one (N, M) matrix.

Settings (``igm fit sig --data grid25`` with no option runs the tuned one):

* ``sigma`` (Gaussian bandwidth): 0 means the data's own component std when the source
  declares one (2-D mixtures: 0.05 on grid25, 0.01 on ring8), else 0.1. Samples are
  ``θ + σ·ε``, so σ larger than the data's spread blurs every sample.
* ``sigma_start`` / ``anneal_share`` / ``anneal_max`` / ``anneal_steps``: the bandwidth used in
  the loss starts at ``sigma_start`` and decays geometrically to ``sigma`` over the first
  ``anneal_share`` of the run's steps (0, the default: 0.8 on points with σ ≥ 0.05 such as
  grid25, half the run otherwise, e.g. ring8's σ 0.01) but at most ``anneal_max`` (12,000)
  of them, or over ``anneal_steps`` generator steps when that is set (a wide kernel
  first, so that θ's far from every data point still receive gradient and travel to a mode;
  then the kernel sharpens and the θ's settle on the modes). The step counter is a buffer of
  the model, saved in checkpoints, and the run's length comes from the trainer
  (:meth:`igm.Model.plan`), so a resumed run anneals exactly as an unbroken one. A run shorter
  than the family's tuned budget on points says so in one line when it starts.
* ``M``: θ draws per step; 0 (the default) means 512 on points (:data:`igm.POINTS_M`: the
  (N, M) matrix is a step's cost, and 512 keeps grid25's and ring8's scores) and ``IMAGE_M``
  (1,024) on images.
* ``lr_g``: 0 means 6e-3 on points with σ ≥ 0.05 (grid25), 3e-3 for a Bernoulli kernel or
  Gaussian images with σ ≥ 0.05, else 1e-3 (on ring8, σ = 0.01, lr 3e-3 diverged
  in 2 of 3 seeds; 1e-3 did not).
* ``likelihood``: ``auto`` picks Bernoulli for data in [0, 1] and Gaussian otherwise.

On grid25 the long anneal and the doubled rate bring the θ's to the modes before the kernel is
sharp: once σ = 0.05 a θ stranded between two modes (2 apart) gets no pull from the data, so
what the anneal leaves between the modes stays there. 10,000 steps with them beat the former
40,000 (benchmarks/README.md, Q1, "Faster semi-implicit defaults"); 15,000 with a 12,000-step
anneal keep HQ ≥ 0.9 in every seed where 10,000 had slipped to 0.86 in one ("sig on grid25: a longer anneal").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

import igm
from igm import (
    IMAGE_RUN_DEFAULTS,
    POINTS_M,
    WIDE_RATE,
    AnnealedBandwidth,
    Batch,
    BernoulliLikelihood,
    ConfigError,
    DataInfo,
    GaussianLikelihood,
    GeneratorConfig,
    Model,
    Player,
    SemiImplicitGenerator,
    annealed_sigma,
    default_anneal_share,
    default_sigma,
    generator_net,
    generator_rate,
    points_steps,
    resolve_network,
    sig_loss,
    wide_points,
)

__version__ = "0.1.0"
__all__ = ["SIG", "SIGConfig", "annealed_sigma", "default_sigma"]

# run_defaults on points (grid25, WIDE_RATE, an anneal over 0.8 of the run: 12,000 steps). At 10,000 (an 8,000-step
# anneal) seed 1 slipped to HQ 0.857 on a second machine; the θ's the anneal leaves between the modes stay there
POINTS_STEPS = 15_000
SMALL_MIXTURE_STEPS = 12_000  # on mixtures of <= 8 components (ring8: 8/8, HQ >= 0.9 in 5 of 5 seeds)
IMAGE_M = 1024  # θ draws per step on images when M = 0



@dataclass
class SIGConfig(GeneratorConfig):
    """SIG settings: the generator network (GeneratorConfig), the kernel and the mixture size."""

    likelihood: Literal["auto", "gaussian", "bernoulli"] = "auto"
    sigma: float = 0.0  # Gaussian bandwidth; 0: the data's component std, else 0.1
    sigma_start: float = 1.0  # bandwidth at step 0, annealed to sigma; 0: no annealing
    anneal_share: float = 0.0  # share of the run over which sigma decays; 0: 0.8 on points if sigma >= 0.05, else 0.5
    anneal_max: int = 12_000  # at most this many steps of it (0: no cap)
    anneal_steps: int = 0  # generator steps of the anneal; 0: anneal_share of the run, at most anneal_max
    M: int = 0  # θ draws per step; 0: 512 on points (igm.POINTS_M), 1,024 on images
    lr_g: float = 0.0  # 0: 6e-3 when sigma >= 0.05, else 1e-3 (a sharp kernel is unstable at 3e-3)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sigma < 0 or self.sigma_start < 0:
            raise ConfigError("sigma and sigma_start must be positive (or 0 for the default)")
        if self.M < 0 or self.anneal_steps < 0 or self.anneal_max < 0 or self.lr_g < 0:
            raise ConfigError("M, anneal_steps, anneal_max and lr_g must be 0 (the default) or positive")
        if not 0 <= self.anneal_share <= 1:
            raise ConfigError(f"anneal_share must lie in (0, 1] (or 0 for the default), got {self.anneal_share}")


class SIG(AnnealedBandwidth, Model):
    """A semi-implicit generator fitted by the finite-mixture likelihood H_M alone."""

    name = "sig"
    Config = SIGConfig

    def __init__(self, config: SIGConfig, data: DataInfo) -> None:
        config = resolve_network(config, data)
        likelihood = config.likelihood
        if likelihood == "auto":
            likelihood = "bernoulli" if data.value_range == (0.0, 1.0) else "gaussian"
        if likelihood == "bernoulli" and data.value_range != (0.0, 1.0):
            raise ConfigError(
                f"likelihood=bernoulli needs data in [0, 1]; '{data.name}' is not: use likelihood=gaussian"
            )
        sigma = config.sigma or default_sigma(data)
        wide = likelihood == "gaussian" and wide_points(sigma, data)  # grid25's σ 0.05, not ring8's 0.01
        lr = config.lr_g or (WIDE_RATE if wide else generator_rate(sigma if likelihood == "gaussian" else 1.0))
        share = config.anneal_share or default_anneal_share(wide)
        m = config.M or (IMAGE_M if data.kind == "image" else POINTS_M)
        config = dataclasses.replace(config, likelihood=likelihood, sigma=sigma, lr_g=lr, anneal_share=share, M=m)
        super().__init__(config, data)
        if likelihood == "bernoulli":
            net = generator_net(config, data, out_act="sigmoid")
            kernel: Any = BernoulliLikelihood()
        else:
            net = generator_net(config, data, out_act=None)
            kernel = GaussianLikelihood(sigma)
        self.generator = SemiImplicitGenerator(net, config.latent_dim, data.event_shape, kernel)
        self.init_bandwidth()

    def players(self) -> list[Player]:
        c = self.config
        return [Player("generator", list(self.generator.parameters()), lr=c.lr_g, betas=(c.beta1, c.beta2))]

    def loss(self, player: str, batch: Batch) -> Tensor | Mapping[str, Tensor]:
        real, _ = batch
        theta = self.generator.params(self.config.M)  # (M, *event)
        sigma = self.current_sigma()
        self.count_step()
        h = sig_loss(real, theta, sigma, self.config.likelihood)
        if self.config.likelihood == "gaussian" and self.config.sigma_start:
            return {"loss": h, "sigma": torch.tensor(sigma)}
        return h

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return dict(IMAGE_RUN_DEFAULTS)
        # a cosine decay of the rate to 0 sharpens the θ clusters (figures: benchmarks/README.md, Q1)
        return {"steps": points_steps(data, SMALL_MIXTURE_STEPS, POINTS_STEPS), "batch_size": 256, "lr_decay": "cosine"}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("sig", SIG)
