"""Every error a user can cause ends in exit 2 and one ``Error:`` line that names the problem.

The command line is run in process through ``igm.cli.main`` (the console script's entry point,
which also turns usage errors into one line), so each case costs milliseconds. Cases cover the
classes at the boundary: flags, ``--set`` values, TOML types, paths, checkpoint metadata,
damaged trainer state, memory bombs from a flag or a file, and metadata that tries to spoof
the terminal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from igm.cli import main

TINY = ("fit", "gan", "--data", "grid25", "--steps", "3", "--batch-size", "32", "-q")


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def one_line(capsys, *args, status: int = 2) -> str:
    code, out, err = run(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status and len(lines) == 1 and lines[0].startswith("Error:"), (code, out, err)
    assert "Traceback" not in err
    return lines[0]


def metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A finished 3-step gan run on grid25 (its directory)."""
    root = tmp_path_factory.mktemp("tiny")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with pytest.raises(SystemExit) as exit_:
            main([*TINY, "--out", "run"])
        assert exit_.value.code == 0
    finally:
        os.chdir(cwd)
    return root / "run"


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


FLAGS = {
    "steps-not-a-number": ((*TINY, "--steps", "abc", "--out", "R"), ["--steps", "integer"]),
    "seed-float-text": ((*TINY, "--seed", "1e23", "--out", "R"), ["--seed"]),
    "seed-too-large": ((*TINY, "--seed", str(10**23), "--out", "R"), ["seed", "2**63"]),
    "device-mps": ((*TINY, "--device", "mps", "--out", "R"), ["mps", "cpu"]),
    "device-meta": ((*TINY, "--device", "meta", "--out", "R"), ["meta", "cpu"]),
    "nccl-on-cpu": ((*TINY, "--nproc", "2", "--backend", "nccl", "--out", "R"), ["nccl", "gloo"]),
    "unknown-flag": ((*TINY, "--stpes", "3"), ["--stpes"]),
}
SETS = {
    "lr-negative": ("lr_g=-1", ["lr_g", ">= 0"]),
    "beta1-above-1": ("beta1=2", ["beta", "optimizer"]),
    "lr-beyond-float32": ("lr_g=1e39", ["lr_g", "float32"]),
    "bogus-activation": ("g_activation=bogus", ["bogus", "relu"]),
    "negative-hidden": ("g_hidden=-5", ["g_hidden", "positive"]),
    "zero-hidden": ("g_hidden=0", ["g_hidden", "positive"]),
    "zero-maxout-pieces": ("maxout_pieces=0", ["maxout_pieces"]),
    "negative-width": ("g_width=-1", ["g_width", ">= 0"]),
    "huge-hidden": ("g_hidden=1000000000", ["parameters", "IGM_MEMORY_LIMIT"]),
    "huge-latent": ("latent_dim=1000000000", ["parameters", "IGM_MEMORY_LIMIT"]),
    # settings nothing reads are refused, not silently ignored
    "width-on-an-mlp": ("g_width=0.5", ["g_width=0.5 has no effect with network=mlp"]),
    "gp-weight-with-jsd": ("gp_weight=5", ["gp_weight=5.0 has no effect with divergence=jsd"]),
    "maxout-pieces-without-maxout": ("maxout_pieces=3", ["maxout_pieces=3 has no effect"]),
}


