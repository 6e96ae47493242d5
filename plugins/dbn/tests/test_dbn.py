"""The DBN plugin: the igm.testing contract, one layer = the rbm family, the layer schedule across resume, the bound."""

from __future__ import annotations

import json

import pytest
import torch

from igm import (
    ConfigError,
    DataInfo,
    RunConfig,
    TensorSource,
    Trainer,
    dbn_log_likelihood_bound,
    dbn_log_likelihood_exact,
    free_energy,
    get_registry,
    hidden_input,
    open_data,
)
from igm.testing import build_model, check_model, check_samples, check_trains, toy_points

pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


@pytest.fixture(scope="module")
def digits():
    return open_data("binarized-digits", 0)


def run(steps: int, checkpoint_every: int = 0) -> RunConfig:
    return RunConfig(steps=steps, batch_size=16, seed=3, log_every=1, sample_every=0, checkpoint_every=checkpoint_every, device="cpu")


def test_contract_on_binarized_digits(tmp_path, digits):
    overrides = {"hidden": "16,8", "cd_k": "2", "propagate": "sample", "gibbs_steps": "5"}
    model = check_model("dbn", digits, tmp_path, overrides=overrides, steps=4)
    assert [tuple(p.W.shape) for p in model.rbm_layers()] == [(16, 64), (8, 16)]
    assert model.config.lr == 0.1 and model.config.persistent and int(model.step) == 4
    assert model.config.centering and model.config.temperatures == 9  # the defaults: centred, parallel tempering
    assert model.chains0.shape == (9 * 16, 16) and model.chains1.shape == (9 * 16, 8)  # each layer trained 2 of 4 steps
    assert model.offsets0.shape == (64 + 16,) and model.offsets1.shape == (16 + 8,)


def test_gaussian_bottom_layer_on_real_valued_data(tmp_path):
    data = toy_points()
    model = build_model("dbn", data.info, {"hidden": "8,4", "gibbs_steps": "10"})
    assert model.config.visible == "gaussian" and model.rbm_layers()[1].visible == "bernoulli"
    check_trains(model, data, tmp_path / "run", steps=4)
    assert check_samples(model).unique().numel() > 8


@pytest.mark.parametrize(
    "overrides",
    [
        {"hidden": "shallow"},
        {"hidden": ""},
        {"hidden": "8,0"},
        {"hidden": "8,4", "shares": "1"},
        {"hidden": "8,4", "shares": "1,0"},
        {"cd_k": "0"},
        {"propagate": "median"},
        {"lr_decay": "cosine"},
        {"visible": "bernoulli"},  # on real-valued data
    ],
)
def test_bad_config_is_a_config_error(overrides):
    with pytest.raises(ConfigError):
        build_model("dbn", toy_points().info, overrides)


@pytest.mark.parametrize("persistent", [False, True])
def test_one_layer_is_the_rbm(digits, persistent):
    common = {"hidden": "12", "cd_k": "2", "persistent": str(persistent).lower(), "momentum": "0.5", "gibbs_steps": "20",
              "centering": "true", "temperatures": "3" if persistent else "1", "sample_temperatures": "2"}
    rbm = build_model("rbm", digits.info, common, seed=1)
    dbn = build_model("dbn", digits.info, {**common, "lr_decay": "none"}, seed=1)
    for model in (rbm, dbn):
        Trainer(model, digits, run(25), None, progress=False).fit()
    (layer,) = dbn.rbm_layers()
    for mine, theirs in zip((layer.W, layer.b, layer.c), (rbm.generator.W, rbm.generator.b, rbm.generator.c)):
        assert torch.equal(mine, theirs)
    if persistent:
        assert torch.equal(dbn.chains0, rbm.chains) and torch.equal(dbn.offsets0, rbm.offsets)
    draw = lambda m: m.generator.sample(6, generator=torch.Generator().manual_seed(2))  # noqa: E731
    assert torch.equal(draw(dbn), draw(rbm))
    if persistent:  # (AIS takes seconds)
        ais = get_registry().get("metrics", "ais")
        assert ais(dbn, digits, n=3) == pytest.approx(ais(rbm, digits, n=3))  # every key: the same AIS, the same exact log Z


