"""Data-parallel training on CPU with gloo and 2 processes (torch.distributed.run)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from igm import checkpoint
from igm.data.base import DataInfo, TensorSource
from igm.trainer import RunConfig, Trainer

IGM = Path(sys.executable).parent / "igm"
TIMEOUT = 180  # a hang fails the test instead of the suite

REGRESSION = '''
import torch
from torch import nn
from dataclasses import dataclass
from igm.data.base import DataInfo, TensorSource
from igm.models import Model, Player


@dataclass
class RegressionConfig:
    pass


class Regression(Model):
    """Deterministic loss: a linear map fitted to a fixed target (no sampling)."""

    name = "regression"
    Config = RegressionConfig

    def __init__(self, config, data):
        super().__init__(config, data)
        torch.manual_seed(0)
        self.net = nn.Linear(3, 1)

    def players(self):
        return [Player("only", list(self.net.parameters()), lr=0.1, betas=(0.9, 0.99))]

    def loss(self, player, batch):
        x, _ = batch
        return (self.net(x[:, :3]).squeeze(1) - x[:, 3]).pow(2).mean()


def source():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=gen)
    return TensorSource(DataInfo("regression", (4,), kind="vector"), x)
'''


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def test_two_ranks_take_the_step_of_one_process_on_the_concatenated_batch(tmp_path):
    (tmp_path / "regression_model.py").write_text(textwrap.dedent(REGRESSION))
    (tmp_path / "worker.py").write_text(
        textwrap.dedent(
            """
            import sys
            from safetensors.torch import save_file
            from igm import distributed
            from igm.trainer import RunConfig, Trainer
            from regression_model import Regression, RegressionConfig, source

            ctx = distributed.init_from_env("gloo")
            data = source()
            model = Regression(RegressionConfig(), data.info)
            run = RunConfig(steps=1, batch_size=8, seed=3, sample_every=0, checkpoint_every=0, device="cpu")
            Trainer(model, data, run, None, progress=False, dist=ctx).fit()
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{sys.argv[1]}/rank{ctx.rank}.safetensors")
            distributed.shutdown(ctx)
            distributed.exit_worker(0)
            """
        )
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "worker.py", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**env(), "PYTHONPATH": f"{tmp_path}{os.pathsep}{env()['PYTHONPATH']}"},
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")

    sys.path.insert(0, str(tmp_path))
    try:
        from regression_model import Regression, RegressionConfig, source
    finally:
        sys.path.remove(str(tmp_path))
    data = source()
    single = Regression(RegressionConfig(), data.info)
    before = {k: v.clone() for k, v in single.state_dict().items()}
    run = RunConfig(steps=1, batch_size=16, seed=3, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(single, data, run, None, progress=False).fit()
    for key, value in single.state_dict().items():
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
        torch.testing.assert_close(rank0[key], value, rtol=1e-6, atol=1e-7)
        assert not torch.equal(value, before[key])  # the step did move the parameters


def igm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(IGM), *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=TIMEOUT)


def test_fit_on_two_processes_writes_one_run_and_resumes_exactly(tmp_path):
    # no lr decay: a schedule over the run's length changes with --steps, and this resume lengthens the run
    common = ["fit", "gan", "--data", "grid25", "--nproc", "2", "--device", "cpu", "--batch-size", "64", "--lr-decay", "none", "-q"]
    full = igm(*common, "--steps", "20", "--out", "full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [
        ".igm.lock", "config.toml", "curves.png", "metrics.jsonl", "model.safetensors", "samples.png",
        "trainer.safetensors",
    ]
    assert full.stderr.count("training gan on grid25") == 1  # rank 0 alone talks
    assert "batch 64 per rank x 2 ranks = 128" in full.stderr
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # one log (log_every 100 > 20 steps: the final step), written once
    model = checkpoint.load(tmp_path / "full" / "model.safetensors")
    assert model.generator.sample(5).shape == (5, 2)
    toml = (tmp_path / "full" / "config.toml").read_text()
    assert "world_size = 2" in toml and "global_batch_size = 128" in toml and "batch_size = 64" in toml

    part = igm(*common, "--steps", "10", "--out", "split", cwd=tmp_path)
    assert part.returncode == 0, part.stderr
    resumed = igm("fit", "--resume", "--out", "split", "--steps", "20", "--nproc", "2", "--device", "cpu", "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = load_file(tmp_path / "split" / "trainer.safetensors")
    assert "rank1.rng.torch" in state and not torch.equal(state["rng.torch"], state["rank1.rng.torch"])

    other = igm("fit", "--resume", "--out", "split", "--steps", "30", cwd=tmp_path)
    assert other.returncode == 2 and "resume it with --nproc 2" in other.stderr


BOMB = '''
import os
import igm
from igm.adversarial import AdversarialModel


class RankBomb(AdversarialModel):
    """A GAN whose rank 1 fails at its fifth loss."""

    name = "rank-bomb"
    calls = 0

    def loss(self, player, batch):
        RankBomb.calls += 1
        if os.environ.get("RANK") == "1" and RankBomb.calls == 30:  # step 15: two losses per step
            raise RuntimeError("boom on rank one")
        return super().loss(player, batch)


@igm.hookimpl
def register_models(register):
    register("rank-bomb", RankBomb)
'''


def test_a_failing_rank_stops_every_rank_with_its_error_once(tmp_path, fake_dist):
    site = tmp_path / "site"
    fake_dist(site, "rank-bomb", "igm-rank-bomb", "0.1", "igm_rank_bomb", BOMB)
    run_env = {**env(), "PYTHONPATH": f"{site}{os.pathsep}{env()['PYTHONPATH']}"}
    (tmp_path / "run.toml").write_text("[run]\ncheckpoint_every = 5\nsample_every = 0\n")
    args = ["fit", "rank-bomb", "--data", "grid25", "--nproc", "2", "--device", "cpu", "--steps", "200", "--batch-size", "32", "-q",
            "--config", "run.toml", "--out", "R"]
    proc = subprocess.run([str(IGM), *args], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: rank 1: RuntimeError: boom on rank one"], proc.stderr
    assert "Traceback" not in proc.stderr.split("Error: rank 1")[0]  # the other rank stayed quiet
    meta = checkpoint.read_metadata(tmp_path / "R" / checkpoint.MODEL_FILE)
    assert meta["igm.step"] == "10"  # the last good checkpoint, intact
    assert not list((tmp_path / "R").glob(".*.tmp"))

def test_single_process_state_has_no_rank_prefixes(tmp_path):
    data = TensorSource(DataInfo("x", (2,), kind="points"), torch.randn(64, 2))
    from igm.testing import build_model

    model = build_model("gan", data.info)
    trainer = Trainer(model, data, RunConfig(steps=1, batch_size=8, sample_every=0, device="cpu"), tmp_path, progress=False)
    trainer.fit()
    tensors, meta = checkpoint.read_file(tmp_path / checkpoint.TRAINER_FILE)
    assert meta["igm.world_size"] == "1" and not any(k.startswith("rank") for k in tensors)


