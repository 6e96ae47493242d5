"""The moment-matching plugin: contract, its two losses, and why the choice of statistics matters."""

from __future__ import annotations

import torch

from igm import RunConfig, Trainer, mmd2, mode_coverage
from igm.testing import build_model, check_model, toy_images, toy_points
from igm_mmd import MomentMatching, mean_cov, moments_loss


def test_contract_on_points(tmp_path):
    check_model("mmd", toy_points(), tmp_path, overrides={"statistics": "moments", "bandwidths": "0.5,1"})


def test_contract_on_images(tmp_path):
    check_model("mmd", toy_images(), tmp_path, overrides={"g_width": "0.5"})


def test_losses_are_mmd_and_moment_distance():
    data = toy_points()
    real = data.split("train")[0][:32]
    model = build_model("mmd", data.info, {"bandwidths": "0.1,1"})
    torch.manual_seed(0)
    loss = model.loss("generator", (real, None))
    torch.manual_seed(0)
    fake = model.generator.sample(32)
    torch.testing.assert_close(loss, mmd2(real, fake, (0.1, 1.0)))
    x = torch.randn(500, 2, dtype=torch.float64)
    mu, cov = mean_cov(x)
    torch.testing.assert_close(cov, torch.cov(x.T, correction=0))
    assert moments_loss(x, x) == 0


def test_defaults_on_points_differ_from_images_and_a_set_value_stays():
    points = build_model("mmd", toy_points().info).config
    assert (points.g_hidden, points.lr_g, points.bandwidths) == ((192,) * 5, 3e-3, (0.05, 0.2, 1.0, 5.0))
    images = build_model("mmd", toy_images().info, {"g_width": "0.5"}).config
    assert (images.g_hidden, images.lr_g) == ((), 1e-3)  # a DCGAN reads no g_hidden: it stays "auto"
    assert images.bandwidths == (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    mine = build_model("mmd", toy_points().info, {"g_hidden": "64", "lr_g": "0.01", "bandwidths": "0.5"}).config
    assert (mine.g_hidden, mine.lr_g, mine.bandwidths) == ((64,), 0.01, (0.5,))
    model = build_model("mmd", toy_points().info)
    assert model.divergence.config.bandwidths == (0.05, 0.2, 1.0, 5.0)
    assert [m.out_features for m in model.generator.modules() if isinstance(m, torch.nn.Linear)] == [192] * 5 + [2]


def test_run_defaults_decay_the_rate_on_points_only():
    assert MomentMatching.run_defaults(toy_points().info)["lr_decay"] == "cosine"
    assert "lr_decay" not in MomentMatching.run_defaults(toy_images().info)


def _train(statistics: str, data, steps: int = 400):
    # 4 widths and the small generator: a faster test
    sets = {"statistics": statistics, "lr_g": "0.004", "bandwidths": "0.1,0.3,1,3", "g_hidden": "100,100"}
    model = build_model("mmd", data.info, sets, seed=0)
    run = RunConfig(steps=steps, batch_size=256, seed=0, device="cpu", log_every=10_000, sample_every=0, checkpoint_every=0)
    Trainer(model, data, run, None, progress=False).fit()
    model.eval()
    with torch.no_grad():
        return model.generator.sample(4000, generator=torch.Generator().manual_seed(1))


def test_moments_match_but_modes_do_not():
    """Mean and covariance of the 4-mode mixture are matched, yet almost no sample lands on a mode.

    A Gaussian with the mixture's own mean and covariance is the reference: it has the same two
    moments and scores about as badly, while the kernel MMD generator, after the same 400 steps, already puts a sample on every
    mode and many more samples near them.
    """
    data = toy_points(n=4096)
    real = data.split("train")[0]
    means, std = torch.tensor(data.info.extra["means"]), data.info.extra["std"]
    mu_r, cov_r = mean_cov(real)

    moments = _train("moments", data)
    mu_m, cov_m = mean_cov(moments)
    assert (mu_m - mu_r).norm() < 0.3 and (cov_m - cov_r).norm() < 0.15 * cov_r.norm()

    gaussian = mu_r + torch.randn(4000, 2, generator=torch.Generator().manual_seed(2)) @ torch.linalg.cholesky(cov_r).T
    hq_moments = mode_coverage(moments, means, std)["high_quality"]
    hq_gaussian = mode_coverage(gaussian, means, std)["high_quality"]
    hq_data = mode_coverage(real, means, std)["high_quality"]
    assert hq_data > 0.95 and hq_gaussian < 0.05
    assert hq_moments < 0.3, f"the moment matcher should miss the modes, HQ {hq_moments:.2f}"

    kernel = _train("mmd", data)
    scores = mode_coverage(kernel, means, std)
    # after 400 seeded steps: HQ 0.54 against 0.02, a sample on every mode (PacGAN rule)
    assert scores["high_quality"] > hq_moments + 0.2 and scores["modes_pacgan"] == 4
