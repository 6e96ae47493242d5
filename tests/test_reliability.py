"""Runs that survive every crash: kills at any moment, a full disk, two writers, non-finite models.

A kill is simulated where it matters: inside the checkpoint window by a patched writer that
raises an exception nothing catches (as SIGKILL stops a process between two instructions), and
by leaving behind what a killed writer leaves (a temporary file, a cut metrics line). The lock
and the launcher tests use real processes.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from igm import checkpoint
from igm.errors import ConfigError, RunWriteError, TrainingError
from igm.rundir import LOCK_FILE, RunLock, read_metrics
from igm.testing import build_model, toy_points
from igm.trainer import METRICS_FILE, RunConfig, Trainer

IGM = Path(sys.executable).parent / "igm"


class Killed(BaseException):
    """What SIGKILL does to a process: it stops, and nothing in it gets to clean up."""


def run_config(steps: int, **kw) -> RunConfig:
    base = dict(steps=steps, batch_size=32, seed=5, log_every=1, sample_every=0, checkpoint_every=3, device="cpu")
    return RunConfig(**{**base, **kw})


def trainer(out: Path, steps: int = 10, seed: int = 0, **kw) -> Trainer:
    data = toy_points()
    return Trainer(build_model("gan", data.info, seed=seed), data, run_config(steps, **kw), out, progress=False)


def finish(out: Path, steps: int = 10) -> Trainer:
    """Resume ``out`` to ``steps`` with a differently initialised model: everything must come from disk."""
    t = trainer(out, steps, seed=999)
    t.fit(resume=True)
    return t


def assert_same_run(a: Path, b: Path) -> None:
    """Same model and trainer tensors, bit for bit, and the same logged losses."""
    for name in (checkpoint.MODEL_FILE, checkpoint.TRAINER_FILE):
        ta, tb = checkpoint.read_file(a / name)[0], checkpoint.read_file(b / name)[0]
        assert ta.keys() == tb.keys(), name
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"{name}: {key}"

    def losses(path: Path) -> list[dict]:
        return [{k: v for k, v in e.items() if k not in ("steps_per_s", "elapsed_s")} for e in read_metrics(path / METRICS_FILE)]

    assert losses(a) == losses(b)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unbroken") / "run"
    trainer(out).fit()
    return out


def kill_when(monkeypatch, predicate) -> None:
    """Make checkpoint.save_tensors die (Killed) on the first call for which ``predicate(path)`` holds."""
    real = checkpoint.save_tensors

    def save_tensors(path, tensors, metadata):
        if predicate(Path(path), metadata):
            raise Killed
        return real(path, tensors, metadata)

    monkeypatch.setattr(checkpoint, "save_tensors", save_tensors)


# ---- 1. a kill never makes a run impossible to resume ---------------------------------------------


@pytest.mark.parametrize("step", [3, 6])
def test_a_kill_between_the_two_checkpoint_files_resumes_exactly(tmp_path, monkeypatch, unbroken, step):
    """Killed after trainer.safetensors of step k was written, before model.safetensors was."""
    kill_when(monkeypatch, lambda path, meta: path.name == checkpoint.MODEL_FILE and meta["igm.step"] == str(step))
    with pytest.raises(Killed):
        trainer(tmp_path / "run").fit()
    assert checkpoint.read_file(tmp_path / "run" / checkpoint.TRAINER_FILE)[1]["igm.step"] == str(step)
    assert checkpoint.read_file(tmp_path / "run" / checkpoint.MODEL_FILE)[1]["igm.step"] != str(step)
    monkeypatch.undo()
    t = finish(tmp_path / "run")
    assert t.step == 10
    assert_same_run(unbroken, tmp_path / "run")


def test_a_kill_inside_a_write_leaves_the_old_file_and_its_leftovers_are_removed(tmp_path, monkeypatch, unbroken):
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == checkpoint.TRAINER_FILE and "igm.step" in checkpoint.read_file(src, tensors=False)[1] \
                and checkpoint.read_file(src, tensors=False)[1]["igm.step"] == "6":
            raise Killed  # the new file is complete on disk under its temporary name, not yet renamed
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        trainer(tmp_path / "run").fit()
    monkeypatch.undo()
    (tmp_path / "run" / f".{checkpoint.TRAINER_FILE}.99999.tmp").write_bytes(b"half a file")  # a SIGKILLed writer's
    (tmp_path / "run" / METRICS_FILE).open("a").write('{"step": 7, "generator": 0.')  # a line cut short
    finish(tmp_path / "run")
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob(".*.tmp"))
    assert_same_run(unbroken, tmp_path / "run")


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, monkeypatch, unbroken):
    kill_when(monkeypatch, lambda path, meta: True)  # dies writing the step-0 checkpoint
    with pytest.raises(Killed):
        trainer(tmp_path / "run").fit()
    assert not (tmp_path / "run" / checkpoint.TRAINER_FILE).exists()
    monkeypatch.undo()
    trainer(tmp_path / "run", seed=0).fit(resume=True)  # nothing on disk: the run's seed rebuilds its start, as igm fit does
    assert_same_run(unbroken, tmp_path / "run")


def test_a_run_without_a_checkpoint_can_also_be_started_afresh(tmp_path, monkeypatch, unbroken):
    kill_when(monkeypatch, lambda path, meta: True)
    with pytest.raises(Killed):
        trainer(tmp_path / "run").fit()
    monkeypatch.undo()
    trainer(tmp_path / "run").fit()  # no --resume, nothing deleted by hand
    assert_same_run(unbroken, tmp_path / "run")


def test_a_full_disk_stops_with_one_error_and_the_run_resumes_once_space_is_freed(tmp_path, monkeypatch, unbroken):
    real = checkpoint.write_atomic

    def write_atomic(path, data):
        if Path(path).name == checkpoint.TRAINER_FILE and b'"igm.step":"6"' in data[:4096]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "write_atomic", write_atomic)
    with pytest.raises(RunWriteError) as err:
        trainer(tmp_path / "run").fit()
    message = str(err.value)
    assert "No space left on device" in message and "step 3" in message and "--resume" in message
    assert "\n" not in message
    (tmp_path / "run" / METRICS_FILE).open("a").write('{"step": 7, "gene')  # the log's last write was cut too
    monkeypatch.undo()
    finish(tmp_path / "run")
    assert_same_run(unbroken, tmp_path / "run")


def test_the_metrics_log_survives_lines_that_are_not_entries(tmp_path, unbroken):
    out = tmp_path / "run"
    trainer(out, steps=10).fit()
    with open(out / METRICS_FILE, "a") as fh:
        fh.write('[1, 2]\n"text"\n{"no step": 1}\n{"step": 11, "gen')
    assert [e["step"] for e in read_metrics(out / METRICS_FILE)] == list(range(1, 11))


def test_a_directory_in_place_of_the_metrics_log_is_one_clear_error(tmp_path):
    out = tmp_path / "run"
    trainer(out, steps=3).fit()
    (out / METRICS_FILE).unlink()
    (out / METRICS_FILE).mkdir()
    with pytest.raises(ConfigError, match="metrics.jsonl is not a file"):
        finish(out, steps=6)


# ---- 3. nothing non-finite is ever checkpointed ----------------------------------------------------


def test_non_finite_parameters_are_never_checkpointed(tmp_path):
    data = toy_points()
    model = build_model("gan", data.info)
    t = Trainer(model, data, run_config(20, checkpoint_every=1), tmp_path / "run", progress=False)
    real = t.train_step

    def breaks_at_four():
        out = real()
        if t.step == 4:  # an update that leaves a finite loss but infinite weights (as lr_g=1e38 does)
            with torch.no_grad():
                next(model.generator.parameters()).fill_(float("inf"))
        return out

    t.train_step = breaks_at_four
    with pytest.raises(TrainingError, match=r"non-finite by step 4 .*the last good checkpoint \(step 3\)"):
        t.fit()
    for name in (checkpoint.MODEL_FILE, checkpoint.TRAINER_FILE):
        tensors, meta = checkpoint.read_file(tmp_path / "run" / name)
        assert meta["igm.step"] == "3"
        assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


# ---- 2. one writer per run directory -----------------------------------------------------------------


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    script = (
        "import sys, time; from pathlib import Path; from igm.rundir import RunLock\n"
        "lock = RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"in use by another igm run \(pid {holder.pid} "):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path / "run"):  # the kernel dropped a killed holder's lock
        pass


def test_a_second_fit_into_a_running_directory_is_refused_and_writes_nothing(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [str(IGM), "fit", "gan", "--data", "grid25", "--steps", "200000", "--out", "run", "-q"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=hear_ctrl_c,
    )
    try:
        wait_for_checkpoint(first, tmp_path / "run")
        config = (tmp_path / "run" / "config.toml").read_bytes()
        for args in (["fit", "gan", "--data", "grid25", "--seed", "7", "--out", "run"],
                     ["fit", "--resume", "--out", "run", "--steps", "300000"]):
            second = subprocess.run([str(IGM), *args], cwd=tmp_path, env=env, capture_output=True, text=True)
            lines = second.stderr.strip().splitlines()
            assert second.returncode == 2 and len(lines) == 1, second.stderr
            assert f"in use by another igm run (pid {first.pid} " in lines[0]
            assert (tmp_path / "run" / "config.toml").read_bytes() == config
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130
    assert "interrupted at step" in err and "igm fit --resume --out run" in err


def test_workers_end_when_their_launcher_is_killed(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        [str(IGM), "fit", "gan", "--data", "grid25", "--nproc", "2", "--steps", "200000", "--out", "run", "-q"],
        cwd=tmp_path, env=env, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_checkpoint(launcher, tmp_path / "run")
        workers = _children(launcher.pid)
        assert len(workers) == 2
        launcher.kill()
        launcher.wait()
        deadline = time.time() + 20
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL) if _alive(launcher.pid) else None


def hear_ctrl_c() -> None:
    """In a child before exec: SIGINT at its default, as at a terminal. A suite started in the
    background of a non-interactive shell (``pytest &``, ``nohup … &``) ignores SIGINT, children
    inherit that, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 90) -> None:
    """Wait until the run in ``proc`` has written its step-0 checkpoint (it holds its lock by then)."""
    deadline = time.time() + timeout
    while not (run_dir / checkpoint.TRAINER_FILE).exists():
        assert time.time() < deadline and proc.poll() is None, "the run did not start"
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False
