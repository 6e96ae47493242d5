"""The GAN plugin: the igm.testing contract on points and images, and its divergence choices."""

from __future__ import annotations

import pytest
import torch

import igm
from igm.testing import build_model, check_model, toy_images, toy_points


@pytest.mark.parametrize("divergence", ["jsd", "kl", "wasserstein"])
def test_contract_on_points(tmp_path, divergence):
    model = check_model("gan", toy_points(), tmp_path, overrides={"divergence": divergence, "lr_g": "0.002"})
    assert model.config.network == "mlp" and model.config.latent_dim == 10


def test_contract_on_images_uses_dcgan(tmp_path):
    model = check_model("gan", toy_images(), tmp_path, overrides={"g_width": "0.5", "critic_steps": "2"})
    assert model.config.network == "dcgan"
    assert model.players()[0].steps == 2  # check_model trains the model it is given, overrides and all


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
    z = model.generator.prior(4, generator=torch.Generator().manual_seed(0))
    x_a = model.generator(z, torch.tensor([0, 0, 0, 0]))
    x_b = model.generator(z, torch.tensor([1, 1, 1, 1]))
    assert x_a.shape == (4, 2) and not torch.allclose(x_a, x_b)  # same noise, other label: other samples
    real = data.split("train")[0][:4]
    critic = model.critic_fn  # the critic sees the labels too: its logits change with them
    assert not torch.allclose(critic(torch.tensor([0, 0, 0, 0]))(real), critic(torch.tensor([2, 2, 2, 2]))(real))
    loss = model.loss("critic", (data.split("train")[0][:6], data.split("train")[1][:6]))
    assert torch.isfinite(loss)


def test_r1_adds_half_its_weight_times_the_squared_data_gradient():
    """Known answer: a linear critic l(x) = w·x + b has ∇l = w everywhere, so R1 adds (γ/2)·‖w‖²."""
    from igm import JSD, KL

    critic = torch.nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, -4.0]]))  # ‖w‖² = 25
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    for div in (JSD, KL):
        plain = div().critic_loss(critic, real, fake)
        torch.testing.assert_close(div(r1_weight=0.2).critic_loss(critic, real, fake), plain + 0.1 * 25.0)
    loss = JSD(r1_weight=0.2).critic_loss(critic, real, fake)
    loss.backward()  # the penalty trains the critic: d(0.1·‖w‖²)/dw = 0.2·w on top of the logistic part
    assert critic.weight.grad is not None


def test_ema_generator_is_sampled_saved_and_averages_the_trained_one(tmp_path):
    from igm.testing import check_checkpoint_roundtrip, check_trains

    data = toy_points()
    model = build_model("gan", data.info, {"ema": "0.5"})
    check_trains(model, data, tmp_path / "run")  # the trained generator moves (the contract's check)
    check_checkpoint_roundtrip(model, tmp_path / "ema.safetensors")  # both generators, bit-exact
    assert model.generator is not model.trained
    assert {"generator.net.net.0.weight", "online.net.net.0.weight"} <= set(model.state_dict())
    assert all(not p.requires_grad for p in model.generator.parameters())
    trained_ids = {id(p) for p in model.trained.parameters()}
    assert {id(p) for p in model.players()[1].parameters} == trained_ids
    before = [p.detach().clone() for p in model.generator.parameters()]
    model.train()
    assert int(model.ema_updates) == 3  # one update per generator step
    model.ema_updates.fill_(100)  # past the warm-up: (1 + t) / (10 + t) >= 0.5
    model.loss("generator", data.split("train"))  # one update: avg ← avg + 0.5·(trained − avg)
    for avg, old, now in zip(model.generator.parameters(), before, model.trained.parameters()):
        torch.testing.assert_close(avg, 0.5 * old + 0.5 * now)
    plain = build_model("gan", data.info)
    assert plain.generator is plain.trained and not any(k.startswith("online.") for k in plain.state_dict())


