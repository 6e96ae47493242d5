"""Restricted Boltzmann machines: free energy, Gibbs steps, exact and AIS log-partitions.

The core holds this math (not the ``rbm`` plugin) because the ``ais`` and
``pseudo-likelihood`` metrics need it, and so do benchmarks that score scikit-learn's weights.

An RBM is :class:`RBMParams`: weights ``W`` of shape ``(H, V)`` (hidden × visible, the layout of
scikit-learn's ``BernoulliRBM.components_``), visible bias ``b`` ``(V,)`` and hidden bias ``c``
``(H,)``; hidden units are binary. Two kinds of visible units:

* ``bernoulli`` — binary visibles, energy ``E(v, h) = −b·v − c·h − hᵀWv``;
  free energy ``F(v) = −b·v − Σ_j softplus(c_j + W_j·v)``.
* ``gaussian`` — real visibles with unit variance (the data should be standardised),
  ``E(v, h) = ½‖v − b‖² − c·h − hᵀWv``; ``F(v) = ½‖v − b‖² − Σ_j softplus(c_j + W_j·v)``
  and ``p(v | h) = N(b + Wᵀh, I)``.

``p(v) = exp(−F(v)) / Z``. :func:`log_partition_exact` sums over the hidden layer
(``H ≤ 20``): ``log Z = logsumexp_h [c·h + Σ_i softplus(b_i + (Wᵀh)_i)]`` for Bernoulli
visibles, ``logsumexp_h [c·h + b·Wᵀh + ½‖Wᵀh‖²] + (V/2) log 2π`` for Gaussian ones.

:func:`ais_log_partition` is annealed importance sampling (Salakhutdinov & Murray 2008). The
base model A has no weights and visible bias ``b_A`` (the base-rate model: logit of the data's
pixel means for Bernoulli visibles, the data mean for Gaussian ones; the RBM's own ``b`` when
no data are given). The intermediate distributions interpolate the *energies* of A and of the
RBM B, summed over both hidden layers:

    p*_β(v) = exp(v·((1−β) b_A + β b)) · Π_j (1 + exp(β (c_j + W_j·v)))       (Bernoulli)

(for Gaussian visibles the first factor is ``exp(−(1−β)‖v−b_A‖²/2 − β‖v−b‖²/2)``), so that every
p_β is itself an RBM with weights ``βW`` and an exact Gibbs transition; ``p_0`` is A
(``log Z_0 = H log 2 + Σ_i softplus(b_A,i)``, or ``H log 2 + (V/2) log 2π``) and ``p_1`` is B.
This is the paper's scheme; it differs from the geometric mean of the two free energies
``exp(−(1−β)F_A − βF_B)``, which has no tractable Gibbs step. Each of ``runs`` chains
accumulates ``log w = Σ_k log p*_{β_k}(v_k) − log p*_{β_{k−1}}(v_k)`` in float64, and

    log Ẑ = log Z_0 + log mean_m w_m.

Its standard error is the delta method, ``se(log Ẑ) = sd(w) / (√M · mean(w))``; the result also
carries the ±3σ band on the mean of the weights that Salakhutdinov & Murray report
(``log(mean w ± 3 sd(w)/√M)``; the lower end is None when it reaches 0). AIS in expectation
underestimates ``log Z`` (Jensen), so the test log-likelihood it gives tends to be optimistic.

:func:`pseudo_likelihood` is scikit-learn's ``BernoulliRBM.score_samples``: one visible unit
per example flipped, ``V · log σ(F(ṽ) − F(v))``.

A deep belief net is a stack of RBMs ``layers[0] .. layers[L−1]`` (bottom first; layer l's
visible units are layer l−1's hidden ones): an RBM on top, ``p_top(h_{L−1})``, and directed
sigmoid layers below it, ``p(h_{l−1} | h_l) = σ(b_l + W_lᵀ h_l)`` (Gaussian ``N(b_0 + W_0ᵀh_1, I)``
for Gaussian visibles). Its log-likelihood sums over every hidden layer; what is tractable is
the variational lower bound of Hinton et al. (2006) and Salakhutdinov & Murray (2008), with the
factorial posteriors ``q(h_l | h_{l−1}) = σ(c_l + W_l h_{l−1})`` of the up pass:

    log p(v) ≥ E_q[log p(v | h_1) + Σ_{l=2}^{L−1} log p(h_{l−1} | h_l) − F_top(h_{L−1})] − log Z_top + H(q),

:func:`dbn_log_likelihood_bound` (Monte Carlo over ``q``, entropies in closed form; ``log Z_top``
from AIS or exact). With one layer it is the RBM's ``−F(v) − log Z`` itself.
:func:`dbn_log_likelihood_exact` sums over every hidden layer (tiny nets only, for tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as nnf
from einops import rearrange
from torch import Tensor

from igm.bits import Bits
from igm.generators import rand, randn

Visible = Literal["bernoulli", "gaussian"]
MAX_EXACT_HIDDEN = 20


@dataclass(frozen=True)
class RBMParams:
    """An RBM's tensors: ``W`` (H, V), ``b`` (V,), ``c`` (H,) and the kind of visible units."""

    W: Tensor  # (H, V)
    b: Tensor  # (V,)
    c: Tensor  # (H,)
    visible: Visible = "bernoulli"

    def __post_init__(self) -> None:
        h, v = self.W.shape
        if self.b.shape != (v,) or self.c.shape != (h,):
            raise ValueError(f"RBM shapes disagree: W {tuple(self.W.shape)}, b {tuple(self.b.shape)}, c {tuple(self.c.shape)}")
        if self.visible not in ("bernoulli", "gaussian"):
            raise ValueError(f"visible must be bernoulli or gaussian, got {self.visible!r}")

    @property
    def num_hidden(self) -> int:
        return self.W.shape[0]

    @property
    def num_visible(self) -> int:
        return self.W.shape[1]

    def detach(self, dtype: torch.dtype | None = None) -> RBMParams:
        """Detached copies (in ``dtype`` when given): for metrics, not for training."""
        conv = (lambda t: t.detach().to(dtype)) if dtype is not None else (lambda t: t.detach())
        return replace(self, W=conv(self.W), b=conv(self.b), c=conv(self.c))

    @classmethod
    def from_sklearn(cls, rbm: object, dtype: torch.dtype = torch.float64) -> RBMParams:
        """The weights of a fitted ``sklearn.neural_network.BernoulliRBM``."""
        as_t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
        return cls(as_t(rbm.components_), as_t(rbm.intercept_visible_), as_t(rbm.intercept_hidden_))  # type: ignore[attr-defined]


