"""The DBN family: deep belief nets, stacks of RBMs trained greedily layer by layer.

Layer 0 is an RBM on the data (Bernoulli visibles for data in [0, 1], Gaussian ones otherwise,
as the ``rbm`` family); layer l > 0 is a Bernoulli RBM whose visible units are layer l−1's
hidden units. Hinton, Osindero & Teh (2006): train layer 0 on the data, freeze it, train layer 1
on its hidden units given the data, and so on. Each layer is trained with the core's RBM recipe
(:func:`igm.contrastive_divergence_loss`: CD-k, or PCD with persistent chains per layer kept in
the checkpoint) — the very code of the ``rbm`` family, so a DBN of one layer *is* that RBM.

The run is split into consecutive blocks of steps, one per layer (``shares``, equal by
default). The layer in training is a pure function of the model's step counter (a buffer, in
the checkpoint) and the run's planned total (:meth:`igm.Model.plan`), so a resumed run trains
the same layer at the same step as an unbroken one. One SGD player, ``dbn``, holds every
layer's parameters; only the layer in training gets gradients (SGD skips the others), so lower
layers stay frozen. ``lr_decay=linear`` decays the rate to 0 over each layer's block (the
gradient is scaled by the block's factor), the decay that made the RBM match scikit-learn.
Layer l > 0 trains on the up pass of the batch through the frozen layers below it:
``propagate=mean`` feeds the probabilities σ(c + W x), ``sample`` bits drawn from them.

The recipe's options apply to every layer: ``centering=true`` (each layer's offsets
``offsetsL`` in the checkpoint, the mean of its input and of its hidden probabilities) and
``temperatures=K`` (parallel tempering for each layer's persistent chains); with
``sample_temperatures=K`` the top RBM is sampled by parallel tempering.

``model.generator.sample(n)`` runs ``gibbs_steps`` Gibbs sweeps in the top RBM from uniform
bits, then passes down the directed layers, drawing h_{l−1} ~ σ(b_l + W_lᵀ h_l), and returns the
visible means of the bottom layer. ``model.rbm_layers()`` hands the ``ais`` metric the weights:
with one layer it scores the RBM exactly as for ``rbm``; with more it reports the variational
lower bound of :func:`igm.dbn_log_likelihood_bound` (AIS for the top RBM's log Z).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor, nn

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
    hidden_input,
    randn,
    rbm_parameters,
    resize_chains,
    sample_visible,
    short_run_note,
    start_chains,
)

__version__ = "0.1.0"
__all__ = ["DBN", "DBNConfig", "DBNGenerator"]


@dataclass
class DBNConfig(RBMTrainingConfig):
    """DBN settings: layer sizes and shares of the run, the core's CD/PCD, SGD and sampling settings
    for every layer (``visible`` is the bottom layer's; ``gibbs_steps`` run in the top RBM)."""

    hidden: tuple[int, ...] = (500, 500)  # hidden units of each layer, bottom first
    shares: tuple[float, ...] = ()  # each layer's share of the run's steps; (): equal shares
    persistent: bool = True  # PCD: persistent chains per layer instead of chains started at the batch
    lr_decay: Literal["none", "linear"] = "linear"  # linear: each layer's rate falls to 0 over its block (leave --lr-decay at none)
    propagate: Literal["mean", "sample"] = "mean"  # what an upper layer trains on: σ(c + W x) or bits from it
    centering: bool = True  # each layer's centred gradient (with temperatures=9: every digit >= 5% of samples on MNIST)
    temperatures: int = 9  # parallel tempering for each layer's persistent chains, 1 to min_beta; 1: plain PCD

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden, self.shares = tuple(self.hidden), tuple(self.shares)
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden needs at least one layer of at least 1 unit, got {self.hidden}")
        if self.shares and (len(self.shares) != len(self.hidden) or min(self.shares) <= 0):
            raise ConfigError(f"shares needs one positive share per layer ({len(self.hidden)}), got {self.shares}")


class RBMLayer(nn.Module):
    """One layer's RBM: ``W`` (H, V), ``b`` (V,), ``c`` (H,)."""

    def __init__(self, hidden: int, visible_units: int, visible: Literal["bernoulli", "gaussian"], init_std: float) -> None:
        super().__init__()
        self.visible = visible
        self.W, self.b, self.c = rbm_parameters(hidden, visible_units, init_std)

    def params(self) -> RBMParams:
        return RBMParams(self.W, self.b, self.c, self.visible)


class DBNGenerator(Generator):
    """The stacked layers and the sampler: Gibbs in the top RBM, then down the directed layers."""

    def __init__(
        self,
        event_shape: tuple[int, ...],
        hidden: tuple[int, ...],
        visible: Literal["bernoulli", "gaussian"],
        gibbs_steps: int,
        init_std: float = 0.01,
        value_range: tuple[float, float] | None = None,
        betas: Tensor | None = None,
    ) -> None:
        super().__init__(event_shape)
        sizes = (math.prod(event_shape), *hidden)
        kinds = [visible] + ["bernoulli"] * (len(hidden) - 1)
        self.layers = nn.ModuleList(
            RBMLayer(h, v, kind, init_std) for v, h, kind in zip(sizes, sizes[1:], kinds)
        )
        self.gibbs_steps, self.value_range = gibbs_steps, value_range
        self.betas = betas  # parallel tempering's inverse temperatures in the top RBM (None: plain Gibbs)

    def params(self) -> list[RBMParams]:
        return [layer.params() for layer in self.layers]

    def up(self, x: Tensor, layers: int, sample: bool) -> Tensor:
        """The data ``x`` (n, *event) passed up through the first ``layers`` layers: probabilities or bits."""
        x = rearrange(x, "n ... -> n (...)").to(self.layers[0].W.dtype)
        for layer in self.layers[:layers]:
            x = torch.sigmoid(hidden_input(layer.params().detach(), x))
            x = bernoulli(x) if sample else x
        return x

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        *directed, top = [p.detach() for p in self.params()]
        with torch.no_grad():
            if top.visible == "gaussian":  # a one-layer net on real-valued data, started as the rbm family's
                start = top.b + randn((n, top.num_visible), generator, self.device)
            else:
                start = bernoulli(torch.full((n, top.num_visible), 0.5, device=self.device), generator)
            h, mean = gibbs(top, start, self.gibbs_steps, generator, self.betas)
            for params in reversed(directed):
                h, mean = sample_visible(params, h, generator)
        if self.value_range is not None and self.layers[0].visible == "gaussian":
            mean = mean.clamp(*self.value_range)
        return mean.reshape(n, *self.event_shape)


class DBN(Model):
    """A deep belief net: stacked RBMs trained greedily, one player, the layer in training's CD/PCD loss."""

    name = "dbn"
    Config = DBNConfig

    def __init__(self, config: DBNConfig, data: DataInfo) -> None:
        config = config.resolve(data)  # the bottom layer's visible units and lr for this data
        super().__init__(config, data)
        self.generator = DBNGenerator(
            data.event_shape, config.hidden, config.visible, config.gibbs_steps, config.init_std, data.value_range,
            config.betas(config.sample_temperatures),
        )
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))  # training steps taken, for the layer schedule
        if config.persistent:  # each layer's chains (chains, H_l); sized at its first batch when chains = 0
            for index, hidden in enumerate(config.hidden):
                self.register_buffer(f"chains{index}", torch.empty(0, hidden))
            sizes = (math.prod(data.event_shape), *config.hidden)
            config.check_chains(list(zip(sizes, sizes[1:])))
        if config.centering:  # each layer's offsets [μ; λ] (V_l + H_l,) of the centred gradient; sized at its first batch
            for index in range(len(config.hidden)):
                self.register_buffer(f"offsets{index}", torch.empty(0))

    def rbm_layers(self) -> list[RBMParams]:
        """Every layer's weights, bottom first, for the ``ais`` metric."""
        return self.generator.params()

    def plan(self, steps: int) -> str | None:
        super().plan(steps)
        return short_run_note(self, steps)

    def layer_ends(self) -> list[int]:
        """The step at which each layer's block ends, for a run of ``run_steps``."""
        shares = self.config.shares or (1.0,) * len(self.config.hidden)
        total = sum(shares)
        ends = [round(self.run_steps * s / total) for s in itertools.accumulate(shares)]
        return ends[:-1] + [self.run_steps]

    def layer_at(self, step: int) -> tuple[int, float]:
        """The layer trained in (0-based) ``step`` and its rate factor there (1 without ``lr_decay``)."""
        ends = self.layer_ends()
        layer = next((i for i, end in enumerate(ends) if step < end), len(ends) - 1)
        start = ends[layer - 1] if layer else 0
        if self.config.lr_decay == "none" or step >= ends[layer]:
            return layer, 1.0
        return layer, 1.0 - (step - start) / (ends[layer] - start)

    def players(self) -> list[Player]:
        return [self.config.player("dbn", self.generator.parameters())]

    def prepare_load(self, tensors: Mapping[str, Tensor]) -> None:
        """Persistent chains are sized at each layer's first batch: take the saved sizes before a strict load."""
        if self.config.persistent:
            for index in range(len(self.config.hidden)):
                name = f"chains{index}"
                setattr(self, name, resize_chains(getattr(self, name), tensors.get(name)))
        if self.config.centering and "offsets0" not in tensors:  # written before centering and tempering were
            self.config = dataclasses.replace(self.config, centering=False, temperatures=1)  # its settings: a resume continues them
            for index in range(len(self.config.hidden)):
                delattr(self, f"offsets{index}")
        elif self.config.centering:
            for index in range(len(self.config.hidden)):
                name = f"offsets{index}"
                setattr(self, name, resize_chains(getattr(self, name), tensors[name]))

    def loss(self, player: str, batch: Batch) -> Mapping[str, Tensor]:
        """The CD/PCD loss of the layer in training, on the batch passed up through the frozen layers below it."""
        layer, factor = self.layer_at(int(self.step))
        if self.training:
            self.step += 1
        with torch.no_grad():
            x = self.generator.up(batch[0], layer, self.config.propagate == "sample")  # (B, V_l)
        chains = None
        if self.config.persistent:
            name = f"chains{layer}"
            chains = start_chains(getattr(self, name), self.config.chain_rows(x.shape[0]), x)
            setattr(self, name, chains)
        offsets = getattr(self, f"offsets{layer}") if self.config.centering else None
        loss = contrastive_divergence_loss(
            self.generator.layers[layer].params(), x, self.config.cd_k, chains, offsets, self.config.offset_rate,
            self.config.betas(),
        )
        if factor != 1.0:
            loss = loss * factor  # SGD's step scales with the gradient: the layer's decayed rate
        return {"loss": loss, "layer": torch.tensor(float(layer))}

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return {"steps": 12_000, "batch_size": 100, "sample_every": 2000}
        return {"steps": 5000, "batch_size": 100}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("dbn", DBN)
