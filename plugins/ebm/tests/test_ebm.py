"""The EBM plugin: the igm.testing contract, Langevin on a known Gaussian, the contrastive gradient, exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from igm_ebm import IMAGE_DEFAULTS, POINT_DEFAULTS, EBMConfig, contrastive_loss, langevin, reflect, resolve_defaults, uniform
from safetensors.torch import load_file
from torch import nn

from igm import ConfigError, RunConfig, Trainer
from igm.testing import build_model, check_checkpoint_roundtrip, check_model, check_trains, toy_images, toy_points

pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture

SMALL = {"hidden": "16,16", "langevin_steps": "3", "sample_steps": "5", "buffer_size": "64"}


def test_contract_on_points(tmp_path):
    model = check_model("ebm", toy_points(), tmp_path, overrides=SMALL)
    assert model.replay.shape == (64, 2) and model.replay.abs().max() <= 1  # filled at the first batch, in the box
    low, high = model.generator.box
    assert (low < high).all()


def test_contract_on_small_images(tmp_path):
    data = toy_images()
    model = check_model("ebm", data, tmp_path, overrides={"langevin_steps": "2", "sample_steps": "3", "buffer_size": "32", "width": "0.5"})
    assert model.replay.shape == (32, 1, 8, 8)
    assert torch.equal(model.generator.box[0], torch.zeros(1, 8, 8)) and torch.equal(model.generator.box[1], torch.ones(1, 8, 8))


def test_auto_values_by_the_data_kind_and_a_given_value_wins():
    points, images = toy_points().info, toy_images().info
    # the points' values are those the mixtures were tuned with (benchmarks/README.md, "EBM (issue 20)")
    want_points = {"network": "mlp", "hidden": (128, 128), "activation": "elu", "gain": 60.0, "langevin_steps": 10,
                   "step_size": 0.01, "noise": 0.05, "reinit": 0.05, "alpha": 0.1, "data_noise": 0.0, "lr": 1e-2,
                   "beta1": 0.0, "sample_steps": 200}
    assert POINT_DEFAULTS == want_points
    on_points = build_model("ebm", points).config
    assert {k: getattr(on_points, k) for k in want_points} == want_points
    on_images = build_model("ebm", images).config
    assert {k: getattr(on_images, k) for k in IMAGE_DEFAULTS} == IMAGE_DEFAULTS
    assert on_images.reinit == 1.0 and on_images.sample_steps >= on_images.langevin_steps  # short-run chains from noise
    given = build_model("ebm", images, {"step_size": "3", "hidden": "32", "network": "conv", "width": "0.5"}).config
    assert (given.step_size, given.hidden, given.network, given.lr) == (3.0, (32,), "conv", IMAGE_DEFAULTS["lr"])
    assert resolve_defaults(resolve_defaults(EBMConfig(), images), points) == resolve_defaults(EBMConfig(), images)  # concrete: no "auto" left


def test_an_image_config_stored_by_the_first_release_still_builds_its_conv_energy():
    images = toy_images().info
    first = {"network": "auto", "hidden": (128, 128), "activation": "elu", "gain": 60.0, "langevin_steps": 10,
             "step_size": 0.01, "noise": 0.05, "reinit": 0.05, "alpha": 0.1, "lr": 1e-2, "beta1": 0.0, "sample_steps": 200}
    assert resolve_defaults(EBMConfig(**first), images).network == "conv"  # "auto" meant the DCGAN discriminator then
    assert resolve_defaults(EBMConfig(**first), toy_points().info).network == "mlp"
    assert resolve_defaults(EBMConfig(activation="tanh"), images).network == "mlp"  # a fresh config with one value set


def test_reflect_folds_values_back_into_the_box():
    u = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.9, 1.0, 1.25])
    torch.testing.assert_close(reflect(u), torch.tensor([-0.5, -1.0, -0.3, 0.0, 0.9, 1.0, 0.75]))


def test_data_noise_dequantises_the_data_inside_the_box():
    data = toy_images()
    model = build_model("ebm", data.info, {"langevin_steps": "1", "buffer_size": "16", "hidden": "8", "data_noise": "0.2"})
    seen = []
    model.generator.energy.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    x = data.split("train")[0][:16]
    model.loss("energy", (x, None))
    u_data = seen[-1][:16]  # the loss's one call on data and negatives together
    assert u_data.abs().max() <= 1 and not torch.equal(u_data, model.generator.to_box(x))
    assert (u_data - model.generator.to_box(x)).abs().max() < 2.0


def test_langevin_on_a_quadratic_energy_draws_the_gaussian():
    """E(x) = ½(x − μ)ᵀA(x − μ) at temperature 1: N(μ, A⁻¹)."""
    mu = torch.tensor([1.0, -2.0])
    A = torch.tensor([[2.0, 0.6], [0.6, 1.0]])

    def energy(x: torch.Tensor) -> torch.Tensor:
        d = x - mu
        return 0.5 * ((d @ A) * d).sum(1)

    gen = torch.Generator().manual_seed(0)
    x = langevin(energy, torch.zeros(4000, 2), steps=1500, step_size=0.02, noise=1.0, generator=gen)
    torch.testing.assert_close(x.mean(0), mu, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), torch.linalg.inv(A), atol=0.05, rtol=0.05)
    # no noise: gradient descent to the minimum; bounds clamp every step
    torch.testing.assert_close(langevin(energy, torch.zeros(5, 2), 3000, 0.02, noise=0.0), mu.expand(5, 2), atol=1e-4, rtol=0)
    assert langevin(energy, torch.zeros(5, 2), 50, 0.01, bounds=(-1.0, 1.0)).abs().max() <= 1


class Linear(nn.Module):
    """An exponential-family energy E(x) = θᵀT(x), T(x) = (x, x²) per dimension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.linspace(-0.5, 0.7, 2 * dim))

    @staticmethod
    def stats(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.pow(2)], 1)  # (N, 2D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stats(x) @ self.theta


