"""The GAN-SI plugin: contract, the sign and value of the regulariser, automatic λ and WGAN-GP-SI."""

from __future__ import annotations

import dataclasses

import math

import pytest
import torch

from igm import ConfigError, load, save
from igm.testing import build_model, check_model, toy_images, toy_points
from igm_gan_si import gaussian_log_norm


def test_contract_on_points(tmp_path):
    model = check_model("gan-si", toy_points(), tmp_path, overrides={"lam": "0.5", "sigma": "0.2", "lr_g": "0.002"})
    assert model.config.sigma == 0.2  # check_model trains the model it is given, overrides and all
    assert build_model("gan-si", toy_points().info).config.sigma == 0.1  # toy_points declares std 0.1
    sharp = dataclasses.replace(toy_points().info, extra={"std": 0.03})  # not the 0.1 fallback
    assert build_model("gan-si", sharp).config.sigma == 0.03  # the data's own std, whatever it is


def test_contract_on_images_with_the_adaptive_lambda(tmp_path):
    model = check_model("gan-si", toy_images(), tmp_path)
    assert model.config.lam_adaptive and float(model.lam_value) != model.config.lam  # λ_t was set in training


def test_contract_wgan_gp_si(tmp_path):
    check_model("gan-si", toy_points(), tmp_path, overrides={"divergence": "wasserstein", "lam_auto": "true"})


def test_generator_loss_is_gan_plus_lambda_times_mixture_nll():
    data = toy_points()
    model = build_model("gan-si", data.info, {"lam": "0.3", "sigma": "0.5", "sigma_start": "0", "M": "5"})
    real = data.split("train")[0][:6]
    fake = model.generator.sample(5)
    out = model.generator_loss(real, fake, None)
    gan = torch.nn.functional.softplus(-model.critic(fake)).mean()
    x, t = real.double(), fake.detach().double()
    dens = torch.exp(-((x[:, None] - t[None]) ** 2).sum(-1) / (2 * 0.25)) / (2 * math.pi * 0.25)
    h = -dens.mean(1).log().mean()
    torch.testing.assert_close(out["si"].double(), h, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["loss"], gan + 0.3 * out["si"])


def test_regulariser_pulls_samples_towards_the_data():
    """The sign of eq. 12: a gradient step on λ·H_M moves a generated point closer to the data."""
    data = toy_points()
    model = build_model("gan-si", data.info, {"sigma": "1.0"})
    real = torch.tensor([[2.0, 2.0]])
    fake = torch.tensor([[1.0, 1.0]], requires_grad=True)
    model.si_loss(real, fake).backward()
    moved = fake.detach() - 0.1 * fake.grad
    assert (moved - real).norm() < (fake.detach() - real).norm()


def test_auto_lambda_is_measured_once_and_saved(tmp_path):
    data = toy_points()
    model = build_model("gan-si", data.info, {"lam_auto": "true", "sigma_start": "0"})
    model.train()
    assert float(model.lam_value) == 0.0
    real = data.split("train")[0][:16]
    fake = model.generator.sample(16)
    out = model.generator_loss(real, fake, None)
    energy = out["si"] + gaussian_log_norm(2, model.config.sigma)
    assert energy >= 0
    torch.testing.assert_close(out["lam"], (out["gan"].abs() / energy).float())
    lam = float(model.lam_value)
    model.generator_loss(real, model.generator.sample(16), None)
    assert float(model.lam_value) == lam  # fixed after the first batch
    save(model, tmp_path / "m.safetensors", step=1)
    assert float(load(tmp_path / "m.safetensors").lam_value) == lam


def test_annealed_bandwidth_is_used_and_counted():
    data = toy_points()
    model = build_model("gan-si", data.info, {"sigma_start": "1.0", "anneal_steps": "10"})
    model.train()
    real = data.split("train")[0][:8]
    for _ in range(3):
        model.generator_loss(real, model.generator.sample(8), None)
    assert int(model.step) == 3 and model.current_sigma() == pytest.approx(1.0 * 0.1 ** 0.3)


def test_mixture_takes_the_batch_fakes_plus_fresh_draws_up_to_M():
    """H_M with M = 7 over 3 adversarial fakes: those 3 and the next 4 draws of the generator."""
    data = toy_points()
    model = build_model("gan-si", data.info, {"sigma": "0.4", "sigma_start": "0", "M": "7"})
    real = data.split("train")[0][:5]
    fake = model.generator.sample(3)
    torch.manual_seed(11)
    out = model.generator_loss(real, fake, None)
    torch.manual_seed(11)
    centres = torch.cat([fake, model.generator.sample(4)]).detach().double()  # (7, 2)
    x = real.double()
    dens = torch.exp(-((x[:, None] - centres[None]) ** 2).sum(-1) / (2 * 0.16)) / (2 * math.pi * 0.16)
    torch.testing.assert_close(out["si"].double(), -dens.mean(1).log().mean(), rtol=1e-5, atol=1e-5)
    torch.manual_seed(11)
    h = model.si_loss(real, model.mixture_centres(fake.detach(), None))  # only the fresh draws carry a graph
    torch.testing.assert_close(h.detach(), out["si"])
    net_grads = torch.autograd.grad(h, list(model.generator.parameters()))
    assert all(g.abs().sum() > 0 for g in net_grads)  # the fresh draws are trained, not constants
    # M smaller than the batch: its first M fakes
    small = build_model("gan-si", data.info, {"M": "2"})
    assert torch.equal(small.mixture_centres(fake.detach(), None), fake.detach()[:2])