def flatten(v: Tensor, params: RBMParams) -> Tensor:
    """Examples of any event shape as rows of ``V`` visible values, in the RBM's dtype."""
    return rearrange(v, "n ... -> n (...)").to(params.W.dtype)


def hidden_input(params: RBMParams, v: Tensor, bits: Bits | None = None) -> Tensor:
    """``c + W v`` for each row of ``v`` (n, V) -> (n, H); ``bits``: ``v``'s ones, when the caller found them."""
    if bits is not None:
        return bits.matmul(params.W.T).add_(params.c)
    return torch.addmm(params.c, v, params.W.T)


def visible_input(params: RBMParams, h: Tensor) -> Tensor:
    """``b + Wᵀ h`` for each row of ``h`` (n, H) -> (n, V): logits or Gaussian means."""
    return torch.addmm(params.b, h, params.W)


def visible_energy(params: RBMParams, v: Tensor) -> Tensor:
    """The visible part of the free energy: ``−b·v`` or ``½‖v − b‖²`` (n,)."""
    if params.visible == "gaussian":
        return 0.5 * (v - params.b).pow(2).sum(-1)
    return -(v @ params.b)


def free_energy(params: RBMParams, v: Tensor, hidden: Tensor | None = None) -> Tensor:
    """``F(v) = −log Σ_h exp(−E(v, h))`` for each row of ``v`` (n, V) -> (n,).

    ``hidden`` is ``hidden_input(params, v)`` when the caller has it already (n, H).
    """
    hidden = hidden_input(params, v) if hidden is None else hidden
    return visible_energy(params, v) - nnf.softplus(hidden).sum(-1)