def test_ema_warms_up_and_a_file_from_before_the_warm_up_keeps_its_plain_decay(tmp_path):
    """Known answers: the t-th update's decay is min(ema, (1 + t) / (10 + t)), the count is saved, and a file
    without the count (written before the warm-up existed) averages with the plain decay it was trained with."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    data = toy_points()
    model = build_model("gan", data.info, {"ema": "0.999"})
    model.train()
    assert int(model.ema_updates) == 0 and float(model.ema_decay()) == pytest.approx(0.1)
    batch = data.split("train")
    before = [p.detach().clone() for p in model.generator.parameters()]
    with torch.no_grad():
        for p in model.trained.parameters():
            p.add_(1.0)  # the trained generator moved away from the average
    model.loss("generator", batch)  # t = 0: avg ← 0.1·avg + 0.9·trained
    for avg, old, now in zip(model.generator.parameters(), before, model.trained.parameters()):
        torch.testing.assert_close(avg, 0.1 * old + 0.9 * now)
    assert int(model.ema_updates) == 1 and float(model.ema_decay()) == pytest.approx(2 / 11)
    model.ema_updates.fill_(20_000)
    assert float(model.ema_decay()) == 0.999  # (1 + t) / (10 + t) > 0.999 from t = 8,991 on

    path = igm.save(model, tmp_path / "ema.safetensors")
    assert int(igm.load(path).ema_updates) == 20_000
    tensors = load_file(path)
    del tensors["ema_updates"]
    with safe_open(str(path), framework="pt") as fh:
        save_file(tensors, str(path), metadata=dict(fh.metadata()))
    older = igm.load(path)
    assert older.ema_updates is None and older.ema_decay() == 0.999
    assert "ema_updates" not in older.state_dict()  # saved again, it stays as it was
    assert build_model("gan", data.info).ema_updates is None  # no average, no count


def test_spectral_norm_critic_has_unit_spectral_norm_layers():
    model = build_model("gan", toy_points().info, {"d_spectral_norm": "true", "d_hidden": "32,32"})
    model.train()
    for _ in range(30):  # power iterations converge on the largest singular value
        model.critic(torch.randn(4, 2))
    linears = [m for m in model.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2) == pytest.approx(1.0, rel=1e-2)


def test_point_defaults_are_the_tuned_ones_and_other_data_keeps_its_own():
    """Known answers: "auto" values resolve by the data's kind; a value the user gives always wins."""
    from igm import open_data

    ring8, grid25 = open_data("ring8", 0).info, open_data("grid25", 0).info
    c = build_model("gan", grid25).config  # jsd off a small mixture: a third generator layer
    assert (c.g_hidden, c.d_hidden, c.d_activation, c.lr_g, c.lr_d, c.beta2) == ((256,) * 3, (256, 256), "leaky_relu", 3e-3, 3e-3, 0.9)
    assert build_model("gan", ring8).config.g_hidden == (256, 256)  # a small mixture keeps two
    assert build_model("gan", grid25, {"divergence": "kl"}).config.g_hidden == (256, 256)  # kl keeps two
    assert build_model("gan", grid25, {"g_hidden": "64"}).config.g_hidden == (64,)
    gan = type(build_model("gan", grid25))
    assert gan.run_defaults(ring8) == {"steps": 4_000, "batch_size": 256, "lr_decay": "cosine"}
    assert gan.run_defaults(grid25)["steps"] == 10_000
    mine = build_model("gan", grid25, {"lr_g": "1e-4", "d_hidden": "100", "beta2": "0.999"}).config
    assert (mine.lr_g, mine.d_hidden, mine.beta2, mine.lr_d) == (1e-4, (100,), 0.999, 3e-3)
    image = build_model("gan", toy_images().info).config  # DCGAN: its rates, and no MLP setting filled in
    assert (image.lr_g, image.lr_d, image.beta2, image.g_hidden, image.d_activation) == (2e-4, 2e-4, 0.999, (), "auto")
    assert build_model("gan-si", grid25).config.d_hidden == (100,)  # gan-si keeps the networks it was tuned with


def test_jsd_on_images_gets_an_r1_penalty_and_nothing_else_does():
    """Known answers: R1 γ = 1 for jsd's critic on images; none on points, for kl or WGAN-GP."""
    from igm import open_data

    images, grid25 = toy_images().info, open_data("grid25", 0).info
    model = build_model("gan", images)
    assert model.config.r1_weight == 1.0 and model.divergence.config.r1_weight == 1.0
    assert build_model("gan", grid25).divergence.config.r1_weight == 0.0  # points: JSD's own default
    assert build_model("gan", images, {"divergence": "kl"}).divergence.config.r1_weight == 0.0  # measured for jsd only
    assert build_model("gan", images, {"divergence": "wasserstein"}).config.r1_weight is None  # WGAN-GP reads none
    assert build_model("gan", images, {"r1_weight": "0"}).divergence.config.r1_weight == 0.0  # the user's win
    with pytest.raises(igm.ConfigError, match="r1_weight"):
        build_model("gan", images, {"divergence": "wasserstein", "r1_weight": "1"})
    older = build_model("gan", images, {"divergence": "wasserstein", "r1_weight": "0"})  # files from before "auto"
    assert older.divergence.config.gp_weight == 10.0