@pytest.mark.parametrize("case", list(FLAGS))
def test_bad_flags(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, needles = FLAGS[case]
    line = one_line(capsys, *args)
    assert all(n in line for n in needles), line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case", list(SETS))
def test_bad_set_values(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pair, needles = SETS[case]
    line = one_line(capsys, *TINY, "--out", "R", "--set", pair)
    assert all(n in line for n in needles), line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("family", "pairs"),
    [("rbm", ["hidden=1000000000"]), ("rbm", ["persistent=true", "chains=1000000000"])],
)
def test_memory_bombs_of_other_families(family, pairs, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", family, "--data", "grid25", "--steps", "2", "--out", "R"]
    for pair in pairs:
        args += ["--set", pair]
    line = one_line(capsys, *args)
    assert "IGM_MEMORY_LIMIT" in line


TOML = {
    "model-not-a-string": ('[run]\nmodel = 5\ndata = "grid25"\n', ["model", "string"]),
    "data-not-a-string": ('[run]\nmodel = "gan"\ndata = 5\n', ["data", "string"]),
    "data-a-list": ('[run]\nmodel = "gan"\ndata = ["grid25"]\n', ["data", "string"]),
    "run-not-a-table": ('run = 5\n', ["'run'", "table"]),
    "top-level-model": ('model = "gan"\n', ["'model'", "[model]"]),
    "huge-preview": ('[run]\nmodel = "gan"\ndata = "grid25"\nnum_samples = 1000000000\n', ["num_samples", "100000"]),
    "latent-1e30": ('[run]\nmodel = "gan"\ndata = "grid25"\n[model]\nlatent_dim = 1e30\n', ["latent_dim"]),
}


@pytest.mark.parametrize("case", list(TOML))
def test_toml_of_the_wrong_types(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, needles = TOML[case]
    (tmp_path / "c.toml").write_text(text)
    line = one_line(capsys, "fit", "--config", "c.toml", "--out", "R")
    assert all(n in line for n in needles), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_out_paths_that_cannot_be_run_directories(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_line(capsys, *TINY, "--out", "file")
    assert "lies under file" in one_line(capsys, *TINY, "--out", "file/run")
    assert "UTF-8" in one_line(capsys, *TINY, "--out", "run-\udcff")
    assert (tmp_path / "file").read_text() == "x"


def test_a_directory_that_cannot_be_written_is_one_line(capsys, tmp_path, monkeypatch, tiny):
    """Read-only directories (root ignores permission bits, so the refusal is simulated where it happens)."""
    import igm.rundir

    monkeypatch.chdir(tmp_path)
    real_open = os.open

    def refuse(path, *args, **kw):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(igm.rundir.os, "open", refuse)
    for args in ((*TINY, "--out", "R"), ("fit", "--resume", "--out", copy_run(tiny, tmp_path / "old"), "--steps", "5")):
        line = one_line(capsys, *args)
        assert "Permission denied" in line, line


def test_sample_into_a_directory_or_a_read_only_place(capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics.png").mkdir()
    line = one_line(capsys, "sample", tiny / "model.safetensors", "-n", "4", "--out", "pics.png")
    assert "pics.png" in line
    line = one_line(capsys, "sample", tiny / "model.safetensors", "-n", "1000000000000", "--out", "s.npy")
    assert "samples" in line and "-n" in line


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("igm.config", "[1, 2]"),
        ("igm.config", '"gan"'),
        ("igm.config", "7"),
        ("igm.config", "[" * 100_000 + "]" * 100_000),
        ("igm.data", '{"name": "grid25", "event_shape": [2], "extra": {"means": "nope"}}'),
        ("igm.data", '{"name": "grid25", "event_shape": [2], "extra": {"means": [[1, 2], [3]]}}'),
        ("igm.data", '{"name": "grid25", "event_shape": [2], "extra": []}'),
        ("igm.data", '{"name": "grid25", "event_shape": [-2]}'),
        ("igm.step", "-4"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "info"])
def test_damaged_checkpoint_metadata(key, value, command, capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    save_file(load_file(tiny / "model.safetensors"), "bad.safetensors", metadata={**metadata(tiny / "model.safetensors"), key: value})
    args = ("sample", "bad.safetensors", "-n", "4", "--out", "s.npy") if command == "sample" else ("info", "bad.safetensors")
    assert "bad.safetensors" in one_line(capsys, *args)


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"g_activation": "bogus"}, "bogus"), ({"g_hidden": [-3, 100]}, "g_hidden"), ({"latent_dim": 1e30}, "latent_dim"),
     ({"g_hidden": [1000000000, 100]}, "IGM_MEMORY_LIMIT")],
)
def test_checkpoint_configs_out_of_range(change, needle, capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    meta = metadata(tiny / "model.safetensors")
    config = {**json.loads(meta["igm.config"]), **change}
    save_file(load_file(tiny / "model.safetensors"), "bad.safetensors", metadata={**meta, "igm.config": json.dumps(config)})
    line = one_line(capsys, "sample", "bad.safetensors", "-n", "4", "--out", "s.npy")
    assert needle in line and "bad.safetensors" in line


def _damage_trainer(run: Path, edit) -> None:
    path = run / "trainer.safetensors"
    tensors, meta = load_file(path), metadata(path)
    edit(tensors, meta)
    save_file(tensors, str(path), metadata=meta)


TRAINER_DAMAGE = {
    "missing-optimizer-state": lambda t, m: m.pop("igm.optim.generator"),
    "optimizer-state-not-json": lambda t, m: m.update({"igm.optim.generator": "{oops"}),
    "step-not-a-number": lambda t, m: m.update({"igm.step": "abc"}),
    "world-size-not-a-number": lambda t, m: m.update({"igm.world_size": "abc"}),
    "missing-data-rng": lambda t, m: t.pop("data.rng"),
    "wrong-rng-size": lambda t, m: t.update({"rng.torch": torch.zeros(10, dtype=torch.uint8)}),
    "data-order-out-of-range": lambda t, m: t.update({"data.order": t["data.order"] + 10**9}),
    "optimizer-tensor-misshapen": lambda t, m: t.update({k: torch.zeros(3, 3) for k in t if k.startswith("optim.generator.0.exp_avg")}),
    "model-config-not-json": lambda t, m: m.update({"igm.model_checkpoint": "{oops"}),
}


@pytest.mark.parametrize("case", list(TRAINER_DAMAGE))
def test_a_damaged_trainer_state_is_one_line_on_resume(case, capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    run_dir = copy_run(tiny, tmp_path / "run")
    _damage_trainer(run_dir, TRAINER_DAMAGE[case])
    line = one_line(capsys, "fit", "--resume", "--out", "run", "--steps", "6")
    assert "trainer.safetensors" in line


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [('data = "grid25"', 'data = "ring8"', "data 'grid25' -> 'ring8'"),
     ('divergence = "jsd"', 'divergence = "wasserstein"', "divergence 'jsd' -> 'wasserstein'"),
     ("batch_size = 32", "batch_size = 64", "batch_size 32 -> 64")],
)
def test_resume_refuses_an_edited_config(old, new, needle, capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    run_dir = copy_run(tiny, tmp_path / "run")
    text = (run_dir / "config.toml").read_text()
    assert old in text
    (run_dir / "config.toml").write_text(text.replace(old, new))
    before = (run_dir / "trainer.safetensors").read_bytes()
    line = one_line(capsys, "fit", "--resume", "--out", "run", "--steps", "6")
    assert needle in line and "config.toml" in line
    assert (run_dir / "trainer.safetensors").read_bytes() == before


def test_resume_names_a_setting_that_the_run_predates(capsys, tmp_path, monkeypatch, tiny):
    """A file without a setting that is now set (wasserstein's gp_one_sided on points, say): one line naming it."""
    monkeypatch.chdir(tmp_path)
    run_dir = copy_run(tiny, tmp_path / "run")

    def older(tensors, meta):  # what a checkpoint written before the setting ``ema`` existed would hold
        model_meta = json.loads(meta["igm.model_checkpoint"])
        config = json.loads(model_meta["igm.config"])
        del config["ema"]
        meta["igm.model_checkpoint"] = json.dumps({**model_meta, "igm.config": json.dumps(config)})

    _damage_trainer(run_dir, older)
    before = (run_dir / "trainer.safetensors").read_bytes()
    line = one_line(capsys, "fit", "--resume", "--out", "run", "--steps", "6")
    assert "older igm that did not have the setting ema = 0.0" in line and "start a new run" in line
    assert (run_dir / "trainer.safetensors").read_bytes() == before


def test_info_escapes_what_a_file_says(capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    meta = {**metadata(tiny / "model.safetensors"), "igm.plugin_version": "1\nError: spoofed\x1b[2J"}
    save_file(load_file(tiny / "model.safetensors"), "odd.safetensors", metadata=meta)
    code, out, err = run(capsys, "info", "odd.safetensors")
    assert code == 0 and err == ""
    assert not any(line.startswith("Error") for line in out.splitlines())
    assert "\x1b" not in out and "1\\nError: spoofed\\x1b[2J" in out


def test_a_model_name_with_a_trailing_newline_is_refused(capsys, tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    meta = {**metadata(tiny / "model.safetensors"), "igm.model": "gan\n"}
    save_file(load_file(tiny / "model.safetensors"), "nl.safetensors", metadata=meta)
    assert "not a registered model name" in one_line(capsys, "sample", "nl.safetensors", "-n", "2", "--out", "s.npy")


def test_mlp_settings_on_a_dcgan_are_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, "fit", "gan", "--data", "binarized-digits", "--steps", "2", "--out", "R", "--set", "g_hidden=64")
    assert "g_hidden=(64,) has no effect with network=dcgan" in line
