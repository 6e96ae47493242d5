"""The RBM family: restricted Boltzmann machines trained by contrastive divergence.

A Bernoulli-Bernoulli RBM for data in [0, 1] (binary data, or intensities read as
probabilities), a Gaussian-Bernoulli one (unit-variance visible units; standardise the data)
for real-valued data; ``visible=auto`` picks by the data's value range. The math lives in the
core (:mod:`igm.energy`) so the ``ais`` and ``pseudo-likelihood`` metrics can score any RBM, and
so does the training recipe (:mod:`igm.rbm_recipe`: weights, CD-k/PCD loss, persistent chains),
which the ``dbn`` family trains each of its layers with.

Training has one player, ``rbm``, whose loss is the free-energy difference

    L = mean_i F(v_i) − mean_m F(ṽ_m),

with ``ṽ`` detached negative samples. Its gradient is the usual CD/PCD update (positive phase
on the data, negative phase on the samples), so the generic trainer steps it with plain SGD,
the update of scikit-learn's ``BernoulliRBM`` (``lr`` times the batch mean).

* CD-k (``persistent=false``): ``ṽ`` is ``cd_k`` Gibbs sweeps v → h → v started at the batch.
* PCD (``persistent=true``, the default): ``chains`` persistent chains (0: the batch size) take ``cd_k``
  sweeps per update. Their state is the hidden layer (as scikit-learn's ``h_samples_``): the
  buffer ``chains`` (chains, H) of the model, all zeros at the first batch (scikit-learn's
  start: the first negatives are drawn from p(v | h = 0), bits from σ(b) or N(b, I)), so the
  chains live in the checkpoint and a resumed run continues them exactly; their Gibbs noise
  comes from the global torch RNG, which the trainer saves.

The defaults (benchmarks/README.md, "RBM defaults: 1,000 hidden units, centred and tempered"):
1,000 hidden units, and two options of the core's recipe that are on unless set off:

* ``centering`` (true): the centred gradient (Melchior, Fischer & Wiskott 2016) with offsets
  ``[μ; λ]`` (the buffer ``offsets``, in the checkpoint): moving averages (``offset_rate``) of
  the data's visible means and hidden probabilities. The weights stay the plain ``W, b, c``
  (the metrics and the sampler read them as before); only the update changes.
* ``temperatures`` (0: 9 for PCD, 1 for CD): parallel tempering for the
  negative phase: ``chains`` chains at each of K inverse temperatures from 1 down to
  ``min_beta`` (linear), a Gibbs sweep at each, then Metropolis swaps of neighbours; the
  negatives are the ``β = 1`` chains. ``sample_temperatures`` (9) samples the same way, for
  ``gibbs_steps`` (300) sweeps: plain Gibbs stays within a digit or two for thousands of sweeps
  and under-shows some of the model's classes.

On binarized MNIST they reach −92.6 nats (scikit-learn's ``BernoulliRBM`` of the same size and
passes: −95.4) and every digit in at least 5% of the samples (seed 0), at about 3.5× the time of plain
PCD with 500 hidden units (the former defaults: ``--set hidden=500 --set centering=false
--set temperatures=1 --set sample_temperatures=1 --set gibbs_steps=1000``). A checkpoint
written before these options loads with them off, as it was trained and sampled.

``model.generator`` is an :class:`RBMGenerator`: ``sample(n)`` runs ``gibbs_steps`` sweeps
(tempered ones unless ``sample_temperatures=1``) from noise (uniform bits, or N(b, I)) and
returns the visible means ``E[v | h]`` of the last sweep (probabilities in [0, 1] for Bernoulli
units); ``sample_from(x, steps)`` runs the plain chain from given data. ``model.rbm_params()``
hands the metrics the weights.

On images the suggested run is 6,000 updates of batch 100 (10 passes over MNIST) with the
learning rate decaying linearly to 0 (``run_defaults``): PCD-1 at a constant rate keeps moving
and its log-likelihood varies by 10–20 nats from seed to seed (benchmarks/README.md, Q3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

import igm
from igm import (
    Batch,
    ConfigError,
    DataInfo,
    Generator,
    Model,
    Player,
    RBMParams,
    RBMTrainingConfig,
    bernoulli,
    contrastive_divergence_loss,
    gibbs,
    randn,
    rbm_parameters,
    resize_chains,
    start_chains,
)

__version__ = "0.1.0"
__all__ = ["RBM", "RBMConfig", "RBMGenerator"]

DEFAULT_TEMPERATURES = 9  # PCD's ladder when temperatures is 0 (1 → min_beta 0.6: swaps accepted 20-55% per pair)


@dataclass
class RBMConfig(RBMTrainingConfig):
    """RBM settings: its size, and the core's CD/PCD, SGD and sampling settings."""

    hidden: int = 1000
    persistent: bool = True  # PCD (scikit-learn's algorithm); false: CD-k from the batch
    centering: bool = True  # the centred gradient (Melchior et al. 2016)
    temperatures: int = 0  # parallel tempering of the persistent chains, 1 to min_beta; 0: 9 for PCD, 1 for CD
    sample_temperatures: int = 9  # generator.sample by parallel tempering too; 1: plain Gibbs
    gibbs_steps: int = 300  # sweeps of generator.sample (at each temperature)

    def __post_init__(self) -> None:
        if self.temperatures == 0:
            self.temperatures = DEFAULT_TEMPERATURES if self.persistent else 1
        super().__post_init__()
        if self.hidden < 1:
            raise ConfigError("hidden must be at least 1")


