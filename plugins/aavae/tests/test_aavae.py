"""The AAVAE plugin: the igm.testing contract, and its reduction to the VAE under an oracle discriminator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from igm import open_data
from igm.testing import build_model, check_model, toy_images, toy_points


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


def test_contract_on_binarized_digits(tmp_path):
    model = check_model("aavae", open_data("binarized-digits", 0), tmp_path, overrides={"k": "3", "fake_weight": "0.5"})
    assert [p.name for p in model.players()] == ["discriminator", "vae"]
    assert model.config.network == "mlp" and model.config.likelihood == "bernoulli"


def test_contract_on_points_and_images(tmp_path):
    check_model("aavae", toy_points(), tmp_path / "points", overrides={"latent_dim": "2"})
    model = check_model("aavae", toy_images(), tmp_path / "images")
    assert model.config.network == "conv"


class Oracle(nn.Module):
    """Says "real" (logit +200) for the rows of ``real`` and "fake" (-200) for anything else."""

    def __init__(self, real: Tensor) -> None:
        super().__init__()
        self.real = real.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        is_real = (x.flatten(1)[:, None, :] == self.real[None]).all(-1).any(1)  # (N,)
        return torch.where(is_real, 200.0, -200.0)


@pytest.mark.parametrize("k", ["1", "4"])
def test_an_oracle_discriminator_reduces_aavae_to_the_vae(k):
    data = open_data("binarized-digits", 0)
    real = data.split("test")[0][:32]
    aavae = build_model("aavae", data.info, {"k": k}, seed=1)
    vae = build_model("vae", data.info, {"k": k}, seed=2)
    vae.load_state_dict({key: v for key, v in aavae.state_dict().items() if not key.startswith("discriminator.")})
    aavae.discriminator = Oracle(real)

    torch.manual_seed(5)
    out = aavae.loss("vae", (real, None))
    out["loss"].backward()
    torch.manual_seed(5)
    want = vae.loss("vae", (real, None))
    want.backward()
    torch.testing.assert_close(out["loss"], want, rtol=1e-6, atol=1e-5)
    assert out["d_real"] == 1.0 and out["d_fake"] == 0.0
    for (name, a), b in zip(aavae.generator.named_parameters(), vae.generator.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(aavae.encoder.parameters(), vae.encoder.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_generated_samples_enter_the_objective_weighted_by_the_discriminator():
    data = open_data("binarized-digits", 0)
    real = data.split("test")[0][:16]
    model = build_model("aavae", data.info, {"fake_weight": "0.5"}, seed=0)

    class Half(nn.Module):  # D = 1/2 everywhere
        def forward(self, x: Tensor) -> Tensor:
            return torch.zeros(x.shape[0])

    model.discriminator = Half()
    torch.manual_seed(7)
    out = model.loss("vae", (real, None))
    torch.manual_seed(7)
    bound_real = model.bound(real)
    fake = model.generator.sample_data(16)
    want = -(0.5 * bound_real.sum() + 0.5 * 0.5 * model.bound(fake).sum()) / 16
    torch.testing.assert_close(out["loss"], want)
    assert set(fake.unique().tolist()) <= {0.0, 1.0}  # Bernoulli draws, like the binarized data


def test_the_discriminator_is_trained_as_in_a_gan():
    data = open_data("binarized-digits", 0)
    real = data.split("test")[0][:16]
    model = build_model("aavae", data.info, seed=0)
    torch.manual_seed(9)
    loss = model.loss("discriminator", (real, None))
    torch.manual_seed(9)
    fake = model.generator.sample_data(16)
    want = F.softplus(-model.discriminator(real)).mean() + F.softplus(model.discriminator(fake)).mean()
    torch.testing.assert_close(loss, want)
