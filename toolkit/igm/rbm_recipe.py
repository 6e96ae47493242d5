"""The RBM training recipe that the ``rbm`` and ``dbn`` families share: weights, CD-k and PCD.

The math of one RBM (free energy, Gibbs steps, AIS) is :mod:`igm.energy`; this module is how a
family *trains* one with the generic trainer:

- :func:`rbm_parameters` — the weights ``W`` (H, V) ~ N(0, init_std²), stored column by column
  (``W.T`` is the contiguous table that the sums of rows of :class:`igm.bits.Bits` read), and
  zero biases ``b`` (V,), ``c`` (H,): scikit-learn's ``BernoulliRBM`` start.
- :func:`contrastive_divergence_loss` — the loss ``mean F(v) − mean F(ṽ)`` of a batch ``v``
  against detached negatives ``ṽ``; its gradient is the CD/PCD update, so plain SGD on it is
  scikit-learn's step. CD-k: ``ṽ`` after ``cd_k`` Gibbs sweeps from the batch. PCD: the
  persistent chains' hidden states take ``cd_k`` sweeps and are updated in place.
- :class:`RBMTrainingConfig` — the settings every RBM-trained family shares (visible units,
  CD-k/PCD, plain SGD, initial weights, Gibbs sweeps of ``sample``), checked, with
  :meth:`~RBMTrainingConfig.resolve` for ``visible=auto`` and ``lr=0`` and
  :meth:`~RBMTrainingConfig.player` for the one SGD player (scikit-learn's update: ``lr`` times
  the batch mean, no momentum or weight decay unless asked).
- Centering (``centering``): :func:`contrastive_divergence_loss` with ``offsets`` turns the
  gradient into the centred one (:class:`_Centred`) and keeps the offsets' moving averages.
- Parallel tempering (``temperatures``, ``min_beta``): the persistent chains at K inverse
  temperatures (:meth:`RBMTrainingConfig.betas`, :meth:`RBMTrainingConfig.chain_rows`),
  swapped by :func:`igm.energy.swap_states`.
- :func:`start_chains` and :func:`resize_chains` — persistent chains live in a buffer of the
  model (so they are in its checkpoint and a resumed run continues them): empty until the first
  batch sizes them (all zeros, scikit-learn's ``h_samples_`` start: the first negatives are drawn
  from p(v | h = 0)), and resized from a checkpoint before a strict load.

Every random draw comes from the global torch RNG, which the trainer saves and restores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from igm.bits import Bits
from igm.data.base import DataInfo
from igm.errors import ConfigError
from igm.limits import check_allocation
from igm.models import Player
from igm.energy import (
    RBMParams,
    bernoulli,
    hidden_input,
    sample_hidden,
    sample_visible,
    stacked_free_energy_difference,
    tempered_sweeps,
)


@dataclass
class RBMTrainingConfig:
    """How an RBM (or each layer of a stack) is trained and sampled; a family's config extends it."""

    visible: Literal["auto", "bernoulli", "gaussian"] = "auto"  # auto: bernoulli for data in [0, 1]
    cd_k: int = 1  # Gibbs sweeps per update (from the data for CD, from the chains for PCD)
    persistent: bool = False  # PCD: persistent chains instead of chains started at the data
    chains: int = 0  # persistent chains; 0: the batch size
    lr: float = 0.0  # 0: 0.1 for Bernoulli visibles (scikit-learn's default), 0.01 for Gaussian ones
    momentum: float = 0.0
    weight_decay: float = 0.0  # L2 on every parameter (SGD's weight_decay)
    init_std: float = 0.01  # W ~ N(0, init_std²); biases start at 0 (as scikit-learn)
    gibbs_steps: int = 1000  # sweeps of generator.sample
    centering: bool = False  # centred gradient: offsets for the visible and hidden units (Melchior et al. 2016)
    offset_rate: float = 0.01  # the offsets' moving-average rate per update (1: each batch's means)
    temperatures: int = 1  # PCD with parallel tempering: chains at this many inverse temperatures (1: plain PCD)
    min_beta: float = 0.6  # the hottest chains' inverse temperature; the ladder is linear from 1 down to it
    sample_temperatures: int = 1  # generator.sample: parallel tempering on this many temperatures (1 to min_beta); 1: Gibbs

    def __post_init__(self) -> None:
        if self.cd_k < 1 or self.gibbs_steps < 0:
            raise ConfigError("cd_k must be at least 1, gibbs_steps at least 0")
        if not 0.0 < self.offset_rate <= 1.0:
            raise ConfigError(f"offset_rate must be in (0, 1], got {self.offset_rate}")
        if self.temperatures < 1 or not 0.0 <= self.min_beta < 1.0:
            raise ConfigError(f"temperatures must be at least 1 and min_beta in [0, 1), got {self.temperatures}, {self.min_beta}")
        if self.sample_temperatures < 1:
            raise ConfigError(f"sample_temperatures must be at least 1, got {self.sample_temperatures}")
        if self.temperatures > 1 and not self.persistent:
            raise ConfigError("temperatures > 1 (parallel tempering of persistent chains) needs persistent=true: with persistent=false use temperatures=1")
        if self.chains < 0 or self.lr < 0 or self.momentum < 0 or self.weight_decay < 0 or self.init_std < 0:
            raise ConfigError("chains, lr, momentum, weight_decay and init_std must be 0 or positive")

    def betas(self, count: int | None = None) -> Tensor | None:
        """The inverse temperatures of parallel tempering, 1 first: ``count`` of them (default
        ``temperatures``), linear from 1 to ``min_beta``; None for one (plain PCD, CD or Gibbs)."""
        count = self.temperatures if count is None else count
        if count == 1:
            return None
        return torch.linspace(1.0, self.min_beta, count, dtype=torch.float64)

    def chain_rows(self, batch: int) -> int:
        """Rows of the persistent chains' buffer: ``chains`` (0: the batch size) at each temperature."""
        return (self.chains or batch) * self.temperatures

    def resolve(self, data: DataInfo) -> Any:
        """This config with ``visible`` and ``lr`` made concrete for ``data`` (a subclass stays a subclass)."""
        visible = self.visible
        if visible == "auto":
            visible = "bernoulli" if data.value_range == (0.0, 1.0) else "gaussian"
        if visible == "bernoulli" and data.value_range != (0.0, 1.0):
            raise ConfigError(f"visible=bernoulli needs data in [0, 1]; '{data.name}' is not: use visible=gaussian")
        return dataclasses.replace(self, visible=visible, lr=self.lr or (0.1 if visible == "bernoulli" else 0.01))

    def player(self, name: str, parameters: Sequence[nn.Parameter]) -> Player:
        """The one SGD player that trains ``parameters``."""
        return Player(name, list(parameters), lr=self.lr, optimizer="sgd", momentum=self.momentum, weight_decay=self.weight_decay)

    def check_chains(self, layers: Sequence[tuple[int, int]]) -> None:
        """A one-line DataError when ``chains`` persistent chains for RBMs of (visible, hidden) sizes do not fit."""
        count = self.chains * self.temperatures if self.persistent else 0
        check_allocation(  # the chains and one sweep's visible and hidden states
            4 * count * sum(2 * v + 2 * h for v, h in layers), f"{count:,} persistent chains", "use fewer chains"
        )