class _ContrastiveFreeEnergy(torch.autograd.Function):
    """``Σ_i r_i F(x_i)`` for rows ``x`` (n, V) with weights ``r`` (n,) and hidden inputs ``a`` (n, H).

    ``∂/∂a_ij = −r_i σ(a_ij)``, so every weight gradient is one (H, n) @ (n, V) product; ``σ(a)``
    comes from the caller when it has it (``p``), else from ``a``; with ``x``'s ones (``bits``) the
    product is a sum of rows.
    """

    @staticmethod
    def forward(ctx, W, b, c, x, a, r, p, gaussian, bits):  # type: ignore[override]  # noqa: ANN001, ANN205, N803
        visible = 0.5 * (x - b).pow(2).sum(1) if gaussian else -(x @ b)  # (n,)
        ctx.gaussian, ctx.bits = gaussian, bits
        ctx.by_columns = W.dim() == 2 and W.stride(0) == 1 and W.stride(1) == W.shape[0]  # W (H, V) stored as W.T
        ctx.save_for_backward(x, a if p is None else p, r, b)
        ctx.have_p = p is not None
        return r @ (visible - nnf.softplus(a).sum(1))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]  # noqa: ANN001, ANN205
        x, a_or_p, r, b = ctx.saved_tensors
        rg = r * grad  # (n,): the incoming gradient scales the (n, H) factors, not the (H, V) product
        s = (a_or_p if ctx.have_p else torch.sigmoid(a_or_p)) * (-rg)[:, None]  # ∂L/∂a (n, H)
        if ctx.bits is not None:  # (H, V) in W.T's layout, as W.T's rows are the sums
            grad_w = ctx.bits.t_matmul(s).T
        else:  # (H, V) in W's layout, so that autograd need not copy it
            grad_w = (x.T @ s).T if ctx.by_columns else s.T @ x
        grad_b = -(rg @ x)  # (V,): Bernoulli ∂F/∂b = −x; Gaussian −(x − b)
        if ctx.gaussian:
            grad_b = grad_b + rg.sum() * b
        return grad_w, grad_b, s.sum(0), None, None, None, None, None, None


def contrastive_weights(num_pos: int, num_neg: int, like: Tensor) -> Tensor:
    """Row weights ``1/B`` for the ``B`` positive rows then ``−1/M`` for the ``M`` negative ones."""
    r = torch.empty(num_pos + num_neg, dtype=like.dtype, device=like.device)
    r[:num_pos], r[num_pos:] = 1.0 / num_pos, -1.0 / num_neg
    return r


def stacked_free_energy_difference(
    params: RBMParams,
    x: Tensor,
    num_pos: int,
    a: Tensor | None = None,
    p: Tensor | None = None,
    bits: Bits | None = None,
) -> Tensor:
    """:func:`free_energy_difference` for ``x = [v; ṽ]`` (B + M, V), its first ``num_pos`` rows the data.

    ``a`` is ``hidden_input(params, x)`` and ``p`` its sigmoid when the caller has them (a PCD
    update computes both for the chains, from one product of double height); ``bits`` are
    ``x``'s ones when ``x`` is 0/1 and the caller found them (:class:`igm.bits.Bits`).
    """
    with torch.no_grad():
        a = hidden_input(params, x, bits) if a is None else a.detach()
    r = contrastive_weights(num_pos, x.shape[0] - num_pos, a)
    gaussian = params.visible == "gaussian"
    p = None if p is None else p.detach()
    return _ContrastiveFreeEnergy.apply(params.W, params.b, params.c, x.detach(), a, r, p, gaussian, bits)


def free_energy_difference(
    params: RBMParams, v: Tensor, neg: Tensor, a_pos: Tensor | None = None, a_neg: Tensor | None = None
) -> Tensor:
    """``mean F(v) − mean F(ṽ)`` (the CD/PCD loss), differentiable in ``W``, ``b``, ``c`` only.

    ``v`` (B, V) data, ``neg`` (M, V) negative samples; ``a_pos`` / ``a_neg`` their hidden inputs
    ``c + W v`` when the caller has them. The value and the gradient are those of
    ``free_energy(params, v).mean() - free_energy(params, neg).mean()`` (with ``v`` and ``neg``
    constant), but the weight gradient takes one matrix product instead of two.
    """
    a = None if a_pos is None or a_neg is None else torch.cat([a_pos, a_neg])  # (B + M, H)
    return stacked_free_energy_difference(params, torch.cat([v, neg]), v.shape[0], a)