def test_defaults_by_data_kind():
    """Points get the Q1-tuned λ, M and rates; images λ as a gradient ratio 0.3, the batch's fakes and DCGAN's 2e-4."""
    points = build_model("gan-si", toy_points().info)
    c = points.config
    assert (c.lam, c.M, c.lr_g, c.lr_d, float(points.lam_value), c.lam_adaptive) == (10.0, 512, 6e-3, 1e-3, 10.0, False)
    assert c.anneal_share == 0.8  # σ 0.1 on points: the wide-kernel anneal
    assert build_model("gan-si", toy_points().info, {"sigma": "0.01"}).config.anneal_share == 0.5
    assert points.mixture_size(256) == 512
    assert build_model("gan-si", toy_points().info, {"sigma": "0.01"}).config.lr_g == 1e-3  # sharp kernel
    assert build_model("gan-si", toy_points().info, {"M": "300", "lam": "0"}).config.M == 300
    assert float(build_model("gan-si", toy_points().info, {"lam": "0"}).lam_value) == 0.0  # 0 is a real λ
    images = build_model("gan-si", toy_images().info)
    c = images.config
    assert (c.lam, c.lam_adaptive, c.M, c.lr_g, c.lr_d, c.anneal_share) == (0.3, True, 0, 2e-4, 2e-4, 0.5)
    assert images.divergence.config.r1_weight == 1.0 and points.divergence.config.r1_weight == 0.0  # R1 on images
    assert build_model("gan-si", toy_images().info, {"lam_auto": "true"}).config.lam_adaptive is False  # one or the other
    assert images.mixture_size(64) == 64  # images: the batch's fakes
    assert type(images).run_defaults(images.data) == {"steps": 10_000, "batch_size": 64, "sample_every": 500}
    assert type(points).run_defaults(points.data)["lr_decay"] == "cosine"


def test_adaptive_lambda_makes_the_likelihood_pull_the_samples_lam_times_as_hard_as_the_critic():
    """Known answer: with λ_t from pull_ratio, ‖∂(λ_t·H_M)/∂x̃‖ = lam · ‖∂L_GAN/∂x̃‖, whatever σ is."""
    data = toy_images()
    real = data.split("train")[0][:8]
    for sigma in ("1.0", "0.1"):
        model = build_model("gan-si", data.info, {"lam": "0.5", "sigma": sigma, "sigma_start": "0"})
        model.train()
        fake = model.trained.sample(8)
        out = model.generator_loss(real, fake, None)
        lam = float(out["lam"])
        gan = model.divergence.generator_loss(model.critic, real, fake)
        (g_gan,) = torch.autograd.grad(gan, fake, retain_graph=True)
        (g_si,) = torch.autograd.grad(lam * model.si_loss(real, fake), fake)
        assert g_si.norm().item() == pytest.approx(0.5 * g_gan.norm().item(), rel=1e-4)
        assert float(model.lam_value) == lam > 0
    with pytest.raises(ConfigError, match="exclude each other"):
        build_model("gan-si", data.info, {"lam_auto": "true", "lam_adaptive": "true"})


@pytest.mark.parametrize("key", ["M", "lam", "lr_g", "lr_d"])
def test_negative_settings_are_refused(key):
    with pytest.raises(ConfigError, match=key):
        build_model("gan-si", toy_points().info, {key: "-1"})


def test_anneal_is_a_share_of_the_run_the_trainer_plans():
    """Known answers: σ_start 1 → σ 0.04 over half of a 1,000-step run: 1 at step 0, 0.2 at 250, 0.04 at the end."""
    data = toy_points()
    model = build_model("gan-si", data.info, {"sigma": "0.04", "sigma_start": "1.0"})
    assert "tuned for" in model.plan(1000)
    for step, sigma in ((0, 1.0), (250, 0.2), (1000, 0.04)):
        model.step.fill_(step)
        assert model.current_sigma() == pytest.approx(sigma)
    assert model.plan(model.run_defaults(data.info)["steps"]) is None


def test_point_budget_is_10k_steps_on_both_mixtures():
    from igm import open_data

    gan_si = type(build_model("gan-si", toy_points().info))
    assert gan_si.run_defaults(open_data("ring8", 0).info)["steps"] == 10_000
    assert gan_si.run_defaults(open_data("grid25", 0).info)["steps"] == 10_000
