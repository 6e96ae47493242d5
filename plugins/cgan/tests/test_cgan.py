"""The cGAN plugin: contract on labelled points and images, label-honouring samples, the per-class grid."""

from __future__ import annotations

import pytest
import torch

from igm import ConfigError, DataInfo, RunConfig, Trainer, class_samples, save_class_grid
from igm.testing import build_model, check_model, toy_images, toy_points


def test_contract_on_points(tmp_path):
    model = check_model("cgan", toy_points(), tmp_path, overrides={"lr_g": "0.002"})
    assert model.config.conditional and model.generator.num_classes == 4


def test_contract_on_images(tmp_path):
    model = check_model("cgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert model.config.network == "dcgan" and model.critic.num_classes == 10


def test_unlabelled_data_is_refused():
    info = DataInfo("grid25", (2,), None, None, "points")
    with pytest.raises(ConfigError, match="labelled"):
        build_model("cgan", info)


def test_samples_honour_their_labels(tmp_path):
    """Trained briefly on 4 labelled, well separated modes, samples of label k land nearest mode k."""
    data = toy_points(n=2048)
    torch.manual_seed(0)
    model = build_model("cgan", data.info, {"lr_g": "0.002", "lr_d": "0.002"}, seed=0)
    run = RunConfig(steps=400, batch_size=64, seed=0, device="cpu", log_every=1000, sample_every=0, checkpoint_every=0)
    Trainer(model, data, run, None, progress=False).fit()
    model.eval()
    x, labels = class_samples(model.generator, 200, torch.Generator().manual_seed(0))
    means = torch.tensor(data.info.extra["means"])
    nearest = torch.cdist(x, means).argmin(dim=1)
    accuracy = (nearest == labels).float().mean().item()
    assert accuracy > 0.9, f"only {accuracy:.2f} of the samples land at their label's mode"
    path = save_class_grid(model.generator, 50, "points", tmp_path / "grid.png", reference=means)
    assert path.exists()


def test_per_class_image_grid_has_one_row_per_class(tmp_path):
    from PIL import Image

    model = build_model("cgan", toy_images().info, {"g_width": "0.5"})
    model.eval()
    path = save_class_grid(model.generator, 5, "image", tmp_path / "grid.png", value_range=(0.0, 1.0))
    img = Image.open(path)
    tile = 8 * 4 + 2  # 8 px upscaled x4 plus the 2 px padding
    assert img.size == (5 * tile + 2, 10 * tile + 2)


def test_point_budget_is_shorter_than_gans_on_grid25_and_the_same_on_ring8():
    from igm import get_registry, open_data

    cgan, gan = (get_registry().get("models", name) for name in ("cgan", "gan"))
    grid25, ring8 = open_data("grid25").info, open_data("ring8").info
    assert cgan.run_defaults(grid25) == {**gan.run_defaults(grid25), "steps": 8_000}
    ring8_budget = {"steps": 4_000, "batch_size": 256, "lr_decay": "cosine"}
    assert cgan.run_defaults(ring8) == gan.run_defaults(ring8) == ring8_budget


def test_on_images_the_critic_gets_the_adversarial_recipes_r1_penalty():
    """Known answer: jsd on images resolves R1 γ = 1 (igm.adversarial.DIVERGENCE_DEFAULTS); points keep none."""
    assert build_model("cgan", toy_images().info, {"g_width": "0.5"}).divergence.config.r1_weight == 1.0
    assert build_model("cgan", toy_points().info).divergence.config.r1_weight == 0.0


def test_a_projection_critic_is_an_option_that_only_a_conditional_dcgan_reads(tmp_path):
    """``d_projection=true``: the critic takes labels by projection (no label planes), saves and loads as such."""
    model = check_model("cgan", toy_images(), tmp_path, overrides={"g_width": "0.5", "d_projection": "true"})
    assert model.critic.embed is not None and model.critic.embed.weight.shape[1] == 10
    assert model.critic.net[0].in_channels == 1  # the image's channel only
    assert build_model("cgan", toy_images().info).critic.embed is None  # the default: label planes
    with pytest.raises(ConfigError, match="d_projection.*conditional=false"):
        build_model("gan", toy_images().info, {"d_projection": "true"})
    with pytest.raises(ConfigError, match="d_projection.*network=mlp"):
        build_model("cgan", toy_points().info, {"d_projection": "true"})
