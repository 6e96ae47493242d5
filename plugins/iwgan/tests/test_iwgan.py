"""The IWGAN plugin: contract (unconditional and IWCGAN), weights against the formula, the weighted loss."""

from __future__ import annotations

import pytest
import torch

from igm import ConfigError
from igm.testing import build_model, check_model, toy_images, toy_points
from igm_iwgan import importance_weights


def test_contract_on_points(tmp_path):
    check_model("iwgan", toy_points(), tmp_path, overrides={"k": "8", "lr_g": "0.002"})


def test_contract_iwcgan_on_images(tmp_path):
    model = check_model("iwgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert model.config.network == "dcgan"
    cond = build_model("iwgan", toy_images().info, {"conditional": "true", "g_width": "0.5"})
    assert cond.generator.num_classes == 10


def test_weights_equal_the_formula_on_a_fixed_discriminator():
    torch.manual_seed(0)
    model = build_model("iwgan", toy_points().info, {"k": "4"})
    fake = torch.randn(8, 2)
    with torch.no_grad():
        d = torch.sigmoid(model.critic(fake)).double()  # D(x)
    ratio = d / (1 - d)
    expected = torch.cat([ratio[:4] / ratio[:4].sum(), ratio[4:] / ratio[4:].sum()])
    w = importance_weights(model.critic(fake), 4)
    torch.testing.assert_close(w.double(), expected, rtol=1e-5, atol=1e-7)
    assert not w.requires_grad


def test_generator_loss_is_the_weighted_non_saturating_loss():
    torch.manual_seed(0)
    model = build_model("iwgan", toy_points().info)
    fake = model.generator.sample(6)
    logits = model.critic(fake)
    w = torch.softmax(logits.detach(), 0)
    expected = (w * torch.nn.functional.softplus(-logits)).sum()
    torch.testing.assert_close(model.generator_loss(None, fake, None), expected)
    # uniform weights (a constant critic) give back the plain non-saturating GAN loss
    assert torch.allclose(importance_weights(torch.zeros(6), 3), torch.full((6,), 1 / 3))


def test_wasserstein_and_bad_k_are_refused():
    with pytest.raises(ConfigError, match="divergence=jsd"):
        build_model("iwgan", toy_points().info, {"divergence": "wasserstein"})
    model = build_model("iwgan", toy_points().info, {"k": "5"})
    with pytest.raises(ConfigError, match="multiple of k"):
        model.generator_loss(None, model.generator.sample(8), None)


def test_k_left_unset_is_two_on_points_and_the_whole_batch_elsewhere():
    """Known answers: POINT_K (2) on points, 0 (the whole batch) on images; a k the user gives always wins."""
    from igm import open_data

    grid25 = open_data("grid25", 0).info
    assert build_model("iwgan", grid25).config.k == 2
    assert build_model("iwgan", grid25, {"k": "0"}).config.k == 0
    assert build_model("iwgan", grid25, {"k": "16"}).config.k == 16
    assert build_model("iwgan", toy_images().info, {"g_width": "0.5"}).config.k == 0
    model = build_model("iwgan", grid25)  # groups of 2 in a batch of 8: each group's weights sum to 1
    w = importance_weights(model.critic(model.generator.sample(8)), model.group_size(8))
    torch.testing.assert_close(w.view(4, 2).sum(1), torch.ones(4))


def test_generator_has_three_hidden_layers_on_points_unless_set():
    """Known answers: 256,256,256 on points when g_hidden is unset, 256,256 on ring8 (a small mixture); a
    DCGAN reads none."""
    from igm import open_data

    grid25 = open_data("grid25", 0).info
    model = build_model("iwgan", grid25)
    assert model.config.g_hidden == (256, 256, 256)
    assert [m.out_features for m in model.generator.modules() if isinstance(m, torch.nn.Linear)] == [256, 256, 256, 2]
    assert build_model("iwgan", open_data("ring8", 0).info).config.g_hidden == (256, 256)
    assert build_model("iwgan", grid25, {"g_hidden": "64,64"}).config.g_hidden == (64, 64)
    assert build_model("iwgan", toy_images().info, {"g_width": "0.5"}).config.g_hidden == ()


def test_on_images_the_critic_gets_the_adversarial_recipes_r1_penalty():
    """Known answer: jsd on images resolves R1 γ = 1 (igm.adversarial.DIVERGENCE_DEFAULTS); points keep none."""
    assert build_model("iwgan", toy_images().info, {"g_width": "0.5"}).divergence.config.r1_weight == 1.0
    assert build_model("iwgan", toy_points().info).divergence.config.r1_weight == 0.0
