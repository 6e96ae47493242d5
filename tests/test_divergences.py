"""Known answers for the divergences: optimal critics, closed forms, naive formulas."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from igm.divergences import (
    BUILTIN_DIVERGENCES,
    JSD,
    KL,
    MMD,
    SIG,
    Divergence,
    Wasserstein,
    gradient_penalty,
    sig_loss,
)
from igm.errors import ConfigError

# --- two 1-D Gaussians: p_data = N(0, 1), p_g = N(0.5, 1.5²) (p_data/p_g is bounded) ---------
MU_D, S_D, MU_G, S_G = 0.0, 1.0, 0.5, 1.5
N_MC = 400_000


def _log_normal(x: Tensor, mu: float, s: float) -> Tensor:
    return -0.5 * ((x - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def _optimal_critic(x: Tensor) -> Tensor:
    """The exact log density ratio log p_data / p_g, float64, shape (N, 1)."""
    return _log_normal(x, MU_D, S_D) - _log_normal(x, MU_G, S_G)


def _kl_normal(mu_a: float, s_a: float, mu_b: float, s_b: float) -> float:
    """KL(N(mu_a, s_a²) || N(mu_b, s_b²)) in closed form."""
    return math.log(s_b / s_a) + (s_a**2 + (mu_a - mu_b) ** 2) / (2 * s_b**2) - 0.5


def _se(*terms: Tensor) -> float:
    """Standard error of a sum of independent sample means."""
    return math.sqrt(sum(float(t.var() / t.numel()) for t in terms))


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(1234)  # every test draws from a fixed global RNG state


@pytest.fixture(scope="module")
def gaussians() -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    real = MU_D + S_D * torch.randn(N_MC, 1, generator=gen, dtype=torch.float64)
    fake = MU_G + S_G * torch.randn(N_MC, 1, generator=gen, dtype=torch.float64)
    return real, fake


# --- jsd / kl with the optimal critic ----------------------------------------------------------


def test_jsd_estimate_at_optimal_critic_matches_quadrature(gaussians):
    real, fake = gaussians
    grid = torch.linspace(-25.0, 25.0, 500_001, dtype=torch.float64)
    lp, lq = _log_normal(grid, MU_D, S_D), _log_normal(grid, MU_G, S_G)
    lm = torch.logaddexp(lp, lq) - math.log(2.0)  # log of the mixture (p + q) / 2
    integrand = 0.5 * lp.exp() * (lp - lm) + 0.5 * lq.exp() * (lq - lm)
    jsd_true = float(torch.trapezoid(integrand, grid))
    assert 0.0 < jsd_true < math.log(2.0)

    est = float(JSD().estimate(_optimal_critic, real, fake))
    lr, lf = _optimal_critic(real).flatten(), _optimal_critic(fake).flatten()
    se = _se(F.softplus(-lr), F.softplus(lf)) / 2.0
    assert abs(est - jsd_true) < 5 * se + 1e-9, (est, jsd_true, se)


def test_kl_reverse_estimate_at_optimal_critic_matches_closed_form(gaussians):
    real, fake = gaussians
    kl_true = _kl_normal(MU_G, S_G, MU_D, S_D)  # KL(p_g || p_data)
    est = float(KL(direction="reverse").estimate(_optimal_critic, real, fake))
    se = _se(_optimal_critic(fake))
    assert abs(est - kl_true) < 5 * se, (est, kl_true, se)


def test_kl_forward_estimate_at_optimal_critic_matches_closed_form(gaussians):
    real, fake = gaussians
    kl_true = _kl_normal(MU_D, S_D, MU_G, S_G)  # KL(p_data || p_g)
    est = float(KL(direction="forward").estimate(_optimal_critic, real, fake))
    se = _se(_optimal_critic(real), _optimal_critic(fake).exp())
    assert abs(est - kl_true) < 5 * se, (est, kl_true, se)


def test_jsd_and_kl_share_the_logistic_critic_loss(gaussians):
    real, fake = gaussians[0][:1000], gaussians[1][:1000]
    lr, lf = _optimal_critic(real).flatten(), _optimal_critic(fake).flatten()
    direct = -torch.log(torch.sigmoid(lr)).mean() - torch.log(1 - torch.sigmoid(lf)).mean()
    for div in (JSD(), KL(), KL(direction="forward")):
        torch.testing.assert_close(div.critic_loss(_optimal_critic, real, fake), direct)


# --- generator losses on fixed logits ----------------------------------------------------------


def _identity(x: Tensor) -> Tensor:
    return x  # the "critic" whose logits are the inputs themselves, shape (N, 1)


LOGITS = torch.tensor([[-5.0], [-1.0], [0.0], [2.0]], dtype=torch.float64)


def test_jsd_generator_losses_have_documented_values():
    d = torch.sigmoid(LOGITS.flatten())
    minimax = JSD(loss="minimax").generator_loss(_identity, LOGITS, LOGITS)
    non_sat = JSD(loss="non-saturating").generator_loss(_identity, LOGITS, LOGITS)
    torch.testing.assert_close(minimax, torch.log(1 - d).mean())  # E log(1 - D)
    torch.testing.assert_close(non_sat, -torch.log(d).mean())  # -E log D
    assert JSD().config.loss == "non-saturating"


@pytest.mark.parametrize(
    "div", [JSD(loss="minimax"), JSD(), KL(), KL(direction="forward")], ids=repr
)
def test_generator_gradients_push_fakes_towards_real(div):
    fake = LOGITS.clone().requires_grad_(True)
    div.generator_loss(_identity, LOGITS, fake).backward()
    assert (fake.grad < 0).all()  # raising the logit (looking more real) lowers the loss


def test_non_saturating_gradient_does_not_vanish_where_minimax_does():
    grads = {}
    for loss in ("minimax", "non-saturating"):
        fake = LOGITS.clone().requires_grad_(True)
        JSD(loss=loss).generator_loss(_identity, LOGITS, fake).backward()
        grads[loss] = fake.grad.flatten()
    # at l = -5 (D ≈ 0.007, the critic rejects the fake confidently)
    assert abs(grads["non-saturating"][0]) > 100 * abs(grads["minimax"][0])


def test_logistic_critic_loss_gradients_separate_real_and_fake():
    real = LOGITS.clone().requires_grad_(True)
    fake = LOGITS.clone().requires_grad_(True)
    JSD().critic_loss(_identity, real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_kl_generator_losses_have_documented_values():
    r = LOGITS.flatten()
    torch.testing.assert_close(KL().generator_loss(_identity, LOGITS, LOGITS), -r.mean())
    forward = KL(direction="forward")
    torch.testing.assert_close(forward.generator_loss(_identity, LOGITS, LOGITS), -r.exp().mean())
    huge = torch.tensor([[1000.0]])
    assert torch.isfinite(forward.generator_loss(_identity, huge, huge))  # r clamped to <= 20


def test_critic_output_of_shape_n_and_n1_are_accepted():
    x = torch.randn(6, 3)
    flat = JSD().critic_loss(lambda z: z.sum(1), x, x)
    col = JSD().critic_loss(lambda z: z.sum(1, keepdim=True), x, x)
    torch.testing.assert_close(flat, col)
    with pytest.raises(ValueError, match="shape"):
        JSD().critic_loss(lambda z: z, x, x)  # (N, 3) is not logits


# --- wasserstein -------------------------------------------------------------------------------


def _linear(w: Tensor):
    return lambda x: x.flatten(1) @ w  # gradient w everywhere


def test_gradient_penalty_of_linear_critics():
    real, fake = torch.randn(32, 2, 3, 3), torch.randn(32, 2, 3, 3)
    w = torch.randn(18, dtype=torch.float32)
    unit = w / w.norm()
    assert float(gradient_penalty(_linear(unit), real, fake)) == pytest.approx(0.0, abs=1e-10)
    expected = (float(w.norm()) - 1.0) ** 2
    assert float(gradient_penalty(_linear(w), real, fake)) == pytest.approx(expected, rel=1e-5)
    two = 2.0 * unit
    assert float(gradient_penalty(_linear(two), real, fake)) == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_draws_epsilon_per_example():
    seen: list[Tensor] = []

    def recording(x: Tensor) -> Tensor:
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.zeros(16, 1, 2, 2), torch.ones(16, 1, 2, 2)
    torch.manual_seed(3)
    gradient_penalty(recording, real, fake)
    x_hat = seen[-1].flatten(1)  # row i is (1 - eps_i) everywhere
    assert (x_hat == x_hat[:, :1]).all()  # one eps per example, broadcast over the event
    assert len(set(x_hat[:, 0].tolist())) == 16  # and a different eps for every example
    assert ((x_hat > 0) & (x_hat < 1)).all()
    torch.manual_seed(3)
    gradient_penalty(recording, real, fake)
    assert torch.equal(seen[-1], seen[-2])  # reproducible from torch's global RNG


def test_gradient_penalty_depends_on_per_example_position():
    # c(x) = ||x||² / 2 has gradient x, so the penalty is mean_i (|1 - eps_i| * ||f_i|| - 1)²
    def quadratic(x: Tensor) -> Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.zeros(64, 5), torch.randn(64, 5)
    torch.manual_seed(7)
    eps = torch.rand(64, 1)
    expected = ((1 - eps.flatten()) * fake.norm(dim=1) - 1).pow(2).mean()
    torch.manual_seed(7)
    torch.testing.assert_close(gradient_penalty(quadratic, real, fake), expected)


def test_one_sided_penalty_charges_only_slopes_above_one():
    # the quadratic critic again: slope |1 - eps_i| * ||f_i|| at example i; LP keeps max(0, slope - 1)²
    def quadratic(x: Tensor) -> Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.zeros(256, 3, dtype=torch.float64), torch.randn(256, 3, dtype=torch.float64)
    torch.manual_seed(11)
    slope = (1 - torch.rand(256, 1, dtype=torch.float64).flatten()) * fake.norm(dim=1)
    assert (slope < 1).any() and (slope > 1).any()  # both sides of 1 occur in this draw
    torch.manual_seed(11)
    lp = gradient_penalty(quadratic, real, fake, one_sided=True)
    torch.testing.assert_close(lp, (slope - 1).clamp(min=0).pow(2).mean())
    torch.manual_seed(11)
    assert gradient_penalty(quadratic, real, fake).item() > lp.item()  # GP also charges the slopes under 1
    for scale, expected in ((0.5, 0.0), (5.0, 16.0)):  # linear critics: slope = scale everywhere
        w = torch.tensor([scale, 0.0, 0.0], dtype=torch.float64)
        penalty = gradient_penalty(_linear(w), real, fake, one_sided=True)
        torch.testing.assert_close(penalty, torch.tensor(expected, dtype=torch.float64))
    w = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)  # the option reaches the critic loss: no penalty here
    diff = (real @ w).mean() - (fake @ w).mean()
    torch.testing.assert_close(Wasserstein(gp_weight=2.0, gp_one_sided=True).critic_loss(_linear(w), real, fake), -diff)


def test_gradient_penalty_trains_the_critic_weights_only():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    gen_out = torch.randn(10, 4, requires_grad=True)
    with torch.no_grad():
        value = gradient_penalty(critic, torch.randn(10, 4), gen_out)
    assert value.requires_grad  # built with create_graph even under no_grad
    value.backward()
    assert critic[0].weight.grad is not None and critic[0].weight.grad.abs().sum() > 0
    assert gen_out.grad is None


def test_wasserstein_losses_and_estimate():
    w = torch.tensor([3.0, -4.0])  # ||w|| = 5
    real, fake = torch.randn(20, 2), torch.randn(20, 2) + 1.0
    critic = _linear(w)
    diff = (real @ w).mean() - (fake @ w).mean()
    div = Wasserstein()
    torch.testing.assert_close(div.estimate(critic, real, fake), diff)
    torch.testing.assert_close(div.generator_loss(critic, real, fake), -(fake @ w).mean())
    torch.testing.assert_close(div.critic_loss(critic, real, fake), -diff + 10.0 * 16.0)
    no_gp = Wasserstein(gp_weight=0.0)
    torch.testing.assert_close(no_gp.critic_loss(critic, real, fake), -diff)
    for weight in (0.5, 3.0):  # the penalty scales with the weight it is given, not a fixed 10
        torch.testing.assert_close(Wasserstein(gp_weight=weight).critic_loss(critic, real, fake), -diff + weight * 16.0)


# --- sig ---------------------------------------------------------------------------------------


def _naive_sig(x: Tensor, theta: Tensor, sigma: float, likelihood: str) -> Tensor:
    """The direct N×M×D broadcast formula, for small inputs only."""
    x, theta = x.flatten(1)[:, None, :], theta.flatten(1)[None, :, :]  # (N, 1, D), (1, M, D)
    d = x.shape[-1]
    if likelihood == "gaussian":
        log_p = -((x - theta) ** 2).sum(-1) / (2 * sigma**2) - 0.5 * d * math.log(
            2 * math.pi * sigma**2
        )
    else:
        log_p = (x * torch.log(theta) + (1 - x) * torch.log(1 - theta)).sum(-1)
    m = theta.shape[1]
    return -(torch.logsumexp(log_p, dim=1) - math.log(m)).mean()


def _sig_inputs(likelihood: str, n: int = 7, m: int = 5, event=(2, 3, 2)) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(11)
    if likelihood == "gaussian":
        x = torch.randn(n, *event, generator=gen, dtype=torch.float64)
        theta = x[:1] + 0.3 * torch.randn(m, *event, generator=gen, dtype=torch.float64)
    else:
        x = torch.rand(n, *event, generator=gen, dtype=torch.float64)
        theta = 0.05 + 0.9 * torch.rand(m, *event, generator=gen, dtype=torch.float64)
    return x, theta


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_sig_matches_naive_formula_and_its_gradients(likelihood):
    sigma = 0.4
    x, theta = _sig_inputs(likelihood)
    xa, ta = x.clone().requires_grad_(True), theta.clone().requires_grad_(True)
    xb, tb = x.clone().requires_grad_(True), theta.clone().requires_grad_(True)
    ours = sig_loss(xa, ta, sigma, likelihood)
    naive = _naive_sig(xb, tb, sigma, likelihood)
    torch.testing.assert_close(ours, naive, rtol=1e-10, atol=1e-10)
    ours.backward()
    naive.backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ta.grad, tb.grad, rtol=1e-8, atol=1e-10)
    # float32 stays float32 and agrees with the float64 value
    out32 = sig_loss(x.float(), theta.float(), sigma, likelihood)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), naive.detach(), rtol=1e-4, atol=1e-4)
    # the class gives the same value
    div = SIG(likelihood=likelihood, sigma=sigma)
    torch.testing.assert_close(div.generator_loss(None, x, theta), naive.detach())
    torch.testing.assert_close(div.estimate(None, x, theta), naive.detach())


def test_sig_single_component_is_the_gaussian_negative_log_likelihood():
    x, theta, sigma = torch.tensor([[1.0, 2.0, -1.0]]), torch.tensor([[0.5, 2.0, 0.0]]), 0.5
    expected = 1.25 / (2 * sigma**2) + 1.5 * math.log(2 * math.pi * sigma**2)
    assert float(sig_loss(x, theta, sigma)) == pytest.approx(expected, rel=1e-6)
    # M identical components are the same mixture as one
    many = theta.expand(9, 3)
    assert float(sig_loss(x, many, sigma)) == pytest.approx(expected, rel=1e-6)
    # the default sigma is 0.1
    assert float(sig_loss(x, theta)) == pytest.approx(float(sig_loss(x, theta, 0.1)))


def test_sig_bernoulli_single_component_closed_form():
    x, theta = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.8, 0.3, 0.5]])
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.5))
    assert float(sig_loss(x, theta, likelihood="bernoulli")) == pytest.approx(expected, rel=1e-6)
    # probabilities at 0 and 1 are clamped: finite loss
    edge = torch.tensor([[0.0, 1.0, 1.0]])
    assert torch.isfinite(sig_loss(x, edge, likelihood="bernoulli"))


def test_sig_never_builds_an_n_m_d_tensor():
    from torch.utils._python_dispatch import TorchDispatchMode

    n, m, d = 16, 12, 300

    class LargestTensor(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor):
                    LargestTensor.largest = max(LargestTensor.largest, t.numel())
            return out

    x = torch.randn(n, d, requires_grad=True)
    theta = torch.randn(m, d, requires_grad=True)
    for likelihood in ("gaussian", "bernoulli"):
        th = theta if likelihood == "gaussian" else torch.sigmoid(theta)
        with LargestTensor():
            sig_loss(x, th, 1.0, likelihood).backward()
    assert LargestTensor.largest <= max(n * m, n * d, m * d) < n * m * d


def test_sig_is_fast_where_n_m_d_would_need_more_than_8_gb():
    n = m = 1024
    d = 2048  # N·M·D float32 = 8.6 GB
    x, theta = torch.rand(n, d), torch.rand(m, d, requires_grad=True)
    start = time.perf_counter()
    loss = sig_loss(x, theta, 1.0)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert time.perf_counter() - start < 10.0


def test_sig_rejects_mismatched_events_and_unknown_likelihood():
    with pytest.raises(ValueError, match="event shape"):
        sig_loss(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="likelihood"):
        sig_loss(torch.zeros(3, 4), torch.zeros(2, 4), likelihood="poisson")  # type: ignore


# --- mmd ---------------------------------------------------------------------------------------


def _naive_mmd2(x: Tensor, y: Tensor, bandwidths, unbiased: bool) -> float:
    def k(a: Tensor, b: Tensor) -> float:
        sq = float(((a - b) ** 2).sum())
        return sum(math.exp(-sq / (2 * s * s)) for s in bandwidths)

    x, y = x.flatten(1).double(), y.flatten(1).double()
    n, m = len(x), len(y)
    pairs_xx = [(i, j) for i, j in itertools.product(range(n), repeat=2) if i != j or not unbiased]
    pairs_yy = [(i, j) for i, j in itertools.product(range(m), repeat=2) if i != j or not unbiased]
    xx = sum(k(x[i], x[j]) for i, j in pairs_xx) / len(pairs_xx)
    yy = sum(k(y[i], y[j]) for i, j in pairs_yy) / len(pairs_yy)
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_matches_double_loop(unbiased):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(5, 1, 3, generator=gen, dtype=torch.float64)
    y = 0.5 + torch.randn(4, 1, 3, generator=gen, dtype=torch.float64)
    bandwidths = (0.5, 1.0, 3.0)
    div = MMD(bandwidths=bandwidths, unbiased=unbiased)
    expected = _naive_mmd2(x, y, bandwidths, unbiased)
    assert float(div.generator_loss(None, x, y)) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert float(div.estimate(None, x, y)) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_mmd_is_zero_for_identical_samples_and_grows_with_a_shift():
    x = torch.randn(200, 3)
    assert float(MMD(unbiased=False).estimate(None, x, x)) == pytest.approx(0.0, abs=1e-6)
    # unbiased: zero in expectation for two samples of one distribution
    div = MMD()
    values = torch.stack(
        [div.estimate(None, torch.randn(100, 3), torch.randn(100, 3)) for _ in range(40)]
    )
    assert abs(float(values.mean())) < 4 * float(values.std()) / math.sqrt(len(values)) + 1e-4
    for unbiased in (True, False):
        div = MMD(unbiased=unbiased)
        shifts = [float(div.estimate(None, x, x + s)) for s in (0.25, 0.5, 1.0, 2.0)]
        assert shifts == sorted(shifts) and shifts[0] > 0.0


def test_biased_mmd_is_non_negative():
    torch.manual_seed(1)
    for _ in range(20):
        x, y = torch.randn(30, 4), torch.randn(25, 4) * 1.2
        assert float(MMD(unbiased=False).estimate(None, x, y)) >= 0.0


def test_mmd_gradient_moves_fakes_towards_data():
    x = torch.randn(64, 2)
    y = (x + 1.0).clone().requires_grad_(True)
    MMD().generator_loss(None, x, y).backward()
    assert float(y.grad.sum()) > 0  # descending the gradient moves y back towards x


def test_mmd_config_validation():
    with pytest.raises(ConfigError):
        MMD(bandwidths=())
    with pytest.raises(ConfigError):
        MMD(bandwidths=(1.0, -0.5))
    assert MMD(bandwidths=[1, 2]).config.bandwidths == (1.0, 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        MMD().estimate(None, torch.randn(1, 2), torch.randn(5, 2))


# --- configs and the contract ------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(BUILTIN_DIVERGENCES.values()))
def test_every_divergence_has_a_name_and_a_dataclass_config(cls):
    assert issubclass(cls, Divergence)
    assert BUILTIN_DIVERGENCES[cls.name] is cls
    div = cls()
    assert dataclasses.is_dataclass(div.config) and isinstance(div.config, cls.Config)
    assert cls(config=div.config).config is div.config
    with pytest.raises(TypeError):
        cls(no_such_option=1)
    with pytest.raises(TypeError):
        cls(config=div.config, no_such_option=1)


def test_literal_options_are_checked():
    with pytest.raises(ConfigError, match="loss"):
        JSD(loss="wasserstein")
    with pytest.raises(ConfigError, match="direction"):
        KL(direction="sideways")
    with pytest.raises(ConfigError, match="likelihood"):
        SIG(likelihood="poisson")
    with pytest.raises(ConfigError):
        SIG(sigma=0.0)
    with pytest.raises(ConfigError):
        Wasserstein(gp_weight=-1.0)


def test_critic_free_divergences_have_no_critic_loss():
    assert not SIG.needs_critic and not MMD.needs_critic
    assert JSD.needs_critic and KL.needs_critic and Wasserstein.needs_critic
    x = torch.randn(4, 2)
    for div in (SIG(), MMD()):
        with pytest.raises(ConfigError, match="without a critic"):
            div.critic_loss(None, x, x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a critic"):
        JSD().generator_loss(None, x, x)  # type: ignore[arg-type]
