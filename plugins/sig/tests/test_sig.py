"""The SIG plugin: the igm.testing contract, its kernel choices, the loss it minimises, annealing and resume."""

from __future__ import annotations

import dataclasses

import math

import pytest
import torch

import igm
from igm import BernoulliLikelihood, ConfigError, GaussianLikelihood, sig_loss
from igm.testing import build_model, check_model, toy_images, toy_points
from igm_sig import annealed_sigma


def test_contract_on_points(tmp_path):
    model = check_model("sig", toy_points(), tmp_path, overrides={"sigma": "0.2", "M": "32", "lr_g": "0.002"})
    assert isinstance(model.generator.likelihood, GaussianLikelihood)
    assert model.config.sigma == 0.2  # check_model trains the model it is given, overrides and all
    assert build_model("sig", toy_points().info).config.sigma == 0.1  # toy_points declares std 0.1: the default follows it
    sharp = dataclasses.replace(toy_points().info, extra={"std": 0.03})  # not the 0.1 fallback
    assert build_model("sig", sharp).config.sigma == 0.03  # the data's own std, whatever it is


def test_contract_on_images_is_bernoulli(tmp_path):
    model = check_model("sig", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert isinstance(model.generator.likelihood, BernoulliLikelihood)
    x = model.generator.sample(8)
    assert set(x.unique().tolist()) <= {0.0, 1.0}


def test_bernoulli_refused_on_unbounded_data():
    with pytest.raises(ConfigError, match="likelihood=gaussian"):
        build_model("sig", toy_points().info, {"likelihood": "bernoulli"})


def test_loss_is_the_finite_mixture_likelihood_of_M_draws():
    data = toy_points()
    model = build_model("sig", data.info, {"M": "7", "sigma": "0.3", "sigma_start": "0"})
    real = data.split("train")[0][:5]
    torch.manual_seed(1)
    loss = model.loss("generator", (real, None))
    torch.manual_seed(1)
    theta = model.generator.params(7)
    torch.testing.assert_close(loss, sig_loss(real, theta, 0.3))
    # and directly: −mean_i log (1/M) Σ_j N(x_i; θ_j, σ²I), in float64
    x, t = real.double(), theta.detach().double()
    dens = torch.exp(-((x[:, None] - t[None]) ** 2).sum(-1) / (2 * 0.09)) / (2 * math.pi * 0.09)
    torch.testing.assert_close(loss.detach().double(), -dens.mean(1).log().mean(), rtol=1e-4, atol=1e-4)


def test_anneal_is_geometric_and_stops_at_sigma():
    assert annealed_sigma(0, 0.05, 1.0, 100) == 1.0
    assert annealed_sigma(50, 0.05, 1.0, 100) == pytest.approx(math.sqrt(0.05))
    assert annealed_sigma(100, 0.05, 1.0, 100) == 0.05
    assert annealed_sigma(10, 0.05, 0.0, 100) == 0.05


def test_anneal_counter_is_model_state(tmp_path):
    data = toy_points()
    model = build_model("sig", data.info, {"sigma_start": "1.0", "anneal_steps": "10"})
    model.train()
    for _ in range(4):
        model.loss("generator", (data.split("train")[0][:8], None))
    assert int(model.step) == 4 and "step" in model.state_dict()
    assert model.current_sigma() == pytest.approx(annealed_sigma(4, 0.1, 1.0, 10))


def test_default_learning_rate_follows_the_bandwidth():
    info = toy_points().info
    assert build_model("sig", info).config.lr_g == 6e-3  # σ 0.1 on points
    assert build_model("sig", info, {"sigma": "0.01"}).config.lr_g == 1e-3  # sharp kernel
    assert build_model("sig", info, {"sigma": "0.01", "lr_g": "0.01"}).config.lr_g == 0.01


def test_default_mixture_size_by_data_kind():
    """M left at 0: igm.POINTS_M θ draws a step on points, 1,024 on images; a set M is kept, and used."""
    data = toy_points()
    points = build_model("sig", data.info)
    assert points.config.M == igm.POINTS_M == 512
    assert build_model("sig", toy_images().info).config.M == 1024
    drawn = []
    model = build_model("sig", data.info, {"M": "40"})
    real_params = model.generator.params
    model.generator.params = lambda m: drawn.append(m) or real_params(m)
    model.loss("generator", (data.split("train")[0][:8], None))
    assert drawn == [40]


def test_default_anneal_share_follows_the_bandwidth():
    info = toy_points().info
    assert build_model("sig", info).config.anneal_share == 0.8  # σ 0.1 on points
    assert build_model("sig", info, {"sigma": "0.01"}).config.anneal_share == 0.5  # sharp kernel
    assert build_model("sig", info, {"anneal_share": "0.3"}).config.anneal_share == 0.3


def test_anneal_is_a_share_of_the_run_the_trainer_plans():
    """Known answers: σ_start 1 → σ 0.04 over half of a 1,000-step run: 1 at step 0, 0.2 at 250, 0.04 from 500 on."""
    data = toy_points()
    model = build_model("sig", data.info, {"sigma": "0.04", "sigma_start": "1.0"})
    assert model.plan(1000) is not None  # shorter than the tuned budget: one line to print
    for step, sigma in ((0, 1.0), (250, 0.2), (500, 0.04), (1000, 0.04)):
        model.step.fill_(step)
        assert model.current_sigma() == pytest.approx(sigma)
    model.plan(50)  # the same step in a shorter run is further along its anneal
    model.step.fill_(12)
    assert model.current_sigma() == pytest.approx(1.0 * 0.04 ** (12 / 25))
    model.plan(100_000)  # half of a long run is capped at anneal_max = 12,000 steps
    model.step.fill_(6000)
    assert model.current_sigma() == pytest.approx(0.2)
    assert model.plan(model.run_defaults(data.info)["steps"]) is None  # the tuned budget: nothing to say


def test_trainer_plans_the_model_with_the_run_length(tmp_path):
    from igm import RunConfig, Trainer

    data = toy_points()
    model = build_model("sig", data.info, {"M": "16", "sigma": "0.04"})
    trainer = Trainer(model, data, RunConfig(steps=10, batch_size=8, device="cpu"), None, progress=False)
    assert model.run_steps == 10 and trainer.plan_note.startswith("note: sig on ")
    trainer.fit()
    assert model.current_sigma() == pytest.approx(0.04)  # the anneal ended within the run (5 of its 10 steps)


def test_point_budget_follows_the_mixture_size():
    from igm import open_data

    sig = type(build_model("sig", toy_points().info))
    assert sig.run_defaults(open_data("ring8", 0).info)["steps"] == 12_000
    assert sig.run_defaults(open_data("grid25", 0).info)["steps"] == 15_000