class RBMGenerator(Generator):
    """The RBM's parameters and its Gibbs sampler: ``W`` (H, V), ``b`` (V,), ``c`` (H,)."""

    def __init__(
        self,
        event_shape: tuple[int, ...],
        hidden: int,
        visible: Literal["bernoulli", "gaussian"],
        gibbs_steps: int,
        init_std: float = 0.01,
        value_range: tuple[float, float] | None = None,
        betas: Tensor | None = None,
    ) -> None:
        super().__init__(event_shape)
        num_visible = 1
        for d in event_shape:
            num_visible *= d
        self.visible, self.gibbs_steps, self.value_range = visible, gibbs_steps, value_range
        self.betas = betas  # parallel tempering's inverse temperatures for sampling (None: plain Gibbs)
        self.W, self.b, self.c = rbm_parameters(hidden, num_visible, init_std)  # (H, V) by columns, (V,), (H,)

    def params(self) -> RBMParams:
        return RBMParams(self.W, self.b, self.c, self.visible)

    def flat(self, x: Tensor) -> Tensor:
        return rearrange(x, "n ... -> n (...)").to(self.W.dtype)  # (n, V)

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Chain starts (n, V): uniform bits, or N(b, I) for Gaussian visibles."""
        v = self.W.shape[1]
        if self.visible == "gaussian":
            return self.b.detach() + randn((n, v), generator, self.device)
        return bernoulli(torch.full((n, v), 0.5, device=self.device), generator)

    def sample_from(self, x: Tensor, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``steps`` (default ``gibbs_steps``) sweeps from ``x`` (n, *event): the last visible means."""
        steps = self.gibbs_steps if steps is None else steps
        with torch.no_grad():
            _, mean = gibbs(self.params().detach(), self.flat(x), steps, generator, self.betas)
        if self.value_range is not None and self.visible == "gaussian":
            mean = mean.clamp(*self.value_range)
        return mean.reshape(x.shape[0], *self.event_shape)

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        start = self.noise(n, generator).reshape(n, *self.event_shape)
        return self.sample_from(start, generator=generator)


class RBM(Model):
    """A restricted Boltzmann machine: one player, the free-energy difference loss."""

    name = "rbm"
    Config = RBMConfig

    def __init__(self, config: RBMConfig, data: DataInfo) -> None:
        config = config.resolve(data)  # visible and lr for this data
        super().__init__(config, data)
        self.generator = RBMGenerator(
            data.event_shape, config.hidden, config.visible, config.gibbs_steps, config.init_std, data.value_range,
            config.betas(config.sample_temperatures),
        )
        if config.persistent:  # the chains' hidden states (chains, H); sized at the first batch when chains = 0
            self.register_buffer("chains", torch.empty(0, config.hidden))
            config.check_chains([(math.prod(data.event_shape), config.hidden)])
        if config.centering:  # the offsets [μ; λ] (V + H,) of the centred gradient; sized at the first batch
            self.register_buffer("offsets", torch.empty(0))

    def rbm_params(self) -> RBMParams:
        """The weights, for the ``ais`` and ``pseudo-likelihood`` metrics."""
        return self.generator.params()

    def players(self) -> list[Player]:
        return [self.config.player("rbm", self.generator.parameters())]

    def prepare_load(self, tensors: Mapping[str, Tensor]) -> None:
        """Persistent chains are sized at the first batch: take the saved size before a strict load."""
        if self.config.persistent:
            self.chains = resize_chains(self.chains, tensors.get("chains"))
        if self.config.centering and "offsets" not in tensors:  # written before centering and tempering were
            # the defaults: its config names neither, so it keeps the plain PCD and Gibbs it was trained and sampled with
            self.config = dataclasses.replace(self.config, centering=False, temperatures=1, sample_temperatures=1)
            self.generator.betas = None
            del self.offsets
        elif self.config.centering:
            self.offsets = resize_chains(self.offsets, tensors["offsets"])

    def loss(self, player: str, batch: Batch) -> Tensor:
        """``mean F(v) − mean F(ṽ)``; ``ṽ`` from CD-k (from the batch) or PCD (the persistent chains).

        :func:`igm.contrastive_divergence_loss` does the work (one product per hidden input,
        sums of weight rows on binary data).
        """
        v = self.generator.flat(batch[0])  # (B, V)
        chains = None
        if self.config.persistent:  # sized at the first batch, at h = 0 (scikit-learn's h_samples_)
            self.chains = chains = start_chains(self.chains, self.config.chain_rows(v.shape[0]), v)
        offsets = self.offsets if self.config.centering else None
        return contrastive_divergence_loss(
            self.generator.params(), v, self.config.cd_k, chains, offsets, self.config.offset_rate, self.config.betas()
        )

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return {"steps": 6000, "batch_size": 100, "sample_every": 1000, "lr_decay": "linear"}
        return {"steps": 5000, "batch_size": 100}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("rbm", RBM)
