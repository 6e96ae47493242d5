"""The GAN plugin: the igm.testing contract on points and images, and its divergence choices."""

from __future__ import annotations

import pytest
import torch

from igm.testing import build_model, check_model, toy_images, toy_points


@pytest.mark.parametrize("divergence", ["jsd", "kl", "wasserstein"])
def test_contract_on_points(tmp_path, divergence):
    model = check_model("gan", toy_points(), tmp_path, overrides={"divergence": divergence, "lr_g": "0.002"})
    assert model.config.network == "mlp" and model.config.latent_dim == 10


def test_contract_on_images_uses_dcgan(tmp_path):
    model = check_model("gan", toy_images(), tmp_path, overrides={"g_width": "0.5", "critic_steps": "2"})
    assert model.config.network == "dcgan"
    assert model.players()[0].steps == 1  # the default; the override is checked on a fresh build


def test_minimax_and_non_saturating_generator_losses_differ():
    data = toy_points()
    batch = data.split("train")
    torch.manual_seed(0)
    ns = build_model("gan", data.info, {"loss": "non-saturating"})
    mm = build_model("gan", data.info, {"loss": "minimax"})
    fake = ns.generator.sample(8)
    logits = ns.critic(fake)
    torch.testing.assert_close(ns.generator_loss(batch[0][:8], fake, None), torch.nn.functional.softplus(-logits).mean())
    mm.load_state_dict(ns.state_dict())
    torch.testing.assert_close(mm.generator_loss(batch[0][:8], fake, None), -torch.nn.functional.softplus(logits).mean())


def test_conditional_gan_passes_labels_to_both_networks():
    data = toy_points()
    model = build_model("gan", data.info, {"conditional": "true"})
    x = model.generator.sample(6, labels=torch.tensor([0, 1, 2, 3, 0, 1]))
    assert x.shape == (6, 2)
    loss = model.loss("critic", (data.split("train")[0][:6], data.split("train")[1][:6]))
    assert torch.isfinite(loss)