def analytic_gradient(energy: Linear, data: torch.Tensor, samples: torch.Tensor, alpha: float) -> torch.Tensor:
    """∂/∂θ of mean E(data) − mean E(samples) + α (mean E(data)² + mean E(samples)²)."""
    t_d, t_s = energy.stats(data), energy.stats(samples)
    e_d, e_s = t_d @ energy.theta.detach(), t_s @ energy.theta.detach()
    return t_d.mean(0) - t_s.mean(0) + 2 * alpha * ((e_d[:, None] * t_d).mean(0) + (e_s[:, None] * t_s).mean(0))


def test_contrastive_gradient_on_an_exponential_family():
    energy = Linear(2)
    data, samples = torch.randn(40, 2), torch.rand(30, 2)
    contrastive_loss(energy(data), energy(samples), alpha=0.3).backward()
    torch.testing.assert_close(energy.theta.grad, analytic_gradient(energy, data, samples, 0.3))


def test_model_loss_is_the_contrastive_loss_against_its_langevin_negatives():
    data = toy_points()
    model = build_model("ebm", data.info, {**SMALL, "buffer_size": "16", "alpha": "0.2", "reinit": "0.25"})
    model.generator.energy = Linear(2)
    x = data.split("train")[0][:16]
    torch.manual_seed(4)
    out = model.loss("energy", (x, None))
    out["loss"].backward()
    # the buffer is the batch's 16 chains, after 3 steps from its noise (4 of them restarted): recompute by hand
    torch.manual_seed(4)
    u0 = uniform((16, 2), None, torch.device("cpu"))
    rows = torch.randperm(16)
    start = u0[rows]
    start[:4] = uniform((4, 2), None, torch.device("cpu"))
    neg = model.generator.chain(start, 3)
    torch.testing.assert_close(model.replay[rows], neg)
    u_data = model.generator.to_box(x)
    torch.testing.assert_close(model.generator.energy.theta.grad, analytic_gradient(model.generator.energy, u_data, neg, 0.2))


def test_sample_runs_the_chain_from_noise():
    model = build_model("ebm", toy_points().info, SMALL)
    s = model.generator.sample(6, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    u = model.generator.chain(2 * torch.rand(6, 2, generator=gen) - 1, 5, gen)
    torch.testing.assert_close(s, model.generator.from_box(u))
    with torch.inference_mode():  # as `igm sample` and `igm eval` draw: the chain still takes gradients in x
        assert torch.equal(model.generator.sample(6, generator=torch.Generator().manual_seed(2)), s)
    model.generator.sample_steps = 0  # no steps: uniform noise over the box
    noise = model.generator.sample(500, generator=gen)
    low, high = model.generator.box
    assert ((noise >= low) & (noise <= high)).all()


def run(steps: int) -> RunConfig:
    return RunConfig(steps=steps, batch_size=16, seed=3, log_every=1, sample_every=0, checkpoint_every=0, device="cpu")


def logged(run_dir) -> list[dict]:
    """A run's metrics log without its timings."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("steps_per_s", "elapsed_s")} for line in lines]


def test_replay_buffer_in_the_checkpoint_and_exact_resume(tmp_path):
    data = toy_points()
    model = build_model("ebm", data.info, SMALL)
    check_trains(model, data, tmp_path / "trained")
    loaded = check_checkpoint_roundtrip(model, tmp_path / "rt.safetensors")  # bit-exact, replay and box included
    assert torch.equal(loaded.replay, model.replay) and torch.equal(loaded.generator.box, model.generator.box)

    full = build_model("ebm", data.info, SMALL)
    Trainer(full, data, run(10), tmp_path / "full", progress=False).fit()
    # half the run, then a fresh process's model (other weights, no buffer yet) resumes it to the end
    Trainer(build_model("ebm", data.info, SMALL), data, run(5), tmp_path / "split", progress=False).fit()
    halfway = load_file(tmp_path / "split" / "model.safetensors")["replay"]
    resumed = build_model("ebm", data.info, SMALL, seed=99)
    trainer = Trainer(resumed, data, run(10), tmp_path / "split", progress=False)
    trainer.restore()
    assert torch.equal(resumed.replay, halfway)
    trainer.fit(resume=True)
    want, got = full.state_dict(), resumed.state_dict()
    assert want.keys() == got.keys() and "replay" in want
    assert [k for k in want if not torch.equal(want[k], got[k])] == []
    assert logged(tmp_path / "full") == logged(tmp_path / "split")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"reinit": "1.5"}, "reinit"),
        ({"step_size": "0"}, "step_size"),
        ({"langevin_steps": "0"}, "langevin_steps"),
        ({"activation": "relu"}, "activation"),
        ({"data_noise": "-0.1"}, "data_noise"),
        ({"network": "conv"}, "network=conv"),
    ],
)
def test_bad_config_is_a_one_line_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_model("ebm", toy_points().info, overrides)
    assert "\n" not in str(info.value)
