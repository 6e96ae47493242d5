"""The RBM plugin: the igm.testing contract, the CD/PCD loss, persistent chains across resume, sampling, metrics."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from igm import (
    Bits,
    ConfigError,
    RBMParams,
    RBMTrainingConfig,
    RunConfig,
    Trainer,
    contrastive_divergence_loss,
    free_energy,
    gibbs,
    open_data,
    save,
)
from igm.testing import build_model, check_checkpoint_roundtrip, check_model, check_samples, check_trains, toy_points


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


PLAIN = {"centering": "false", "temperatures": "1", "sample_temperatures": "1"}  # plain PCD and Gibbs sampling


@pytest.fixture(scope="module")
def digits():
    return open_data("binarized-digits", 0)


def test_contract_on_binarized_digits(tmp_path, digits):
    model = check_model("rbm", digits, tmp_path, overrides={"hidden": "16", "cd_k": "3", "persistent": "true"})
    assert model.config.visible == "bernoulli" and model.config.lr == 0.1
    default = build_model("rbm", digits.info)
    assert default.config.persistent and default.run_defaults(digits.info)["lr_decay"] == "linear"  # Q3's setting
    assert model.generator.W.shape == (16, 64) and model.config.persistent and model.config.cd_k == 3  # what was asked


def test_pcd_contract_and_chains_in_the_checkpoint(tmp_path, digits):
    model = build_model("rbm", digits.info, {"hidden": "16", "persistent": "true", "chains": "24", "gibbs_steps": "50", **PLAIN})
    assert model.chains.shape == (0, 16)  # sized at the first batch
    check_trains(model, digits, tmp_path / "run", batch_size=16)
    assert model.chains.shape == (24, 16) and set(model.chains.unique().tolist()) <= {0.0, 1.0}
    check_samples(model)
    loaded = check_checkpoint_roundtrip(model, tmp_path / "rt.safetensors")  # bit-exact, chains included
    assert torch.equal(loaded.chains, model.chains)


def test_gaussian_visibles_on_real_valued_data(tmp_path):
    data = toy_points()
    model = build_model("rbm", data.info, {"hidden": "8", "gibbs_steps": "20"})
    assert model.config.visible == "gaussian" and model.config.lr == 0.01
    check_trains(model, data, tmp_path / "run")
    x = check_samples(model)
    assert x.unique().numel() > 8  # real-valued means, not bits
    check_checkpoint_roundtrip(model, tmp_path / "rt.safetensors")
    with pytest.raises(ConfigError, match="visible=gaussian"):
        build_model("rbm", data.info, {"visible": "bernoulli"})


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_loss_gradient_is_the_contrastive_divergence_update(digits, persistent, sparse, monkeypatch):
    model = build_model("rbm", digits.info, {"hidden": "10", "cd_k": "2", "persistent": str(persistent).lower(), **PLAIN})
    v = digits.split("test")[0][:12].flatten(1)
    stacked = []
    if sparse:  # few ones in the data and in the samples: the products become sums of rows (igm.bits)
        v = v * (torch.rand(v.shape, generator=torch.Generator().manual_seed(5)) < 0.4)
        with torch.no_grad():
            model.generator.b.fill_(-2.0)
        real_stack = Bits.stack
        monkeypatch.setattr(Bits, "stack", lambda parts: stacked.append(real_stack(parts)) or stacked[-1])
    torch.manual_seed(3)
    loss = model.loss("rbm", (v.reshape(12, 1, 8, 8), None))
    loss.backward()
    if sparse:
        assert stacked and stacked[-1] is not None and stacked[-1].shape == (24, 64)
    # the same negative samples by hand: CD, 2 Gibbs sweeps from the batch; PCD, from hidden units h = 0
    torch.manual_seed(3)
    p = model.generator.params().detach()
    if persistent:  # v ~ σ(b + Wᵀ0) = σ(b), then one more sweep
        neg = gibbs(p, (torch.rand(12, 64) < torch.sigmoid(p.b)).float(), 1)[0]
    else:
        neg = gibbs(p, v, 2)[0]
    if persistent:  # and then hold the hidden units sampled from the negatives
        u = torch.rand(12, 10)
        assert torch.equal(model.chains, (u < torch.sigmoid(neg @ p.W.T + p.c)).float())
    h_pos, h_neg = torch.sigmoid(v @ p.W.T + p.c), torch.sigmoid(neg @ p.W.T + p.c)
    # −∂L/∂W = <h vᵀ>_data − <h vᵀ>_model (scikit-learn's update direction)
    torch.testing.assert_close(-model.generator.W.grad, h_pos.T @ v / 12 - h_neg.T @ neg / 12)
    torch.testing.assert_close(-model.generator.b.grad, v.mean(0) - neg.mean(0))
    torch.testing.assert_close(-model.generator.c.grad, h_pos.mean(0) - h_neg.mean(0))
    torch.testing.assert_close(loss, free_energy(p, v).mean() - free_energy(p, neg).mean())


def test_defaults_centre_and_temper_pcd_and_sample_by_tempering(digits):
    """1,000 hidden units, centring, PCD tempered on 9 temperatures (1 for CD), sampling tempered on 9 for 300 sweeps."""
    c = build_model("rbm", digits.info).config
    assert (c.hidden, c.persistent, c.centering, c.temperatures, c.sample_temperatures, c.gibbs_steps) == (
        1000, True, True, 9, 9, 300
    )
    assert build_model("rbm", digits.info, {"persistent": "false"}).config.temperatures == 1  # CD: no chains to temper
    with pytest.raises(ConfigError, match="persistent=true"):  # asked for by name, it is still refused
        build_model("rbm", digits.info, {"persistent": "false", "temperatures": "9"})
    model = build_model("rbm", digits.info, {"hidden": "8", "gibbs_steps": "4"})
    torch.testing.assert_close(model.generator.betas, torch.linspace(1.0, 0.6, 9, dtype=torch.float64))
    s = model.generator.sample(5, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    start = (torch.rand(5, 64, generator=gen) < 0.5).float()
    expected = gibbs(model.generator.params().detach(), start, 4, gen, model.generator.betas)[1]
    torch.testing.assert_close(s.flatten(1), expected)


def run(steps: int) -> RunConfig:
    return RunConfig(steps=steps, batch_size=16, seed=3, log_every=1, sample_every=0, checkpoint_every=0, device="cpu")


def test_pcd_resume_continues_the_chains_exactly(tmp_path, digits):
    overrides = {"hidden": "12", "persistent": "true", "cd_k": "2", "momentum": "0.5"}
    full = build_model("rbm", digits.info, overrides)
    Trainer(full, digits, run(10), tmp_path / "full", progress=False).fit()

    Trainer(build_model("rbm", digits.info, overrides), digits, run(5), tmp_path / "split", progress=False).fit()
    saved = load_file(tmp_path / "split" / "model.safetensors")["chains"]
    resumed = build_model("rbm", digits.info, overrides, seed=99)  # chains unsized, weights different
    trainer = Trainer(resumed, digits, run(10), tmp_path / "split", progress=False)
    trainer.restore()
    assert torch.equal(resumed.chains, saved)  # the chains came back from the checkpoint
    trainer.fit(resume=True)

    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and "chains" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(saved, resumed.chains)  # and they moved on after the resume
    logs = [
        [{k: v for k, v in json.loads(line).items() if k not in ("steps_per_s", "elapsed_s")} for line in (p / "metrics.jsonl").read_text().splitlines()]
        for p in (tmp_path / "full", tmp_path / "split")
    ]
    assert logs[0] == logs[1]


def test_sample_from_data_runs_the_chain_from_it(digits):
    model = build_model("rbm", digits.info, {"hidden": "8", "gibbs_steps": "5", **PLAIN})
    x = digits.split("test")[0][:6]
    assert torch.equal(model.generator.sample_from(x, steps=0), x)
    a = model.generator.sample_from(x, steps=3, generator=torch.Generator().manual_seed(1))
    _, mean = gibbs(model.generator.params().detach(), x.flatten(1), 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, mean.reshape(6, 1, 8, 8))
    # from noise: gibbs_steps sweeps from uniform bits, the means of the last one
    s = model.generator.sample(6, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    start = (torch.rand(6, 64, generator=gen) < 0.5).float()
    torch.testing.assert_close(s.flatten(1), gibbs(model.generator.params().detach(), start, 5, gen)[1])


def test_metrics_through_igm_eval(tmp_path, digits, monkeypatch):
    from typer.testing import CliRunner

    from igm import get_registry
    from igm.cli import app

    model = build_model("rbm", digits.info, {"hidden": "10"})
    Trainer(model, digits, run(150), tmp_path, progress=False).fit()
    path = tmp_path / "model.safetensors"
    result = CliRunner().invoke(app, ["eval", str(path), "--metric", "ais", "--metric", "pseudo-likelihood", "-n", "30", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # progress lines go to stderr
    ais = out["ais"]
    assert ais["runs"] == 30 and ais["test_examples"] == digits.split("test")[0].shape[0]
    assert ais["exact_log_z"] is not None  # 10 hidden units: exact too
    assert abs(ais["log_z"] - ais["exact_log_z"]) < 3 * ais["log_z_se"] + 1e-9
    assert ais["log_likelihood"] == pytest.approx(-ais["mean_free_energy"] - ais["log_z"])
    assert ais["log_likelihood_se"] >= ais["free_energy_se"]
    assert ais["exact_log_likelihood"] < 0
    assert out["pseudo-likelihood"]["pseudo_likelihood"] < 0
    # a model that is not an RBM: one line, exit 2; and `igm eval` with no --metric skips RBM metrics for it
    gan = build_model("gan", digits.info, {"g_width": "0.25", "d_width": "0.25"})
    save(gan, tmp_path / "gan.safetensors")
    bad = CliRunner().invoke(app, ["eval", str(tmp_path / "gan.safetensors"), "--metric", "ais"])
    assert bad.exit_code == 2 and "restricted Boltzmann" in bad.output
    registry = get_registry()  # the metrics `igm eval` runs with no --metric (the image judges apply to both)
    metrics = {k: registry.get("metrics", k) for k in registry.names("metrics")}
    auto = lambda m: {k for k, f in metrics.items() if f.applies_to(digits.info) and f.applies_to_model(m)}  # noqa: E731
    assert not auto(gan) & {"ais", "pseudo-likelihood"}  # ais and pseudo-likelihood skip a GAN
    assert {"ais", "pseudo-likelihood"} <= auto(model)  # and apply to the RBM
    both = CliRunner().invoke(app, ["eval", str(path), "--metric", "ais", "--metric", "pseudo-likelihood", "-n", "5", "--json"])
    assert set(json.loads(both.stdout)) == {"ais", "pseudo-likelihood"}


def test_centred_gradient_is_the_centred_update_in_plain_coordinates():
    """Centering keeps the model (plain W, b, c) and steps as SGD on the centred RBM would, in float64."""
    g = torch.Generator().manual_seed(0)
    H, V, B = 5, 7, 9
    W = (0.3 * torch.randn(H, V, generator=g, dtype=torch.float64)).requires_grad_()
    b = (0.2 * torch.randn(V, generator=g, dtype=torch.float64)).requires_grad_()
    c = (0.2 * torch.randn(H, generator=g, dtype=torch.float64)).requires_grad_()
    v = (torch.rand(B, V, generator=g, dtype=torch.float64) < 0.4).double()
    offsets = torch.empty(0, dtype=torch.float64)  # sized at the first batch: the batch's means
    torch.manual_seed(1)
    loss = contrastive_divergence_loss(RBMParams(W, b, c), v, 2, None, offsets, 0.5)
    loss.backward()
    mu, lam = offsets[:V], offsets[V:]
    torch.testing.assert_close(mu, v.mean(0))
    torch.testing.assert_close(lam, torch.sigmoid(v @ W.detach().T + c.detach()).mean(0))
    # the centred RBM: E = −(h − λ)ᵀW(v − μ) − b'ᵀ(v − μ) − c'ᵀ(h − λ), with b' = b + Wᵀλ, c' = c + Wμ
    Wc = W.detach().clone().requires_grad_()
    bc = (b.detach() + W.detach().T @ lam).requires_grad_()
    cc = (c.detach() + W.detach() @ mu).requires_grad_()
    h = torch.rand(B, H, generator=g, dtype=torch.float64).round()
    energy = -(h @ W.detach() * v).sum(1) - v @ b.detach() - h @ c.detach()
    centred = -((h - lam) @ Wc.detach() * (v - mu)).sum(1) - (v - mu) @ bc.detach() - (h - lam) @ cc.detach()
    assert torch.allclose(centred - energy, (centred - energy)[:1].expand(B))  # the same model: E differs by a constant
    torch.manual_seed(1)  # the same negatives, from the plain parameters that the centred ones stand for
    plain = contrastive_divergence_loss(RBMParams(Wc, bc - Wc.T @ lam, cc - Wc @ mu), v, 2)
    plain.backward()
    torch.testing.assert_close(loss, plain)  # the loss value is the plain one
    # a centred SGD step (−lr · grad of W, b', c') seen in the plain coordinates is −lr · the gradient we got
    torch.testing.assert_close(W.grad, Wc.grad)
    torch.testing.assert_close(b.grad, bc.grad - Wc.grad.T @ lam)
    torch.testing.assert_close(c.grad, cc.grad - Wc.grad @ mu)


def test_parallel_tempering_swaps_with_the_metropolis_ratio():
    """Two temperatures: a sweep at each β, then the pair swaps where log u < (β₀ − β₁)(E₀ − E₁)."""
    g = torch.Generator().manual_seed(0)
    H, V, M = 6, 8, 400
    p = RBMParams(torch.randn(H, V, generator=g, dtype=torch.float64), torch.randn(V, generator=g, dtype=torch.float64),
                  torch.randn(H, generator=g, dtype=torch.float64))
    config = RBMTrainingConfig(persistent=True, temperatures=2, min_beta=0.25)
    betas = config.betas()
    assert betas.tolist() == [1.0, 0.25] and config.chain_rows(M) == 2 * M
    chains = torch.rand(2 * M, H, generator=g, dtype=torch.float64).round()
    start = chains.clone()
    v = torch.zeros(3, V, dtype=torch.float64)
    torch.manual_seed(4)
    contrastive_divergence_loss(p, v, 1, chains, betas=betas)
    torch.manual_seed(4)  # by hand (bits from float32 uniforms, as igm.bernoulli): v ~ σ(β(b + Wᵀh)), h ~ σ(β(c + Wv)) at each β, then the swap draws
    beta = torch.tensor([1.0] * M + [0.25] * M, dtype=torch.float64)[:, None]
    vis = (torch.rand(2 * M, V).double() < torch.sigmoid(beta * (start @ p.W + p.b))).double()
    a = vis @ p.W.T + p.c
    hid = (torch.rand(2 * M, H).double() < torch.sigmoid(beta * a)).double()
    energy = -(vis @ p.b) - (hid * a).sum(1)
    u = torch.rand(M, dtype=torch.float64)
    swap = u.log() < 0.75 * (energy[:M] - energy[M:])
    assert 0.05 < swap.double().mean() < 0.95  # some swaps, not all
    expected = torch.cat([torch.where(swap[:, None], hid[M:], hid[:M]), torch.where(swap[:, None], hid[:M], hid[M:])])
    assert torch.equal(chains, expected)
    with pytest.raises(ConfigError, match="persistent=true"):
        RBMTrainingConfig(persistent=False, temperatures=3)
    for bad in ({"lr": -0.1}, {"chains": -1}, {"momentum": -0.5}, {"weight_decay": -1e-4}, {"init_std": -0.01}):
        with pytest.raises(ConfigError, match="0 or positive"):  # the recipe's own check, not only the CLI's
            RBMTrainingConfig(**bad)


def test_centring_offsets_in_the_checkpoint_and_old_checkpoints_load(tmp_path, digits):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from igm import load

    model = build_model("rbm", digits.info, {"hidden": "8", "centering": "true", "temperatures": "3", "chains": "5"})
    assert model.offsets.shape == (0,)  # sized at the first batch
    check_trains(model, digits, tmp_path / "run", batch_size=16)
    assert model.offsets.shape == (64 + 8,) and model.chains.shape == (15, 8)  # 5 chains at each of 3 temperatures
    loaded = check_checkpoint_roundtrip(model, tmp_path / "rt.safetensors")
    assert torch.equal(loaded.offsets, model.offsets)
    # a checkpoint written before centering and tempering (its config names neither, no offsets) keeps plain PCD and Gibbs
    plain = build_model("rbm", digits.info, {"hidden": "8", "gibbs_steps": "40", **PLAIN})
    check_trains(plain, digits, tmp_path / "plain", batch_size=16)
    save(plain, tmp_path / "old.safetensors")
    with safe_open(str(tmp_path / "old.safetensors"), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["igm.config"])
    for key in ("centering", "offset_rate", "temperatures", "min_beta", "sample_temperatures"):
        config.pop(key)  # the options that came later
    save_file(tensors, str(tmp_path / "old.safetensors"), {**meta, "igm.config": json.dumps(config)})
    old = load(tmp_path / "old.safetensors")
    c = old.config
    assert (c.centering, c.temperatures, c.sample_temperatures, c.gibbs_steps) == (False, 1, 1, 40)
    assert not hasattr(old, "offsets") and old.generator.betas is None and old.chains.shape == (16, 8)
    torch.testing.assert_close(old.generator.W, plain.generator.W)
    old.train()
    old.loss("rbm", next(digits.stream(16, 0))).backward()  # plain PCD on its 16 chains
