"""The VAE plugin: the igm.testing contract, its objective, CVAE labels and `igm eval --metric nll`."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from igm import RunConfig, Trainer, iw_bound, open_data
from igm.cli import app
from igm.testing import build_model, check_model, toy_images, toy_points


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


def test_contract_on_points_gaussian_iwae(tmp_path):
    model = check_model("vae", toy_points(), tmp_path, overrides={"k": "5", "latent_dim": "4", "hidden": "[32]"})
    assert model.config.likelihood == "gaussian" and model.config.network == "mlp"
    assert model.generator.log_std.requires_grad  # a learned shared std


def test_contract_on_images_uses_the_conv_pair_and_bernoulli(tmp_path):
    model = check_model("vae", toy_images(), tmp_path, overrides={"conditional": "true"})
    assert model.config.likelihood == "bernoulli" and model.config.network == "conv" and model.config.conditional
    assert model.config.activation == "tanh" and model.config.hidden == (200, 200)


def test_binarized_data_gets_the_iwae_paper_network():
    model = build_model("vae", open_data("binarized-digits", 0).info)
    c = model.config
    assert (c.likelihood, c.network, c.latent_dim, c.hidden, c.activation) == ("bernoulli", "mlp", 50, (200, 200), "tanh")


def test_loss_is_minus_the_mean_bound_for_vae_and_iwae():
    data = open_data("binarized-digits", 0)
    x = data.split("test")[0][:16]
    for k in (1, 4):
        model = build_model("vae", data.info, {"k": str(k), "analytic_kl": "false"})
        torch.manual_seed(3)
        loss = model.loss("vae", (x, None))
        torch.manual_seed(3)
        log_w = model.log_weights(x, k)
        torch.testing.assert_close(loss, -iw_bound(log_w).mean())


def test_cvae_samples_honour_their_labels():
    data = toy_images(n=256)  # class c lights up row c mod 8
    model = build_model("vae", data.info, {"conditional": "true", "network": "mlp", "hidden": "[64]", "latent_dim": "4", "lr": "3e-3"})
    run = RunConfig(steps=200, batch_size=64, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(model, data, run, progress=False).fit()
    labels = torch.arange(10).repeat(20)  # (200,)
    with torch.no_grad():
        x = model.generator.sample(200, labels, generator=torch.Generator().manual_seed(0))  # (200, 1, 8, 8)
    brightest_row = x.mean(dim=(1, 3)).argmax(dim=1)  # (200,)
    assert (brightest_row == labels % 8).float().mean() > 0.95


def test_fit_then_eval_nll_from_the_command_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    fit = runner.invoke(app, ["fit", "vae", "--data", "binarized-digits", "--steps", "20", "--out", str(out), "-q",
                              "--set", "k=3"])
    assert fit.exit_code == 0, fit.output
    res = runner.invoke(app, ["eval", str(out / "model.safetensors"), "--metric", "nll", "-n", "30", "--json"])
    assert res.exit_code == 0, res.output
    import json

    nll = json.loads(res.stdout)["nll"]  # progress lines go to stderr
    assert nll["examples"] == 30 and nll["k"] == 5000
    assert nll["nll"] > 0 and -nll["elbo"] >= nll["nll"] and nll["nll_se"] > 0
    # a model without a bound: one line, exit status 2
    gan = tmp_path / "gan"
    assert runner.invoke(app, ["fit", "gan", "--data", "grid25", "--steps", "2", "--out", str(gan), "-q"]).exit_code == 0
    bad = runner.invoke(app, ["eval", str(gan / "model.safetensors"), "--metric", "nll"])
    assert bad.exit_code == 2 and "likelihood bound" in bad.output


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_conv_pair_maps_images_to_latents_and_back_and_listens_to_labels(shape):
    from igm import ConvDecoder, ConvEncoder

    torch.manual_seed(0)
    enc, dec = ConvEncoder(shape, 2 * 6, num_classes=10), ConvDecoder(6, shape, num_classes=10)
    x, labels = torch.rand(4, *shape), torch.tensor([0, 1, 2, 3])
    assert enc(x, labels).shape == (4, 12)
    z = torch.randn(4, 6)
    out = dec(z, labels)
    assert out.shape == (4, *shape)
    assert not torch.allclose(out, dec(z, labels + 1))  # the labels reach the output


def test_conv_network_on_an_unsupported_image_size_is_a_config_error():
    from igm import ConfigError, DataInfo

    info = DataInfo("odd", (1, 7, 7), None, (0.0, 1.0), "image")
    with pytest.raises(ConfigError, match="network=mlp"):
        build_model("vae", info)
    assert build_model("vae", info, {"network": "mlp"}).config.network == "mlp"