def rbm_parameters(hidden: int, visible: int, init_std: float = 0.01) -> tuple[nn.Parameter, nn.Parameter, nn.Parameter]:
    """``W`` (H, V) ~ N(0, init_std²) stored column by column, ``b`` (V,) = 0, ``c`` (H,) = 0."""
    w = init_std * torch.randn(hidden, visible)  # (H, V)
    return nn.Parameter(w.T.contiguous().T), nn.Parameter(torch.zeros(visible)), nn.Parameter(torch.zeros(hidden))


def start_chains(chains: Tensor, count: int, like: Tensor) -> Tensor:
    """``chains`` (M, H), or — while it is still empty — ``count`` chains at h = 0 in ``like``'s dtype and device."""
    if chains.numel():
        return chains
    return torch.zeros(count, chains.shape[1], dtype=like.dtype, device=like.device)


def resize_chains(chains: Tensor, saved: Tensor | None) -> Tensor:
    """An empty tensor of the saved chains' shape when it differs from ``chains``'s (before a strict load)."""
    if saved is None or saved.shape == chains.shape:
        return chains
    return torch.empty(saved.shape, dtype=chains.dtype, device=chains.device)


class _Centred(torch.autograd.Function):
    """``(W, b, c)`` unchanged; their gradient turned into the centred update in the same coordinates.

    The centred RBM (Montavon & Müller 2012; Melchior, Fischer & Wiskott 2016) has the energy
    ``−(h − λ)ᵀ W (v − μ) − b'ᵀ(v − μ) − c'ᵀ(h − λ)``: the plain RBM of ``W``, ``b = b' − Wᵀλ``,
    ``c = c' − Wμ`` (up to a constant), so the model's distribution is the plain parameters' and
    only the update changes. Gradient steps on ``(W, b', c')`` seen in the plain coordinates are
    ``G_W = g_W − λ g_bᵀ − g_c μᵀ``, ``G_b = g_b − G_Wᵀλ``, ``G_c = g_c − G_W μ`` (g: the
    plain gradient); for fixed offsets this is exact SGD (with momentum) on the centred RBM, and
    the plain parameters keep the distribution when the offsets move.
    """

    @staticmethod
    def forward(ctx, W, b, c, mu, lam):  # type: ignore[override]  # noqa: ANN001, ANN205, N803
        ctx.save_for_backward(mu, lam)
        return W.view_as(W), b.view_as(b), c.view_as(c)

    @staticmethod
    def backward(ctx, g_w, g_b, g_c):  # type: ignore[override]  # noqa: ANN001, ANN205
        mu, lam = ctx.saved_tensors
        G_w = g_w - torch.outer(lam, g_b) - torch.outer(g_c, mu)  # (H, V)  # noqa: N806
        return G_w, g_b - lam @ G_w, g_c - G_w @ mu, None, None