def test_layer_schedule_is_shares_of_the_planned_run(digits):
    model = build_model("dbn", digits.info, {"hidden": "8,6,4", "shares": "1,1,2"})
    model.plan(100)
    assert model.layer_ends() == [25, 50, 100]
    assert model.layer_at(0) == (0, 1.0) and model.layer_at(24) == (0, 1 - 24 / 25)
    assert model.layer_at(25) == (1, 1.0) and model.layer_at(60) == (2, 1 - 10 / 50)
    assert model.layer_at(100)[0] == 2  # a run continued past its plan stays on the top layer


def test_resume_across_a_layer_boundary_is_exact(tmp_path, digits):
    overrides = {"hidden": "10,6", "momentum": "0.5", "propagate": "sample"}
    config = run(10, checkpoint_every=4)  # layer 0 in steps 1-5, layer 1 in steps 6-10
    full = build_model("dbn", digits.info, overrides)
    Trainer(full, digits, config, tmp_path / "full", progress=False).fit()

    killed = build_model("dbn", digits.info, overrides)
    calls = {"n": 0}
    real_loss = killed.loss

    def dies_in_step_6(player, batch):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_loss(player, batch)

    killed.loss = dies_in_step_6
    with pytest.raises(Exception, match="interrupted at step 5"):
        Trainer(killed, digits, config, tmp_path / "split", progress=False).fit()
    resumed = build_model("dbn", digits.info, overrides, seed=99)  # other weights, chains unsized
    Trainer(resumed, digits, config, tmp_path / "split", progress=False).fit(resume=True)  # from the step-4 checkpoint

    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and {"step", "chains0", "chains1"} <= set(a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    strip = lambda p: [  # noqa: E731
        {k: v for k, v in json.loads(line).items() if k not in ("steps_per_s", "elapsed_s")}
        for line in (p / "metrics.jsonl").read_text().splitlines()
    ]
    logs = strip(tmp_path / "full")
    assert logs == strip(tmp_path / "split") and [e["dbn.layer"] for e in logs] == [0] * 5 + [1] * 5


def all_states(n: int) -> torch.Tensor:
    return ((torch.arange(1 << n)[:, None] >> torch.arange(n)) & 1).double()  # (2^n, n)


def exact_bound(layers, v: torch.Tensor, log_z_top: float) -> torch.Tensor:
    """The 2-layer bound with the expectation over q(h | v) summed over every h, not sampled."""
    bottom, top = layers
    h = all_states(bottom.num_hidden)  # (S, H)
    q = torch.sigmoid(hidden_input(bottom, v))  # (n, H)
    log_q = h @ torch.log(q).T + (1 - h) @ torch.log1p(-q).T  # (S, n)
    u = h @ bottom.W + bottom.b  # (S, V) logits of p(v | h)
    log_pv = u @ v.T - torch.nn.functional.softplus(u).sum(1, keepdim=True)  # (S, n)
    joint = log_pv - free_energy(top, h)[:, None] - log_z_top  # log p(v, h)
    return (log_q.exp() * (joint - log_q)).sum(0)


def test_lower_bound_is_below_the_exact_log_likelihood():
    gen = torch.Generator().manual_seed(0)
    v = (torch.rand(400, 6, generator=gen) < torch.linspace(0.1, 0.8, 6)).float()
    v[:, 1] = v[:, 0]  # some structure between pixels for the hidden units to find
    info = DataInfo("tiny-bits", (6,), None, (0.0, 1.0), "vector")
    data = TensorSource(info, v[:300], None, v[300:])
    model = build_model("dbn", info, {"hidden": "4,3", "init_std": "0.5", "gibbs_steps": "5"})
    Trainer(model, data, RunConfig(steps=200, batch_size=20, log_every=50, sample_every=0, checkpoint_every=0, device="cpu"),
            None, progress=False).fit()
    layers = [p.detach(torch.float64) for p in model.rbm_layers()]

    every_v = all_states(6)
    exact = dbn_log_likelihood_exact(layers, every_v)
    assert float(torch.logsumexp(exact, 0)) == pytest.approx(0.0, abs=1e-9)  # a distribution over the 64 images
    log_z_top = float(torch.logsumexp(-free_energy(layers[1], all_states(4)), 0))  # the top RBM's 4 visible units
    bound = exact_bound(layers, every_v, log_z_top)
    assert (bound <= exact + 1e-9).all() and (exact - bound).max() > 1e-3  # Jensen, and not an equality here
    sampled = dbn_log_likelihood_bound(layers, every_v, log_z_top, samples=4000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(sampled, bound, atol=0.1)  # the Monte Carlo estimate is of that bound



def test_eval_says_it_is_a_lower_bound(tmp_path, digits):
    from typer.testing import CliRunner

    from igm.cli import app

    model = build_model("dbn", digits.info, {"hidden": "12,6"})
    Trainer(model, digits, run(20), tmp_path, progress=False).fit()
    path = str(tmp_path / "model.safetensors")
    result = CliRunner().invoke(app, ["eval", path, "--metric", "ais", "-n", "20", "--json"])
    assert result.exit_code == 0, result.output
    ais = json.loads(result.stdout)["ais"]
    assert "lower bound" in ais["estimate"]
    layers = [p.detach(torch.float64) for p in model.rbm_layers()]
    x = digits.split("test")[0].flatten(1).double()
    assert ais["exact_log_likelihood"] == pytest.approx(float(dbn_log_likelihood_exact(layers, x).mean()))  # 12 + 6 hidden units: enumerable
    assert abs(ais["log_z_top"] - ais["exact_log_z_top"]) < 3 * ais["log_z_top_se"] + 0.01
    assert ais["log_likelihood_lower_bound"] < ais["exact_log_likelihood"]
    bad = CliRunner().invoke(app, ["eval", path, "--metric", "pseudo-likelihood"])
    assert bad.exit_code == 2 and "use --metric ais" in bad.output


def test_centring_and_tempering_per_layer(tmp_path, digits):
    overrides = {"hidden": "10,6", "centering": "true", "temperatures": "3", "chains": "4", "gibbs_steps": "5"}
    model = build_model("dbn", digits.info, overrides)
    check_trains(model, digits, tmp_path / "run", steps=4)
    assert model.offsets0.shape == (64 + 10,) and model.offsets1.shape == (10 + 6,)  # [μ; λ] of each layer
    assert model.chains0.shape == (12, 10) and model.chains1.shape == (12, 6)  # 4 chains at each of 3 temperatures
    check_samples(model)
    with pytest.raises(ConfigError, match="persistent=true"):
        build_model("dbn", digits.info, {"persistent": "false", "temperatures": "2"})


def test_a_checkpoint_from_before_centring_keeps_its_settings(tmp_path, digits):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from igm import load, save

    old = build_model("dbn", digits.info, {"hidden": "10,6", "centering": "false", "temperatures": "1"})
    Trainer(old, digits, run(4), tmp_path / "run", progress=False).fit()
    path = tmp_path / "run" / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    config = {k: v for k, v in json.loads(meta["igm.config"]).items() if k not in ("centering", "offset_rate", "temperatures", "min_beta", "sample_temperatures")}
    save_file(tensors, str(path), {**meta, "igm.config": json.dumps(config)})  # as written before these settings
    loaded = load(path)
    assert not loaded.config.centering and loaded.config.temperatures == 1  # what it was trained with
    assert loaded.chains0.shape == (16, 10) and not hasattr(loaded, "offsets0")
    assert torch.equal(loaded.generator.sample(3, generator=torch.Generator().manual_seed(0)),
                       old.eval().generator.sample(3, generator=torch.Generator().manual_seed(0)))
    save(loaded, tmp_path / "again.safetensors")
    assert not json.loads(safe_open(str(tmp_path / "again.safetensors"), "pt").metadata()["igm.config"])["centering"]
