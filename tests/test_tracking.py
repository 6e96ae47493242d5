"""Watching a run: scores during training, the best checkpoint, curves as pictures, TensorBoard, progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from igm import checkpoint
from igm.cli import main
from igm.data import open_data
from igm.progress import ProgressBar
from igm.rundir import read_metrics
from igm.testing import build_model
from igm.trainer import RunConfig, Trainer


def cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def run_config(steps: int, **kw) -> RunConfig:
    base = dict(steps=steps, batch_size=64, seed=1, log_every=2, sample_every=0, checkpoint_every=3, device="cpu")
    return RunConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def grid():
    return open_data("grid25")


def train(out: Path, source, steps: int, resume: bool = False, seed: int = 0, **kw) -> Trainer:
    t = Trainer(build_model("gan", source.info, seed=seed), source, run_config(steps, **kw), out, progress=False)
    t.fit(resume=resume)
    return t


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read_file(path)[0]


SCORED = dict(eval_every=4, eval_metrics=("modes",), eval_n=500)


def test_scores_during_training_leave_the_training_itself_untouched(tmp_path, grid):
    train(tmp_path / "plain", grid, 12)
    t = train(tmp_path / "scored", grid, 12, **SCORED)
    a, b = tensors(tmp_path / "plain" / "trainer.safetensors"), tensors(tmp_path / "scored" / "trainer.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # RNG streams, weights, optimizers
    scored = [e for e in read_metrics(tmp_path / "scored" / "metrics.jsonl") if "eval" in e]
    assert [e["step"] for e in scored] == [4, 8, 12]
    assert {"modes.modes", "modes.high_quality", "modes.modes_pacgan"} <= set(scored[0]["eval"])
    assert t.scores == scored[-1]["eval"]


def test_a_resumed_scored_run_is_exact_and_logs_the_same_scores(tmp_path, grid):
    train(tmp_path / "full", grid, 12, **SCORED)
    train(tmp_path / "split", grid, 6, **SCORED)
    train(tmp_path / "split", grid, 12, resume=True, seed=99, **SCORED)
    a, b = tensors(tmp_path / "full" / "trainer.safetensors"), tensors(tmp_path / "split" / "trainer.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    def logged(run):
        return [{k: v for k, v in e.items() if k not in ("elapsed_s", "steps_per_s")}
                for e in read_metrics(tmp_path / run / "metrics.jsonl")]

    full, split = logged("full"), logged("split")
    assert [e for e in split if e["step"] != 6 or "eval" not in e] == full  # the split run also scored its end, 6


def test_keep_best_keeps_the_model_of_the_best_score_and_resume_remembers_it(tmp_path, grid):
    t = train(tmp_path / "run", grid, 12, keep_best="modes.high_quality", **SCORED)
    scored = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval" in e]
    best = max(scored, key=lambda e: (e["eval"]["modes.high_quality"], -e["step"]))  # the first of the best
    model_meta = checkpoint.read_file(tmp_path / "run" / "best.safetensors", tensors=False)[1]
    assert int(model_meta["igm.step"]) == best["step"] == t.evaluator.best.step
    record = json.loads(checkpoint.read_file(tmp_path / "run" / "trainer.safetensors", tensors=False)[1]["igm.best"])
    assert record == {"key": "modes.high_quality", "lower": False, "value": best["eval"]["modes.high_quality"],
                      "step": best["step"]}
    resumed = Trainer(build_model("gan", grid.info), grid, run_config(12, keep_best="modes.high_quality", **SCORED),
                      tmp_path / "run", progress=False)
    resumed.begin(resume=True)
    assert (resumed.evaluator.best.value, resumed.evaluator.best.step) == (record["value"], record["step"])
    from igm import load

    assert load(tmp_path / "run" / "best.safetensors").generator.sample(3).shape == (3, 2)


def test_which_way_is_better():
    from igm.tracking import Best

    assert Best.parse("classifier-fid.fid").lower and Best.parse("modes.kl").lower
    assert not Best.parse("modes.modes").lower and Best.parse("modes.modes:min").lower
    assert not Best.parse("classifier-fid.fid:max").lower


def test_fit_with_scores_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "fit", "gan", "--data", "grid25", "--steps", "6", "--batch-size", "32", "--out", "run",
                       "--eval-every", "3", "--metric", "modes", "--metric", "prdc", "--eval-n", "300",
                       "--keep-best", "prdc.recall", "-q")
    assert code == 0, err
    scored = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval" in e]
    assert [e["step"] for e in scored] == [3, 6] and "prdc.coverage" in scored[0]["eval"]
    assert "done: step 6 in " in err and "scores: modes.modes" in err and "best.safetensors (step " in err
    assert "curves.png" in err and (tmp_path / "run" / "curves.png").is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(("--metric", "mode"), "did you mean 'modes'"),
     (("--metric", "nll"), "does not apply"),
     (("--keep-best", "modes"), "METRIC.KEY")],
)
def test_bad_score_settings_are_one_line_before_anything_runs(extra, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "fit", "gan", "--data", "grid25", "--steps", "2", "--out", "run", *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "run").exists()


def test_tensorboard_events_hold_losses_scores_and_pictures(tmp_path, grid):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tmp_path / "run", grid, 8, tensorboard=True, sample_every=4, **SCORED)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/critic", "train/generator", "eval/modes.modes"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/generator")] == [2, 4, 6, 8]
    logged = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if "generator" in e]
    assert [e.value for e in events.Scalars("train/generator")] == pytest.approx([e["generator"] for e in logged])
    assert [e.step for e in events.Scalars("eval/modes.modes")] == [4, 8]
    assert [e.step for e in events.Images("samples")] == [4, 8, 8]  # frames at 4 and 8, then the final picture


def test_tensorboard_missing_is_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "fit", "gan", "--data", "grid25", "--steps", "2", "--out", "run", "--tensorboard")
    assert code == 2 and "pip install 'igm-toolkit[tensorboard]'" in err


def test_plot_draws_every_quantity_of_several_runs(tmp_path, grid, capsys, monkeypatch):
    from igm.plots import DPI, PANEL_INCHES, panel_layout, series

    train(tmp_path / "a", grid, 8, **SCORED)
    train(tmp_path / "b", grid, 8, seed=3)
    quantities = set(series(tmp_path / "a")) | set(series(tmp_path / "b"))
    assert {"critic", "generator", "eval: modes.modes"} <= quantities
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "plot", "a", "b", "--out", "both.png")
    assert code == 0, err
    rows, cols = panel_layout(len(quantities))
    with Image.open(tmp_path / "both.png") as img:
        assert img.format == "PNG" and img.size == (round(PANEL_INCHES[0] * cols * DPI), round(PANEL_INCHES[1] * rows * DPI))
    code, _, err = cli(capsys, "plot", "nowhere", "--out", "x.png")
    assert code == 2 and "nowhere holds no metrics.jsonl" in err


def test_a_non_terminal_progress_line_comes_every_hundredth_and_every_ten_seconds(capsys, monkeypatch):
    import igm.progress

    bar = ProgressBar(1000, description="fit")
    for done in range(1, 1001):
        bar.update(done, {"loss": 1.0})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 101 and lines[-1].startswith("fit: 1000/1000 (100%)")  # the first update, then every 1%
    now = [100.0]
    monkeypatch.setattr(igm.progress.time, "perf_counter", lambda: now[0])
    slow = ProgressBar(10**6, description="slow")  # 1% is 10,000 steps: the clock speaks first
    for done, t in ((1, 100.0), (2, 105.0), (3, 111.0), (4, 112.0), (5, 130.0)):
        now[0] = t
        slow.update(done)
    assert [line.split()[1] for line in capsys.readouterr().err.splitlines()] == ["1/1000000", "3/1000000", "5/1000000"]
