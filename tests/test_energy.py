"""RBM math (igm.energy) and the ais / pseudo-likelihood metrics against brute force and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from igm.bits import Bits
from igm.energy import (
    RBMParams,
    ais_log_partition,
    free_energy,
    free_energy_difference,
    gibbs,
    hidden_input,
    log_partition_exact,
    pseudo_likelihood,
    q3_schedule,
    schedule,
    stacked_free_energy_difference,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


def random_rbm(v: int, h: int, seed: int, scale: float = 1.0, visible: str = "bernoulli") -> RBMParams:
    g = torch.Generator().manual_seed(seed)
    randn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return RBMParams(scale * randn(h, v), scale * randn(v), scale * randn(h), visible)


def all_bits(n: int) -> torch.Tensor:
    codes = torch.arange(1 << n)
    return ((codes[:, None] >> torch.arange(n)) & 1).double()  # (2^n, n)


def energy(p: RBMParams, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """E(v, h) for every pair of rows: (n, V), (m, H) -> (n, m)."""
    vis = 0.5 * ((v - p.b) ** 2).sum(-1) if p.visible == "gaussian" else -(v @ p.b)
    return vis[:, None] - (h @ p.c)[None, :] - v @ p.W.T @ h.T


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_is_minus_log_sum_over_hidden_states(visible):
    p = random_rbm(7, 6, seed=0, visible=visible)
    v = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    if visible == "bernoulli":
        v = (v > 0).double()
    direct = -torch.logsumexp(-energy(p, v, all_bits(6)), dim=1)
    torch.testing.assert_close(free_energy(p, v), direct, rtol=1e-12, atol=1e-12)


def test_exact_log_z_matches_brute_force_over_visible_and_hidden():
    p = random_rbm(6, 5, seed=2)
    brute = torch.logsumexp(-energy(p, all_bits(6), all_bits(5)).flatten(), 0)
    torch.testing.assert_close(log_partition_exact(p), brute, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_partition_exact(p, chunk=3), brute, rtol=1e-12, atol=1e-12)  # chunked sum


def test_exact_log_z_of_gaussian_visibles_matches_numerical_integration():
    p = random_rbm(2, 3, seed=3, scale=0.7, visible="gaussian")
    step = 0.01
    grid = torch.arange(-12, 12, step, dtype=torch.float64)
    v = torch.cartesian_prod(grid, grid)  # (n, 2)
    numeric = torch.logsumexp(-free_energy(p, v), 0) + 2 * math.log(step)
    torch.testing.assert_close(log_partition_exact(p), numeric, rtol=1e-8, atol=1e-8)


def test_exact_log_z_refuses_large_hidden_layers():
    with pytest.raises(ValueError, match="H = 21"):
        log_partition_exact(random_rbm(3, 21, seed=0))


def test_q3_schedule_has_the_published_steps():
    betas = q3_schedule()
    assert betas.shape == (14_501,) and betas[0] == 0 and betas[-1] == 1
    gaps = betas.diff()
    assert torch.allclose(gaps[:500], torch.tensor(1e-3, dtype=torch.float64))
    assert torch.allclose(gaps[500:4500], torch.tensor(1e-4, dtype=torch.float64))
    assert torch.allclose(gaps[4500:], torch.tensor(1e-5, dtype=torch.float64))


@pytest.mark.parametrize(("visible", "v", "h"), [("bernoulli", 20, 12), ("gaussian", 6, 10)])
def test_ais_agrees_with_the_exact_log_partition(visible, v, h):
    p = random_rbm(v, h, seed=4, scale=0.5 if visible == "bernoulli" else 0.3, visible=visible)
    exact = float(log_partition_exact(p))
    betas = schedule([(0.5, 200), (1.0, 800)])
    data = (torch.rand(200, v, generator=torch.Generator().manual_seed(5)) < 0.3).double()
    out = ais_log_partition(p, runs=400, betas=betas, data=data, generator=torch.Generator().manual_seed(6))
    assert 0 < out.se < 0.05  # a meaningful bar
    assert abs(out.log_z - exact) < 3 * out.se, (out.log_z, exact, out.se)
    assert out.log_z_low is not None and out.log_z_low < exact < out.log_z_high
    # the same chains in float32 give the same estimate to float32 accuracy
    out32 = ais_log_partition(p, runs=400, betas=betas, data=data, generator=torch.Generator().manual_seed(6), dtype=torch.float32)
    assert abs(out32.log_z - out.log_z) < 3 * out.se


def test_ais_without_annealing_steps_is_the_plain_importance_estimate():
    # two β values: one importance-sampling step from the base model; with no weights the base is exact
    p = RBMParams(torch.zeros(4, 5, dtype=torch.float64), torch.randn(5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    out = ais_log_partition(p, runs=10, betas=torch.tensor([0.0, 1.0]), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.tensor(out.log_z, dtype=torch.float64), log_partition_exact(p))
    assert out.se == pytest.approx(0.0, abs=1e-12)


def test_gibbs_from_given_data_starts_there():
    p = random_rbm(6, 4, seed=7, scale=3.0)
    v0 = all_bits(6)[:8]
    assert torch.equal(gibbs(p, v0, 0)[0], v0)
    # one sweep from v0 with the same noise equals a hand-made sweep from v0
    gen_a, gen_b = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    v1, mean = gibbs(p, v0, 1, gen_a)
    u_h = torch.rand(8, 4, generator=gen_b, dtype=torch.float32).double()
    h = (u_h < torch.sigmoid(v0 @ p.W.T + p.c)).double()
    prob = torch.sigmoid(h @ p.W + p.b)
    torch.testing.assert_close(mean, prob)
    u_v = torch.rand(8, 6, generator=gen_b, dtype=torch.float32).double()
    torch.testing.assert_close(v1, (u_v < prob).double())


def digits_rbm():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.neural_network import BernoulliRBM

    x = (sklearn_datasets.load_digits().data / 16.0 > 0.5).astype(np.float64)
    return x, BernoulliRBM(n_components=16, n_iter=3, learning_rate=0.05, batch_size=20, random_state=0).fit(x)


def test_pseudo_likelihood_equals_sklearn_score_samples():
    x, rbm = digits_rbm()
    expected = rbm.score_samples(x)  # flips rng.randint(0, V, n) with RandomState(random_state)
    index = torch.from_numpy(np.random.RandomState(0).randint(0, x.shape[1], x.shape[0]))
    ours = pseudo_likelihood(RBMParams.from_sklearn(rbm), torch.from_numpy(x), index)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10, atol=1e-10)
    # and the free energy is sklearn's
    np.testing.assert_allclose(free_energy(RBMParams.from_sklearn(rbm), torch.from_numpy(x)).numpy(), rbm._free_energy(x), rtol=1e-12)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_difference_has_the_autograd_value_and_gradient(visible):
    p = random_rbm(9, 7, seed=11, visible=visible)
    g = torch.Generator().manual_seed(12)
    v, neg = torch.randn(5, 9, generator=g, dtype=torch.float64), torch.randn(4, 9, generator=g, dtype=torch.float64)
    if visible == "bernoulli":
        v, neg = (v > 0).double(), (neg > 0).double()
    leaves = [t.clone().requires_grad_(True) for t in (p.W, p.b, p.c)]
    q = RBMParams(*leaves, visible)
    ours = free_energy_difference(q, v, neg)
    (2.5 * ours).backward()  # an incoming gradient other than 1
    ref_leaves = [t.clone().requires_grad_(True) for t in (p.W, p.b, p.c)]
    r = RBMParams(*ref_leaves, visible)
    ref = free_energy(r, v).mean() - free_energy(r, neg).mean()
    (2.5 * ref).backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(leaves, ref_leaves):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("visible", "given"),
    [
        (visible, given)
        for visible in ("bernoulli", "gaussian")
        for given in ("nothing", "inputs", "inputs and probabilities", "the ones", "everything")
        if visible == "bernoulli" or given not in ("the ones", "everything")  # only 0/1 rows have ones to sum
    ],
)
def test_stacked_free_energy_difference_is_the_mean_difference_whatever_the_caller_supplies(visible, given):
    """The PCD path hands over the hidden inputs of [v; ṽ], their sigmoid and the rows' ones: value and gradient unchanged."""
    p = random_rbm(9, 7, seed=21, visible=visible)
    g = torch.Generator().manual_seed(22)
    x = torch.randn(6 + 3, 9, generator=g, dtype=torch.float64)  # 6 data rows, 3 negatives
    if visible == "bernoulli":
        x = (x > 1.0).double()  # about a sixth ones, some rows and columns empty
    bits = Bits.of(x) if given in ("the ones", "everything") else None
    assert (bits is not None) == (given in ("the ones", "everything"))
    a = hidden_input(p, x, bits) if given in ("inputs", "inputs and probabilities", "everything") else None
    probs = torch.sigmoid(a) if given in ("inputs and probabilities", "everything") else None
    leaves = [t.clone().requires_grad_(True) for t in (p.W, p.b, p.c)]
    ours = stacked_free_energy_difference(RBMParams(*leaves, visible), x, 6, a, probs, bits)
    (-0.7 * ours).backward()
    ref_leaves = [t.clone().requires_grad_(True) for t in (p.W, p.b, p.c)]
    r = RBMParams(*ref_leaves, visible)
    ref = free_energy(r, x[:6]).mean() - free_energy(r, x[6:]).mean()
    (-0.7 * ref).backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(leaves, ref_leaves):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-12, atol=1e-12)