def centred(params: RBMParams, offsets: Tensor) -> RBMParams:
    """``params`` whose gradient is the centred one for ``offsets`` ``[μ; λ]`` (V + H,) (see :class:`_Centred`)."""
    mu, lam = offsets.detach().split([params.num_visible, params.num_hidden])
    W, b, c = _Centred.apply(params.W, params.b, params.c, mu, lam)  # noqa: N806
    return RBMParams(W, b, c, params.visible)


def update_offsets(offsets: Tensor, v: Tensor, p: Tensor, rate: float) -> None:
    """Move ``offsets`` ``[μ; λ]`` (V + H,) towards the batch's means of ``v`` (B, V) and ``p`` (B, H).

    An empty ``offsets`` (a fresh model: the buffer is sized at the first batch) is resized in
    place and takes the batch's means.
    """
    means = torch.cat([v.mean(0), p.mean(0)]).to(offsets.dtype)
    if offsets.numel() != means.numel():
        offsets.resize_(means.shape).copy_(means)
    else:
        offsets.lerp_(means, rate)


def contrastive_divergence_loss(
    params: RBMParams,
    v: Tensor,
    cd_k: int,
    chains: Tensor | None = None,
    offsets: Tensor | None = None,
    offset_rate: float = 0.01,
    betas: Tensor | None = None,
) -> Tensor:
    """``mean F(v) − mean F(ṽ)`` for a batch ``v`` (B, V); ``ṽ`` from CD-k, or PCD when ``chains`` is given.

    ``params`` are the trained tensors (the gradient flows into them); ``chains`` (M, H) are the
    persistent chains' hidden states, advanced in place (see :func:`start_chains`). With
    ``offsets`` ``[μ; λ]`` (V + H,; empty until the first batch) the gradient is the centred one
    (:class:`_Centred`): the offsets move by ``offset_rate`` towards the batch's mean visible
    values and mean hidden probabilities, in place, before the update; the loss value is the same.
    With ``betas`` (K,) the chains (K·M, H) run parallel tempering (:func:`igm.energy.tempered_sweeps`)
    and the negatives are the M chains at ``β = 1`` after the swaps.

    Every hidden input ``c + W v`` is computed once and the backward pass is one product
    (:func:`igm.energy.stacked_free_energy_difference` on the rows ``[v; ṽ]``). PCD's negatives
    do not depend on the batch, so its data and negatives share one product of double height
    whose sigmoid gives the chains' next state and the gradient alike: a PCD-1 update is 3 matrix
    products (2 of them double), the arithmetic of scikit-learn's 5. On binary data the products
    with the rows ``[v; ṽ]`` are sums of the rows of ``W.T`` (:class:`igm.bits.Bits`). The hidden
    states stay dense: ~25% ones, and the sums over ``W``'s rows would need a transposed copy.
    """
    fixed = params.detach()
    B = v.shape[0]
    with torch.no_grad():
        bits_v = Bits.of(v) if fixed.visible == "bernoulli" else None  # None unless the batch is 0/1 and sparse
        if betas is not None:  # parallel tempering: the negatives are the chains at β = 1 after the swaps
            M = chains.shape[0] // betas.numel()  # noqa: N806
            neg, _, a_neg, h = tempered_sweeps(fixed, chains, betas, cd_k)
            chains.copy_(h)
            neg, a_neg = neg[:M], a_neg[:M]
            bits = Bits.stack([bits_v, Bits.of(neg, binary=True) if bits_v is not None else None])
            x, a = torch.cat([v, neg]), torch.cat([hidden_input(fixed, v, bits_v), a_neg])
            p = torch.sigmoid(a)
        else:
            if chains is not None:
                h, a_pos = chains, None
            else:
                a_pos = hidden_input(fixed, v, bits_v)  # (B, H)
                h = bernoulli(torch.sigmoid(a_pos))
            for sweep in range(cd_k):
                neg, _ = sample_visible(fixed, h)  # (M, V)
                if sweep < cd_k - 1:
                    h = sample_hidden(fixed, neg)
            bits_neg = Bits.of(neg, binary=True) if bits_v is not None else None
            x = torch.cat([v, neg])  # (B + M, V)
            bits = Bits.stack([bits_v, bits_neg])  # x's ones, or None (dense products)
            if a_pos is None:  # PCD: one product for the data and the negatives
                a = hidden_input(fixed, x, bits)  # (B + M, H)
            else:
                a = torch.cat([a_pos, hidden_input(fixed, neg, bits_neg)])
            p = torch.sigmoid(a)
            if chains is not None:
                chains.copy_(bernoulli(p[B:]))
        if offsets is not None:
            update_offsets(offsets, v, p[:B], offset_rate)
    if offsets is not None:
        params = centred(params, offsets)
    return stacked_free_energy_difference(params, x, B, a, p, bits)
