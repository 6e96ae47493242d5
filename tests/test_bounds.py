"""Variational bounds (igm.bounds, igm.variational) and the `nll` metric against known answers.

- the log weights match a float64 computation written out with torch.distributions;
- the ELBO never exceeds the importance-weighted bound on the same draws, and L_k grows with k;
- a linear Gaussian model has a closed-form marginal N(b, W W^T + s^2 I) and posterior: with the
  exact posterior as encoder every log weight equals log p(x); with a perturbed one, L_k
  approaches log p(x) as k grows, and the `nll` metric matches the closed form.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from igm import bounds
from igm.bounds import HasLikelihoodBound
from igm.data.base import DataInfo, TensorSource
from igm.errors import ConfigError
from igm.metrics.likelihood import TestNLL
from igm.variational import VariationalConfig, VariationalModel


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


def tiny_model(likelihood: str = "bernoulli", seed: int = 0, **kw) -> VariationalModel:
    info = DataInfo("tiny", (5,), None, (0.0, 1.0) if likelihood == "bernoulli" else None, "vector")
    torch.manual_seed(seed)
    return VariationalModel(VariationalConfig(latent_dim=3, hidden=(7,), likelihood=likelihood, **kw), info)


def test_log_mean_exp_matches_float64_and_survives_large_values():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)) * 30 + 500
    want = torch.log(torch.exp((x - 500).double()).mean(0)) + 500
    torch.testing.assert_close(bounds.log_mean_exp(x, 0).double(), want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_weights_match_a_float64_computation(likelihood):
    model = tiny_model(likelihood)
    if likelihood == "gaussian":
        model.generator.log_std.data.fill_(-0.3)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 5, generator=gen) < 0.5).float() if likelihood == "bernoulli" else torch.randn(4, 5, generator=gen)
    k = 6
    log_w = model.log_weights(x, k, generator=torch.Generator().manual_seed(2))  # (k, B)

    m = model.double()
    eps = torch.randn((k, 4, 3), generator=torch.Generator().manual_seed(2)).double()
    mu, logvar = m.encoder(x.double())
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * eps  # (k, B, L)
    out = m.generator.net(z.reshape(-1, 3)).reshape(k, 4, 5)
    if likelihood == "bernoulli":
        log_lik = Bernoulli(logits=out).log_prob(x.double()).sum(-1)
    else:
        log_lik = Normal(out, math.exp(-0.3)).log_prob(x.double()).sum(-1)
    want = log_lik + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    torch.testing.assert_close(log_w.double(), want, rtol=1e-5, atol=1e-4)
    assert isinstance(model, HasLikelihoodBound)


def test_analytic_elbo_matches_float64_and_its_mean_matches_the_sampled_elbo():
    model = tiny_model()
    x = (torch.rand(3, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    mu, logvar = model.encoder(x)
    elbo = bounds.elbo_analytic(x, mu, logvar, model.generator.log_prob, generator=torch.Generator().manual_seed(4))
    m = model.double()
    mu64, logvar64 = m.encoder(x.double())
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(4)).double()
    logits = m.generator.net(mu64 + (0.5 * logvar64).exp() * eps)
    kl = torch.distributions.kl_divergence(Normal(mu64, (0.5 * logvar64).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(elbo.double(), Bernoulli(logits=logits).log_prob(x.double()).sum(-1) - kl, rtol=1e-5, atol=1e-4)
    # both are the same ELBO: the sampled estimate over many draws agrees with the analytic one
    model = tiny_model()
    with torch.no_grad():
        sampled = bounds.elbo_estimate(model.log_weights(x, 20_000, generator=torch.Generator().manual_seed(5)))
        mu, logvar = model.encoder(x)
        analytic = torch.stack(
            [bounds.elbo_analytic(x, mu, logvar, model.generator.log_prob, generator=torch.Generator().manual_seed(s))
             for s in range(2000)]
        ).mean(0)
    torch.testing.assert_close(sampled, analytic, rtol=0, atol=0.05)


def test_elbo_never_exceeds_the_iw_bound_which_grows_with_k():
    model = tiny_model(seed=3)
    x = (torch.rand(2000, 5, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        log_w = model.log_weights(x, 50, generator=torch.Generator().manual_seed(1))  # (50, 2000)
        assert (bounds.elbo_estimate(log_w) <= bounds.iw_bound(log_w) + 1e-6).all()
        means = []
        for k in (1, 5, 50):
            b = model.log_likelihood_bound(x, k)
            means.append((b.mean().item(), b.std().item() / math.sqrt(b.numel())))
    for (lo, se_lo), (hi, se_hi) in zip(means, means[1:]):
        assert hi - lo > 4 * math.hypot(se_lo, se_hi), means


def linear_gaussian(perturb: float = 0.0, seed: int = 0):
    """A VAE whose decoder is x = W z + b + s * noise (W with orthogonal columns) and whose encoder is
    the exact posterior (perturbed by ``perturb``); returns the model and the marginal N(b, W W^T + s^2 I)."""
    gen = torch.Generator().manual_seed(seed)
    d, latent, s = 4, 2, 0.5
    info = DataInfo("linear-gaussian", (d,), None, None, "vector")
    model = VariationalModel(VariationalConfig(latent_dim=latent, hidden=(), likelihood="gaussian"), info).double()
    q, _ = torch.linalg.qr(torch.randn(d, latent, generator=gen, dtype=torch.float64))
    scales = torch.tensor([2.0, 1.0], dtype=torch.float64)
    w, b = q * scales, torch.randn(d, generator=gen, dtype=torch.float64)
    prec = scales**2 + s**2  # diagonal of M = W^T W + s^2 I
    a = w.T / prec[:, None]  # posterior mean = A (x - b)
    post_logvar = torch.log(s**2 / prec)
    with torch.no_grad():
        dec, enc = model.generator.net.net[0], model.encoder.net.net[0]
        dec.weight.copy_(w)
        dec.bias.copy_(b)
        model.generator.log_std.fill_(math.log(s))
        enc.weight.zero_()
        enc.weight[:latent].copy_(a * (1 + perturb))
        enc.bias[:latent].copy_(-(a @ b) * (1 + perturb) + perturb)
        enc.bias[latent:].copy_(post_logvar + perturb)
    marginal = MultivariateNormal(b, w @ w.T + s**2 * torch.eye(d, dtype=torch.float64))
    return model, marginal


def test_exact_posterior_makes_every_log_weight_the_log_likelihood():
    model, marginal = linear_gaussian()
    x = marginal.sample((300,))
    with torch.no_grad():  # a small chunk size exercises the chunked path
        log_w = bounds.log_weights(x, *model.encoder(x), model.generator.log_prob, 7, max_elements=3 * 300 * 4)
    torch.testing.assert_close(log_w, marginal.log_prob(x).expand(7, -1), rtol=0, atol=1e-9)


def test_iw_bound_approaches_the_closed_form_log_likelihood():
    model, marginal = linear_gaussian(perturb=0.3)
    x = marginal.sample((200,))
    exact = marginal.log_prob(x).mean().item()
    with torch.no_grad():
        gaps = [exact - model.log_likelihood_bound(x, k).mean().item() for k in (1, 10, 2000)]
    assert gaps[0] > 0.1 and gaps[0] > gaps[1] > gaps[2] > -0.01 and gaps[2] < 0.01, gaps


def test_nll_metric_equals_the_closed_form_within_its_standard_error():
    model, marginal = linear_gaussian(perturb=0.2)
    torch.manual_seed(0)
    x = marginal.sample((500,))
    source = TensorSource(model.data, x, None, x, None)
    out = TestNLL()(model, source, n=400)
    exact = -marginal.log_prob(x[:400]).mean().item()
    assert out["examples"] == 400 and out["k"] == 5000
    assert abs(out["nll"] - exact) < min(out["nll_se"], 0.01), (out, exact)
    assert out["elbo"] < -out["nll"] and out["elbo_se"] > 0


def test_nll_metric_refuses_models_without_a_bound_and_sources_without_a_test_split():
    from igm.testing import build_model, toy_points

    from igm.errors import DataError

    metric = TestNLL()
    data = toy_points()
    with pytest.raises(ConfigError, match="'nll' needs a model with a likelihood bound"):
        metric(build_model("gan", data.info), data)
    model = tiny_model()
    no_test = TensorSource(model.data, torch.zeros(8, 5))
    with pytest.raises(DataError, match="has none"):
        metric(model, no_test)
    assert metric.applies_to_model(model) and not metric.applies_to_model(build_model("gan", data.info))


def test_conditional_model_needs_labels_and_labelled_data():
    info = DataInfo("toy", (5,), 3, (0.0, 1.0), "vector")
    model = VariationalModel(VariationalConfig(latent_dim=2, hidden=(4,), conditional=True), info)
    x = torch.ones(2, 5)
    assert model.log_weights(x, 3, torch.tensor([0, 2])).shape == (3, 2)
    with pytest.raises(ConfigError, match="needs the data's labels"):
        model.log_weights(x, 3)
    with pytest.raises(ConfigError, match="needs a labelled data source"):
        VariationalModel(VariationalConfig(conditional=True), DataInfo("u", (5,), None, None, "vector"))
