"""Generators: seeded draws, labels, and the explicit likelihoods against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from igm.generators import BernoulliLikelihood, GaussianLikelihood, ImplicitGenerator, SemiImplicitGenerator


class AddLabel(nn.Module):
    def forward(self, z, labels):
        return z[:, :2] + labels[:, None].float()


def test_implicit_generator_is_a_seeded_transform_of_the_prior():
    net = nn.Linear(3, 2)
    gen = ImplicitGenerator(net, 3, (2,))
    a = gen.sample(5, generator=torch.Generator().manual_seed(1))
    b = gen.sample(5, generator=torch.Generator().manual_seed(1))
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 2)
    torch.testing.assert_close(a, net(z))


def test_conditional_generator_uses_given_or_uniform_labels():
    gen = ImplicitGenerator(AddLabel(), 2, (2,), num_classes=4)
    z = gen.prior(3, torch.Generator().manual_seed(0))
    out = gen.sample(3, labels=torch.tensor([0, 1, 3]), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out - z, torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 3.0]]))
    drawn = gen.labels_for(4000, None, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=4).float()
    assert drawn.min() >= 0 and drawn.max() <= 3 and (counts / 4000 - 0.25).abs().max() < 0.03
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        gen.sample(2, labels=torch.tensor([0, 4]))


def test_gaussian_likelihood_matches_torch_distributions():
    lik = GaussianLikelihood(0.3)
    x, theta = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    expected = torch.distributions.Normal(theta, 0.3).log_prob(x).sum(1)
    torch.testing.assert_close(lik.log_prob(x, theta), expected)


def test_bernoulli_likelihood_matches_torch_distributions():
    lik = BernoulliLikelihood()
    theta = torch.rand(5, 7, dtype=torch.float64) * 0.98 + 0.01
    x = (torch.rand(5, 7, dtype=torch.float64) < 0.5).double()
    expected = torch.distributions.Bernoulli(probs=theta).log_prob(x).sum(1)
    torch.testing.assert_close(lik.log_prob(x, theta), expected)
    draws = lik.sample(theta.expand(20000, -1, -1).reshape(-1, 7)[:20000], torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


def test_semi_implicit_generator_draws_around_its_parameters():
    theta_net = nn.Linear(2, 2)
    gen = SemiImplicitGenerator(theta_net, 2, (2,), GaussianLikelihood(0.5))
    with torch.no_grad():
        theta_net.weight.zero_()
        theta_net.bias.copy_(torch.tensor([3.0, -1.0]))
        x = gen.sample(40000, generator=torch.Generator().manual_seed(0))
        params = gen.params(4)
    torch.testing.assert_close(params, torch.tensor([[3.0, -1.0]]).expand(4, 2))
    torch.testing.assert_close(x.mean(0), torch.tensor([3.0, -1.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(x.std(0), torch.tensor([0.5, 0.5]), atol=0.01, rtol=0)


def test_gaussian_likelihood_rejects_non_positive_sigma():
    with pytest.raises(ValueError, match="sigma must be positive"):
        GaussianLikelihood(0.0)
    assert math.isclose(GaussianLikelihood(2.0).sigma, 2.0)


def test_the_semi_implicit_bandwidth_follows_the_datas_declared_std():
    """sig and gan-si take sigma from the data when it declares a component std (not a coincidental 0.1)."""
    from igm import DataInfo, TensorSource, default_sigma, generator_rate
    from igm.testing import build_model

    declared = DataInfo("pts", (2,), None, None, "points", {"std": 0.07})
    assert default_sigma(declared) == 0.07
    assert default_sigma(DataInfo("pts", (2,), None, None, "points")) == 0.1  # nothing declared: the fallback
    assert generator_rate(0.07) == 3e-3 and generator_rate(0.01) == 1e-3
    from igm.semi_implicit import default_anneal_share, wide_points

    assert wide_points(0.05, declared) and not wide_points(0.01, declared)  # grid25's σ, ring8's
    assert not wide_points(0.1, DataInfo("img", (1, 8, 8), None, None, "image"))
    assert (default_anneal_share(True), default_anneal_share(False)) == (0.8, 0.5)
    source = TensorSource(declared, torch.randn(64, 2))
    for family in ("sig", "gan-si"):
        assert build_model(family, source.info).config.sigma == 0.07
