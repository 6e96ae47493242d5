"""The generic trainer: exact resume, player schedule, gradient isolation, non-finite losses, files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from unittest import mock

import pytest
import torch
from torch import nn

from igm import checkpoint
from igm.errors import Interrupted, TrainingError
from igm.models import Model, Player
from igm.testing import build_model, plugin, toy_points
from igm.trainer import METRICS_FILE, RunConfig, Trainer


def run_config(steps: int, **kw) -> RunConfig:
    base = dict(steps=steps, batch_size=32, seed=5, log_every=1, sample_every=0, checkpoint_every=0, device="cpu")
    return RunConfig(**{**base, **kw})


def losses(path) -> list[dict]:
    rows = [json.loads(line) for line in (path / METRICS_FILE).read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("steps_per_s", "elapsed_s")} for row in rows]


@pytest.mark.parametrize(
    "overrides",
    [
        {"divergence": "wasserstein", "g_batchnorm": "true", "critic_steps": "2"},  # RNG inside the loss, BN buffers
        {"divergence": "jsd"},
    ],
)
def test_resume_is_bit_exact(tmp_path, overrides):
    data = toy_points()
    full = build_model("gan", data.info, overrides)
    Trainer(full, data, run_config(12), tmp_path / "full", progress=False).fit()

    first = build_model("gan", data.info, overrides)
    Trainer(first, data, run_config(5), tmp_path / "split", progress=False).fit()
    resumed = build_model("gan", data.info, overrides, seed=999)  # different init: everything must come from disk
    trainer = Trainer(resumed, data, run_config(12), tmp_path / "split", progress=False)
    trainer.fit(resume=True)

    assert trainer.step == 12
    a, b = full.state_dict(), resumed.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    state_a, _ = checkpoint.read_file(tmp_path / "full" / checkpoint.TRAINER_FILE)
    state_b, _ = checkpoint.read_file(tmp_path / "split" / checkpoint.TRAINER_FILE)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert losses(tmp_path / "full") == losses(tmp_path / "split")


def test_resume_truncates_metrics_written_after_the_checkpoint(tmp_path):
    data = toy_points()
    model = build_model("gan", data.info)
    Trainer(model, data, run_config(6, checkpoint_every=4), tmp_path, progress=False).fit()
    # pretend the run died after step 6 but its last checkpoint is step 4
    Trainer(build_model("gan", data.info), data, run_config(4), tmp_path / "ref", progress=False).fit()
    for name in (checkpoint.MODEL_FILE, checkpoint.TRAINER_FILE):
        (tmp_path / name).write_bytes((tmp_path / "ref" / name).read_bytes())
    Trainer(build_model("gan", data.info), data, run_config(6), tmp_path, progress=False).fit(resume=True)
    steps = [row["step"] for row in losses(tmp_path)]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_player_schedule_and_gradient_isolation():
    data = toy_points()
    model = build_model("gan", data.info, {"critic_steps": "3"})
    trainer = Trainer(model, data, run_config(4), progress=False)
    seen = []
    original = model.loss

    def spy(player, batch):
        others = model.generator if player == "critic" else model.critic
        seen.append((player, all(not p.requires_grad for p in others.parameters())))
        return original(player, batch)

    model.loss = spy
    trainer.fit()
    assert [p for p, _ in seen] == (["critic"] * 3 + ["generator"]) * 4
    assert all(frozen for _, frozen in seen)  # the other player's parameters never collect gradients
    assert all(p.requires_grad for p in model.parameters())  # and are trainable again afterwards
    adam_steps = {p.name: int(next(iter(o.state.values()))["step"]) for p, o in zip(trainer.players, trainer.optimizers)}
    assert adam_steps == {"critic": 12, "generator": 4}


def test_adam_steps_as_torchs_per_tensor_loop_to_the_bit():
    """Player's Adam (foreach) takes the very steps of torch's CPU default: seeded runs keep their paths."""
    data = toy_points()
    params = {}
    for foreach in (True, False):
        model = build_model("gan", data.info, {"critic_steps": "2"})
        if foreach:
            trainer = Trainer(model, data, run_config(30, lr_decay="cosine"), progress=False)
        else:  # torch's own default on the CPU
            loop = lambda p: torch.optim.Adam(p.parameters, lr=p.lr, betas=p.betas)  # noqa: E731
            with mock.patch.object(Player, "make_optimizer", loop):
                trainer = Trainer(model, data, run_config(30, lr_decay="cosine"), progress=False)
        assert [o.defaults["foreach"] for o in trainer.optimizers] == [foreach or None] * 2
        trainer.fit()
        params[foreach] = [p.detach().clone() for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(params[True], params[False]))


@dataclass
class ExplodingConfig:
    explode_at: int = 3


class Exploding(Model):
    """A one-parameter model whose loss turns NaN at a chosen step."""

    name = "exploding"
    Config = ExplodingConfig

    def __init__(self, config, data):
        super().__init__(config, data)
        self.w = nn.Parameter(torch.ones(1))
        self.calls = 0
        self.generator = None  # never sampled in this test

    def players(self):
        return [Player("only", [self.w], lr=0.1)]

    def loss(self, player, batch):
        self.calls += 1
        value = (self.w - batch[0].mean()).pow(2).sum()
        return value * float("nan") if self.calls >= self.config.explode_at else value


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    data = toy_points()
    monkeypatch.setattr(Trainer, "write_samples", lambda self, step: None)
    model = Exploding(ExplodingConfig(explode_at=3), data.info)

    class Plugin:
        @staticmethod
        def register_models(register):
            register("exploding", Exploding)

    import igm

    Plugin.register_models = staticmethod(igm.hookimpl(Plugin.register_models))
    with plugin(Plugin(), "exploding-plugin"):
        trainer = Trainer(model, data, run_config(10, checkpoint_every=1), tmp_path, progress=False)
        with pytest.raises(TrainingError, match=r"the only loss became nan at step 3; the last good checkpoint"):
            trainer.fit()
        meta = checkpoint.read_metadata(tmp_path / checkpoint.MODEL_FILE)
        assert meta["igm.step"] == "2"
        restored = checkpoint.load(tmp_path / checkpoint.MODEL_FILE)
        assert torch.equal(restored.w, model.w)  # the NaN step never reached the parameters


def test_sample_frames_and_checkpoints_follow_the_schedule(tmp_path):
    data = toy_points()
    model = build_model("gan", data.info)
    Trainer(model, data, run_config(6, sample_every=2, checkpoint_every=3, num_samples=50), tmp_path, progress=False).fit()
    frames = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert frames == ["step_0000002.png", "step_0000004.png", "step_0000006.png"]
    assert (tmp_path / "samples.png").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    assert checkpoint.read_metadata(tmp_path / checkpoint.MODEL_FILE)["igm.step"] == "6"


def test_preview_sampling_leaves_training_untouched(tmp_path):
    data = toy_points()
    a = build_model("gan", data.info, {"g_batchnorm": "true"})
    b = build_model("gan", data.info, {"g_batchnorm": "true"})
    Trainer(a, data, run_config(6, sample_every=1), tmp_path / "a", progress=False).fit()
    Trainer(b, data, run_config(6, sample_every=0), tmp_path / "b", progress=False).fit()
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize("field", ["steps", "batch_size", "log_every"])
def test_run_config_rejects_non_positive(field):
    with pytest.raises(ValueError, match="must be a positive integer"):
        RunConfig(**{field: 0})


def test_fresh_run_refuses_a_directory_holding_a_run(tmp_path):
    data = toy_points()
    Trainer(build_model("gan", data.info), data, run_config(2), tmp_path, progress=False).fit()
    from igm.errors import ConfigError
    from igm.rundir import LOCK_FILE

    def files() -> dict[str, bytes]:  # the lock file records its last holder: it is the lock, not the run
        return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != LOCK_FILE}

    before = files()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(build_model("gan", data.info), data, run_config(2), tmp_path, progress=False).fit()
    assert before == files()




# --- learning-rate decay ----------------------------------------------------------------------


def test_lr_factor_known_values():
    from igm.trainer import lr_factor

    assert lr_factor("none", 7, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("linear", 0, 4) == 1.0 and lr_factor("linear", 3, 4) == 0.25
    with pytest.raises(ValueError):
        lr_factor("step", 1, 2)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_lr_decay_sets_every_players_rate_each_step(kind):
    from igm.trainer import lr_factor

    data = toy_points()
    model = build_model("gan", data.info, {"lr_g": "0.002", "lr_d": "0.001"})
    trainer = Trainer(model, data, run_config(8, lr_decay=kind), progress=False)
    seen = []
    original = model.loss

    def spy(player, batch):
        opt = trainer.optimizers[[p.name for p in trainer.players].index(player)]
        seen.append((player, trainer.step, opt.param_groups[0]["lr"]))
        return original(player, batch)

    model.loss = spy
    trainer.fit()
    base = {"critic": 0.001, "generator": 0.002}
    assert len(seen) == 16
    for player, step, lr in seen:
        assert lr == pytest.approx(base[player] * lr_factor(kind, step, 8))
    assert seen[-1][2] < 0.3 * base["generator"]  # the last step runs at a small fraction of the base rate


def test_resume_with_lr_decay_is_bit_exact(tmp_path, monkeypatch):
    """A decaying run killed after its step-5 checkpoint and resumed ends where an unbroken one does."""
    data = toy_points()
    full = build_model("gan", data.info)
    Trainer(full, data, run_config(12, lr_decay="cosine"), tmp_path / "full", progress=False).fit()

    broken = Trainer(build_model("gan", data.info), data, run_config(12, lr_decay="cosine", checkpoint_every=5),
                     tmp_path / "split", progress=False)
    step_once = broken.train_step

    def dies_at_seven():
        if broken.step == 7:
            raise KeyboardInterrupt
        return step_once()

    monkeypatch.setattr(broken, "train_step", dies_at_seven)
    with pytest.raises(Interrupted, match="interrupted at step 7; the last complete checkpoint \\(step 5\\)"):
        broken.fit()
    resumed = build_model("gan", data.info, seed=999)
    trainer = Trainer(resumed, data, run_config(12, lr_decay="cosine"), tmp_path / "split", progress=False)
    trainer.fit(resume=True)
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_adam_takes_adams_step_against_a_float64_reference():
    """Kingma & Ba's update (eps 1e-8, no weight decay), written out in float64, four steps."""
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(5, 3))
    theta = weight.detach().double().clone()
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    opt = Player("p", [weight], lr=1e-2, betas=(0.5, 0.9)).make_optimizer()
    for t in range(1, 5):
        g = torch.randn(5, 3)
        weight.grad = g.clone()
        opt.step()
        m = 0.5 * m + 0.5 * g.double()
        v = 0.9 * v + 0.1 * g.double() ** 2
        theta = theta - 1e-2 * (m / (1 - 0.5**t)) / ((v / (1 - 0.9**t)).sqrt() + 1e-8)
    torch.testing.assert_close(weight.detach().double(), theta, rtol=0, atol=1e-6)