def bernoulli(p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Bits with probabilities ``p`` (same shape and dtype), from ``generator`` or the global RNG."""
    return rand(tuple(p.shape), generator, p.device).to(p.dtype).lt_(p)  # in place: 1.0 where u < p


def sample_hidden(params: RBMParams, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``h ~ p(h | v)``: (n, V) -> (n, H) binary."""
    return bernoulli(torch.sigmoid(hidden_input(params, v)), generator)


def visible_mean(params: RBMParams, h: Tensor) -> Tensor:
    """``E[v | h]``: probabilities (Bernoulli) or means (Gaussian), (n, H) -> (n, V)."""
    x = visible_input(params, h)
    return torch.sigmoid(x) if params.visible == "bernoulli" else x


def sample_visible(params: RBMParams, h: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``v ~ p(v | h)`` and its mean ``E[v | h]``, both (n, V)."""
    mean = visible_mean(params, h)
    if params.visible == "bernoulli":
        return bernoulli(mean, generator), mean
    return mean + randn(tuple(mean.shape), generator, mean.device).to(mean.dtype), mean


def swap_states(
    states: Sequence[Tensor], energy: Tensor, betas: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Parallel tempering's exchanges, in place: ``states`` (K·M, ...) rows of K temperatures × M chains.

    ``energy`` (K·M,) is each row's ``E(v, h)``; ``betas`` (K,) the inverse temperatures, 1 first.
    Neighbours ``k + 1 → k`` are offered a swap from the hottest pair down (a hot state can reach
    ``β = 1`` in one round) and swap with the Metropolis probability
    ``min(1, exp((β_k − β_{k+1}) (E_k − E_{k+1})))``, each chain on its own (one (M,) draw of
    uniforms per pair, from ``generator`` or the global RNG). Returns the swaps made (K − 1, M) as 0/1.
    """
    K = betas.numel()  # noqa: N806
    views = [t.view(K, -1, *t.shape[1:]) for t in states]
    e = energy.view(K, -1).clone()
    made = torch.zeros(K - 1, e.shape[1], dtype=e.dtype, device=e.device)
    for k in reversed(range(K - 1)):
        log_ratio = (betas[k] - betas[k + 1]).item() * (e[k] - e[k + 1])
        swap = rand((e.shape[1],), generator, e.device, e.dtype).log() < log_ratio  # (M,)
        made[k] = swap.to(e.dtype)
        for t in [*views, e]:
            mask = swap.view(-1, *[1] * (t.dim() - 2))
            lo, hi = t[k].clone(), t[k + 1]
            t[k] = torch.where(mask, hi, lo)
            t[k + 1] = torch.where(mask, lo, hi)
    return made


def tempered_sweeps(
    params: RBMParams, h: Tensor, betas: Tensor, sweeps: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``sweeps`` rounds of a Gibbs sweep h → v → h at each temperature, then :func:`swap_states`.

    ``h`` (K·M, H): the chains' hidden states, the rows of inverse temperature ``betas[k]`` the
    k-th block of M (``β = 1`` first); each unit's conditional is ``σ(β · input)`` (the RBM of
    energy ``β E``). Returns the visible states (K·M, V), their means ``σ(β (b + Wᵀh))``, their
    hidden inputs ``c + W v`` (K·M, H) and the new hidden states, all after the last swaps.
    Gaussian visibles at ``β`` are ``N(b + Wᵀh, I/β)`` (their means: ``b + Wᵀh``).
    """
    K = betas.numel()  # noqa: N806
    beta = betas.to(h).repeat_interleave(h.shape[0] // K)[:, None]  # (K·M, 1)
    for _ in range(sweeps):
        x = visible_input(params, h)  # (K·M, V)
        if params.visible == "bernoulli":
            mean = torch.sigmoid(beta * x)
            v = bernoulli(mean, generator)
        else:  # p_β(v | h) = N(b + Wᵀh, I/β)
            mean = x
            v = x + randn(tuple(x.shape), generator, x.device).to(x.dtype) / beta.sqrt()
        a = hidden_input(params, v)  # (K·M, H)
        h = bernoulli(torch.sigmoid(beta * a), generator)
        energy = visible_energy(params, v) - (h * a).sum(1)  # E(v, h) = −bᵀv (or ½‖v − b‖²) − cᵀh − hᵀWv
        swap_states([v, mean, a, h], energy, betas, generator)
    return v, mean, a, h


def gibbs(
    params: RBMParams, v: Tensor, steps: int, generator: torch.Generator | None = None, betas: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``steps`` Gibbs sweeps v → h → v from ``v`` (n, V): the last visible sample and its mean.

    With ``steps = 0`` both are ``v`` itself. With ``betas`` (K,; 1 first)
    it is parallel tempering: each of the n chains has a copy at each inverse temperature,
    started at ``v`` (its hidden units drawn from ``σ(β (c + W v))``), and every sweep is
    followed by :func:`swap_states`; the result is the ``β = 1`` copies'.
    """
    mean = v
    if betas is not None and steps:
        n, K = v.shape[0], betas.numel()  # noqa: N806
        beta = betas.to(v).repeat_interleave(n)[:, None]  # (K·n, 1)
        h = bernoulli(torch.sigmoid(beta * hidden_input(params, v.repeat(K, 1))), generator)
        v, mean, _, _ = tempered_sweeps(params, h, betas, steps, generator)
        return v[:n], mean[:n]
    for _ in range(steps):
        v, mean = sample_visible(params, sample_hidden(params, v, generator), generator)
    return v, mean


def _hidden_states(start: int, stop: int, num_hidden: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Hidden configurations ``start .. stop-1`` as rows of bits (stop - start, H)."""
    codes = torch.arange(start, stop, device=device)
    bits = torch.arange(num_hidden, device=device)
    return ((codes[:, None] >> bits[None, :]) & 1).to(dtype)


def log_partition_exact(params: RBMParams, chunk: int = 1 << 14) -> Tensor:
    """``log Z`` by summing over all ``2^H`` hidden states (H ≤ 20), in float64; chunked."""
    h_count = params.num_hidden
    if h_count > MAX_EXACT_HIDDEN:
        raise ValueError(f"exact log Z enumerates 2^H hidden states; H = {h_count} > {MAX_EXACT_HIDDEN}")
    p = params.detach(torch.float64)
    parts = []
    for start in range(0, 1 << h_count, chunk):
        h = _hidden_states(start, min(start + chunk, 1 << h_count), h_count, torch.float64, p.W.device)
        u = h @ p.W  # (n, V) = Wᵀh
        if p.visible == "bernoulli":
            parts.append(h @ p.c + nnf.softplus(u + p.b).sum(-1))
        else:
            parts.append(h @ p.c + u @ p.b + 0.5 * u.pow(2).sum(-1))
    log_z = torch.logsumexp(torch.cat(parts), 0)
    if p.visible == "gaussian":
        log_z = log_z + 0.5 * p.num_visible * math.log(2 * math.pi)
    return log_z


def q3_schedule() -> Tensor:
    """BENCHMARKS.md Q3's β schedule: 0→0.5 in steps of 1e-3, 0.5→0.9 in 1e-4, 0.9→1 in 1e-5 (14,501 values)."""
    return schedule([(0.5, 500), (0.9, 4000), (1.0, 10000)])


def schedule(segments: list[tuple[float, int]]) -> Tensor:
    """β from 0 through each ``(end, steps)`` segment in equal steps, float64, ending at 1."""
    parts, start = [torch.zeros(1, dtype=torch.float64)], 0.0
    for end, steps in segments:
        parts.append(torch.linspace(start, end, steps + 1, dtype=torch.float64)[1:])
        start = end
    betas = torch.cat(parts)
    if betas[-1] != 1.0:
        raise ValueError("an AIS schedule must end at β = 1")
    return betas


@dataclass(frozen=True)
class AISResult:
    """An AIS estimate of ``log Z``: the value, its standard error and the ±3σ band."""

    log_z: float
    se: float  # delta method: sd(w) / (√M mean(w))
    log_z_low: float | None  # log(mean w − 3 sd(w)/√M) + log Z_0; None when that reaches 0
    log_z_high: float  # log(mean w + 3 sd(w)/√M) + log Z_0
    log_z_base: float  # log Z_0 of the base-rate model
    log_weights: Tensor  # (M,) float64


def base_rate_bias(data: Tensor | None, params: RBMParams, eps: float = 1e-3) -> Tensor:
    """The base model's visible bias: logit of the clamped pixel means (Bernoulli), the mean (Gaussian)."""
    if data is None:
        return params.b.detach().clone()
    mean = flatten(data, params).mean(0)
    if params.visible == "gaussian":
        return mean
    mean = mean.clamp(eps, 1 - eps)
    return torch.log(mean) - torch.log1p(-mean)


def ais_log_partition(
    params: RBMParams,
    runs: int = 100,
    betas: Tensor | None = None,
    data: Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    progress: Callable[[int], None] | None = None,
) -> AISResult:
    """``log Z`` of ``params`` by annealed importance sampling with ``runs`` chains (see the module).

    ``betas`` defaults to :func:`q3_schedule`; ``data`` (examples, any event shape) sets the
    base-rate model. Chains run in ``dtype``; the log weights accumulate in float64.
    ``progress(k)`` is told each β step k (1 .. len(betas) - 1) as it completes.
    """
    betas = q3_schedule() if betas is None else betas.to(torch.float64)
    if betas[0] != 0.0 or betas[-1] != 1.0 or not bool((betas[1:] >= betas[:-1]).all()):
        raise ValueError("an AIS schedule rises from β = 0 to β = 1")
    p = params.detach(dtype)
    b_a = base_rate_bias(data, p).to(dtype)
    gaussian = p.visible == "gaussian"
    v_dim, h_dim = p.num_visible, p.num_hidden
    device = p.W.device
    # base model A: independent visibles, H free hidden units
    if gaussian:
        log_z0 = h_dim * math.log(2.0) + 0.5 * v_dim * math.log(2 * math.pi)
        v = b_a + randn((runs, v_dim), generator, device).to(dtype)
    else:
        log_z0 = h_dim * math.log(2.0) + float(nnf.softplus(b_a.double()).sum())
        v = bernoulli(torch.sigmoid(b_a).expand(runs, v_dim), generator)
    log_w = torch.zeros(runs, dtype=torch.float64, device=device)
    b_b = p.b
    beta_list = betas.tolist()
    for k in range(1, len(beta_list)):
        prev, beta = beta_list[k - 1], beta_list[k]
        a = hidden_input(p, v)  # (M, H): c + W v
        a64 = a.double()
        if gaussian:  # ½ (‖v − b_A‖² − ‖v − b‖²), the slope of the visible term in β
            slope = 0.5 * ((v - b_a).pow(2).sum(-1) - (v - b_b).pow(2).sum(-1)).double()
        else:
            slope = (v @ (b_b - b_a)).double()
        log_w += (beta - prev) * slope + (nnf.softplus(beta * a64) - nnf.softplus(prev * a64)).sum(-1)
        if progress is not None:
            progress(k)
        if k == len(beta_list) - 1:
            break
        # one Gibbs sweep that leaves p_β invariant: h ~ σ(β a), v | h with weights βW
        h = bernoulli(torch.sigmoid(beta * a), generator)
        x = (1 - beta) * b_a + beta * visible_input(p, h)
        if gaussian:
            v = x + randn((runs, v_dim), generator, device).to(dtype)
        else:
            v = bernoulli(torch.sigmoid(x), generator)
    return _ais_result(log_w, log_z0)


def _ais_result(log_w: Tensor, log_z0: float) -> AISResult:
    runs = log_w.shape[0]
    top = log_w.max()
    w = torch.exp(log_w - top)  # (M,) in (0, 1]
    mean = w.mean()
    sd = w.std(unbiased=True) if runs > 1 else torch.zeros((), dtype=w.dtype)
    half = 3 * sd / math.sqrt(runs)
    offset = float(top) + log_z0
    low = mean - half
    return AISResult(
        log_z=float(mean.log()) + offset,
        se=float(sd / (math.sqrt(runs) * mean)),
        log_z_low=float(low.log()) + offset if low > 0 else None,
        log_z_high=float((mean + half).log()) + offset,
        log_z_base=log_z0,
        log_weights=log_w,
    )


def pseudo_likelihood(params: RBMParams, v: Tensor, index: Tensor) -> Tensor:
    """scikit-learn's ``score_samples``: ``V · log σ(F(ṽ) − F(v))`` with unit ``index[i]`` of row i flipped.

    ``v`` (n, V) binary, ``index`` (n,) integers in 0..V−1 -> (n,).
    """
    if params.visible != "bernoulli":
        raise ValueError("the pseudo-likelihood is defined for Bernoulli visible units")
    rows = torch.arange(v.shape[0], device=v.device)
    flipped = v.clone()
    flipped[rows, index] = 1 - flipped[rows, index]
    return -v.shape[1] * nnf.softplus(-(free_energy(params, flipped) - free_energy(params, v)))


def _log_conditional(params: RBMParams, x: Tensor, h: Tensor) -> Tensor:
    """``log p(x | h)`` of the directed layer ``params`` for paired rows ``x`` (n, V), ``h`` (n, H) -> (n,)."""
    u = visible_input(params, h)  # (n, V): logits or Gaussian means
    if params.visible == "gaussian":
        return -0.5 * (x - u).pow(2).sum(-1) - 0.5 * params.num_visible * math.log(2 * math.pi)
    return (x * u - nnf.softplus(u)).sum(-1)


def dbn_log_likelihood_bound(
    layers: Sequence[RBMParams],
    v: Tensor,
    log_z_top: float,
    samples: int = 10,
    generator: torch.Generator | None = None,
    chunk: int = 500,
) -> Tensor:
    """The variational lower bound on ``log p(v)`` of a DBN (see the module), per row of ``v`` (n, V) -> (n,).

    ``layers`` bottom first (detached, e.g. float64); ``log_z_top`` the top RBM's log-partition.
    Each example draws ``samples`` paths ``h_1, …, h_{L−1}`` from the up pass ``q``; the
    entropies of ``q`` are exact given the path. The result is an unbiased estimate of the
    bound (exact for one layer); rows are processed ``chunk`` examples at a time.
    """
    *directed, top = layers
    out = []
    for rows in v.split(chunk):
        x = rows.to(top.W.dtype).repeat_interleave(samples if directed else 1, 0)  # (m·S, V)
        total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for params in directed:
            a = hidden_input(params, x)  # (m·S, H)
            q = torch.sigmoid(a)
            h = bernoulli(q, generator)
            entropy = (nnf.softplus(a) - q * a).sum(-1)  # H(q(h | x)) of a factorial Bernoulli
            total += (_log_conditional(params, x, h) + entropy).double()
            x = h
        total += (-free_energy(top, x)).double() - log_z_top
        out.append(total.reshape(rows.shape[0], -1).mean(1))
    return torch.cat(out)


def dbn_log_likelihood_exact(layers: Sequence[RBMParams], v: Tensor) -> Tensor:
    """``log p(v)`` of a DBN by summing over every hidden state of every layer (n,): tiny nets only.

    The top RBM's ``log Z`` is :func:`log_partition_exact`; each hidden layer below the top is
    enumerated (``2^H`` states, H ≤ 20).
    """
    ps = [p.detach(torch.float64) for p in layers]
    *directed, top = ps
    x = v.to(torch.float64)
    if not directed:
        return -free_energy(top, x) - log_partition_exact(top)
    if any(p.num_hidden > MAX_EXACT_HIDDEN for p in directed):
        raise ValueError(f"exact DBN likelihoods enumerate every hidden layer below the top; at most {MAX_EXACT_HIDDEN} units each")
    states = [_hidden_states(0, 1 << p.num_hidden, p.num_hidden, torch.float64, x.device) for p in directed]
    log_p = -free_energy(top, states[-1]) - log_partition_exact(top)  # log p_top over every state of h_{L−1}
    for params, below, above in zip(reversed(directed[1:]), reversed(states[:-1]), reversed(states[1:])):
        pairs = _log_conditional(  # log p(h_{l−1} | h_l) for every pair of states (lower, upper)
            params, below.repeat_interleave(above.shape[0], 0), above.repeat(below.shape[0], 1)
        ).reshape(below.shape[0], above.shape[0])
        log_p = torch.logsumexp(pairs + log_p, 1)  # log p(h_{l−1}) over every state
    bottom, h1 = directed[0], states[0]
    pairs = _log_conditional(bottom, x.repeat_interleave(h1.shape[0], 0), h1.repeat(x.shape[0], 1))
    return torch.logsumexp(pairs.reshape(x.shape[0], h1.shape[0]) + log_p, 1)