def test_wasserstein_on_points_gets_its_own_rates_and_penalty():
    """Known answers: a divergence's point defaults overlay POINT_DEFAULTS; jsd's stay; images keep theirs."""
    from igm import open_data

    grid25 = open_data("grid25", 0).info
    jsd = build_model("gan", grid25).config
    assert (jsd.lr_g, jsd.lr_d, jsd.beta1, jsd.beta2, jsd.gp_weight) == (3e-3, 3e-3, 0.5, 0.9, None)
    w = build_model("gan", grid25, {"divergence": "wasserstein"})
    c = w.config
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2, c.gp_weight, c.critic_steps) == (2e-3, 6e-3, 0.0, 0.9, 1.0, 1)
    assert [p.betas for p in w.players()] == [(0.0, 0.9), (0.0, 0.9)]  # Adam without momentum for both players
    assert (c.g_hidden, c.d_hidden, c.d_activation) == ((256, 256, 256), (128, 128), "leaky_relu")
    assert [m.out_features for m in w.critic.modules() if isinstance(m, torch.nn.Linear)] == [128, 128, 1]
    assert jsd.d_hidden == (256, 256)  # jsd's critic keeps the points table's width
    assert w.divergence.config.gp_weight == 1.0 and [p.lr for p in w.players()] == [6e-3, 2e-3]
    assert w.divergence.config.gp_one_sided and jsd.gp_one_sided is None  # WGAN-LP on points
    two = build_model("gan", grid25, {"divergence": "wasserstein", "gp_one_sided": "false", "g_hidden": "256,256"})
    assert not two.divergence.config.gp_one_sided and two.config.g_hidden == (256, 256)  # the user's win
    mine = build_model("gan", grid25, {"divergence": "wasserstein", "lr_g": "2e-4", "gp_weight": "10"})
    assert (mine.config.lr_g, mine.config.lr_d, mine.divergence.config.gp_weight) == (2e-4, 6e-3, 10.0)  # the user's win
    assert build_model("gan", grid25, {"divergence": "wasserstein", "beta1": "0.5"}).config.beta1 == 0.5  # the user's win
    image = build_model("gan", toy_images().info, {"divergence": "wasserstein"})  # images: Gulrajani et al.'s rate
    assert (image.config.lr_g, image.config.lr_d, image.config.beta1, image.config.beta2) == (1e-4, 1e-4, 0.5, 0.999)
    assert image.divergence.config.gp_weight == 10.0 and not image.divergence.config.gp_one_sided  # its own defaults
    with pytest.raises(igm.ConfigError, match="gp_weight=5.0 has no effect with divergence=jsd"):
        build_model("gan", grid25, {"gp_weight": "5"})
    older = build_model("gan", grid25, {"gp_weight": "10"})  # what files written before gp_weight was "auto" store
    assert older.config.divergence == "jsd"


def test_a_dcgan_checkpoint_with_mlp_settings_of_an_older_default_still_loads(tmp_path):
    """Files store every field; MLP sizes a DCGAN never read (at 0.1's defaults) are not settings."""
    import json

    from safetensors.torch import load_file, save_file

    import igm

    model = build_model("gan", toy_images().info)
    path = igm.save(model, tmp_path / "m.safetensors")
    meta = igm.read_metadata(path)
    config = json.loads(meta["igm.config"])
    config.update(g_hidden=[100, 100], d_hidden=[100], d_activation="relu")  # as igm 0.1 wrote them
    save_file(load_file(path), path, {**meta, "igm.config": json.dumps(config)})
    loaded = igm.load(path)
    assert loaded.config.g_hidden == () and loaded.config.network == "dcgan"
    z = model.generator.prior(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.generator(z), model.eval().generator(z))
