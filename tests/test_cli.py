"""The ``igm`` command line: real runs of the installed script, every kind of bad input, resume.

Most cases go through typer's CliRunner in process (fast); the end-to-end run, ``--help`` and
the repeat-from-config check use the installed ``igm`` script in subprocesses. Every training
run is tiny (at most 20 steps on grid25).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from igm.cli import app

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

IGM = Path(sys.executable).parent / "igm"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def ok(result) -> None:
    assert result.exit_code == 0, result.output
    assert result.exception is None, repr(result.exception)


def one_error_line(result) -> str:
    """Exit status 2, exactly one line of output, starting 'Error:', and no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert result.stdout.strip() == ""  # the line went to stderr
    return lines[0]


def tree_hashes(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` (hidden temporary files included)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def fit_tiny(out: Path | str, *extra: str, steps: int = 3):
    return invoke("fit", "gan", "--data", "grid25", "--steps", steps, "--batch-size", 32, "--out", out, "-q", *extra)


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert ta[key].dtype == tb[key].dtype and torch.equal(ta[key], tb[key]), f"{key} differs"


# ---- --help without torch -----------------------------------------------------------------


def test_help_answers_without_importing_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from igm.cli import app\n"
        "for args in (['--help'], ['fit', '--help'], ['sample', '--help'], ['eval', '--help'],"
        " ['info', '--help'], ['list', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0 and 'Usage' in result.output, (args, result.output)\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_installed_script_help_imports_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(IGM), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("list", "fit", "sample", "eval", "info"):
        assert command in proc.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert imported, "no -X importtime output"
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]


# ---- a real run of the installed script -------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``igm fit`` as a user runs it, then info/sample/eval/repeat on its checkpoint (concurrently)."""
    cwd = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if k not in ("IGM_PLUGINS", "IGM_DISABLE_PLUGINS")}
    env["OMP_NUM_THREADS"] = "1"  # the same thread count for both fits, whatever else runs

    def igm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(IGM), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)

    fit = igm("fit", "gan", "--data", "grid25", "--steps", "20", "--out", "RUN", "-q")
    assert fit.returncode == 0, fit.stderr
    ckpt = "RUN/model.safetensors"
    commands = {
        "info": ("info", ckpt),
        "png": ("sample", ckpt, "-n", "10", "--out", "s.png"),
        "npy": ("sample", ckpt, "-n", "10", "--out", "s.npy"),
        "safetensors": ("sample", ckpt, "-n", "10", "--out", "s.safetensors"),
        "eval": ("eval", ckpt, "--metric", "modes", "-n", "1000", "--json"),
        "repeat": ("fit", "--config", "RUN/config.toml", "--out", "RUN2", "-q"),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(commands, pool.map(lambda args: igm(*args), commands.values())))
    done["fit"] = fit
    return cwd, done


def test_fit_writes_the_run_directory(installed):
    cwd, done = installed
    run = cwd / "RUN"
    names = {p.name for p in run.iterdir()}
    assert {"config.toml", "metrics.jsonl", "model.safetensors", "trainer.safetensors", "samples.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]  # no temporary files left
    assert not [n for n in names if n.startswith(".") and n != ".igm.lock"]  # the lock file stays: unlinking it would race
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["run"]["model"] == "gan" and config["run"]["data"] == "grid25" and config["run"]["steps"] == 20
    assert config["model"]["divergence"] == "jsd"
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logs and logs[-1]["step"] == 20
    assert all(np.isfinite(logs[-1][player]) for player in ("critic", "generator"))
    with Image.open(run / "samples.png") as img:
        assert img.format == "PNG"
    assert done["fit"].stdout == ""  # -q: nothing but the summary lines on stderr
    assert "Traceback" not in done["fit"].stderr


def test_info_describes_the_checkpoint(installed):
    _, done = installed
    proc = done["info"]
    assert proc.returncode == 0, proc.stderr
    fields = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line and not line.startswith(" ")}
    assert fields["model"] == ["gan"]
    assert fields["step"] == ["20"]
    assert fields["plugin"][0] == "igm-gan"
    assert "divergence" in proc.stdout and "generator" in proc.stdout


def test_sample_writes_png_npy_and_safetensors(installed):
    cwd, done = installed
    for key in ("png", "npy", "safetensors"):
        assert done[key].returncode == 0, done[key].stderr
    with Image.open(cwd / "s.png") as img:
        img.load()
        assert img.format == "PNG" and img.size[0] > 10 and img.size[1] > 10
    x = np.load(cwd / "s.npy", allow_pickle=False)
    assert x.shape == (10, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    tensors = load_file(cwd / "s.safetensors")
    assert list(tensors) == ["samples"]
    # the same seed draws the same samples whatever the file format
    np.testing.assert_array_equal(tensors["samples"].numpy(), x)


def test_eval_prints_json_mode_scores(installed):
    _, done = installed
    proc = done["eval"]
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert list(scores) == ["modes"]
    assert {"modes", "high_quality", "kl"} <= set(scores["modes"])
    assert 0 <= scores["modes"]["modes"] <= 25 and 0.0 <= scores["modes"]["high_quality"] <= 1.0


def test_fit_from_the_saved_config_repeats_the_run_bit_for_bit(installed):
    cwd, done = installed
    assert done["repeat"].returncode == 0, done["repeat"].stderr
    first, again = cwd / "RUN", cwd / "RUN2"
    assert_same_tensors(first / "model.safetensors", again / "model.safetensors")
    assert_same_tensors(first / "trainer.safetensors", again / "trainer.safetensors")
    assert tomllib.loads((first / "config.toml").read_text()) == tomllib.loads((again / "config.toml").read_text())


# ---- bad input: exit 2, one line, no traceback, nothing written ----------------------------------


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """A real tiny checkpoint and files that are wrong in one way each; {name: absolute path}."""
    root = tmp_path_factory.mktemp("bad")
    ok(fit_tiny(root / "run"))
    real = root / "run" / "model.safetensors"
    files = {"ckpt": real}
    data = real.read_bytes()
    (root / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (root / "text.safetensors").write_text("this is not a safetensors file\n")
    save_file({"w": torch.zeros(3)}, str(root / "plain.safetensors"), metadata={"format": "pt"})
    with safe_open(str(real), framework="pt") as fh:
        meta = fh.metadata()
    tensors = load_file(real)
    save_file(tensors, str(root / "nosuch.safetensors"),
              metadata={**meta, "igm.model": "nosuchmodel", "igm.plugin": "igm-nosuchmodel"})
    save_file(tensors, str(root / "importpath.safetensors"), metadata={**meta, "igm.model": "os.path:join"})
    config = json.loads(meta["igm.config"])
    save_file(tensors, str(root / "shape.safetensors"),
              metadata={**meta, "igm.config": json.dumps({**config, "g_hidden": [7, 7]})})
    (root / "broken.toml").write_text('[run]\nmodel = "gan\n')
    (root / "badkey.toml").write_text('[run]\nmodel = "gan"\ndata = "grid25"\nsteps = 3\n\n[model]\nlearning_rate = 0.1\n')
    (root / "badtable.toml").write_text('[runn]\nmodel = "gan"\n')
    np.savez(root / "noarrays.npz", foo=np.zeros((8, 2), dtype=np.float32))
    np.savez(root / "img16.npz", x=np.random.default_rng(0).random((8, 1, 16, 16), dtype=np.float32))
    for p in root.iterdir():
        if p.is_file():
            files[p.stem + p.suffix.replace(".", "_")] = p
    return files


FIT = ("fit", "gan", "--data", "grid25", "--steps", "3", "--out", "R")
BAD_INPUT = {
    # case: (arguments with {file} placeholders, strings the error line must contain)
    "unknown-model": (("fit", "gam", "--data", "grid25", "--out", "R"), ["'gam'", "did you mean 'gan'"]),
    "unknown-data": (("fit", "gan", "--data", "grid52", "--out", "R"), ["'grid52'", "did you mean 'grid25'"]),
    "unknown-divergence": ((*FIT, "--set", "divergence=jsdd"), ["'jsdd'", "did you mean 'jsd'"]),
    "unknown-set-key": ((*FIT, "--set", "lr_gen=0.1"), ["'lr_gen'", "did you mean 'lr_g'", "valid keys", "divergence"]),
    "ill-typed-set": ((*FIT, "--set", "lr_g=fast"), ["'fast'", "lr_g"]),
    "bad-literal-set": ((*FIT, "--set", "loss=maximin"), ["'maximin'", "non-saturating"]),
    "set-without-equals": ((*FIT, "--set", "lr_g"), ["--set", "key=value", "lr_g"]),
    "dcgan-on-points": ((*FIT, "--set", "network=dcgan"), ["network=dcgan", "'grid25'", "(2,)", "network=mlp"]),
    "sig-dcgan-not-28": (("fit", "gan", "--data", "digits", "--set", "network=sig-dcgan", "--out", "R"), ["28x28", "(1, 8, 8)"]),
    "auto-dcgan-on-16px": (("fit", "gan", "--data", "npz:{img16_npz}", "--out", "R"),
                           ["network=auto picks dcgan", "(1, 16, 16)", "--set network=mlp"]),
    "toml-does-not-parse": (("fit", "--config", "{broken_toml}", "--out", "R"), ["broken.toml", "TOML"]),
    "toml-unknown-model-key": (("fit", "--config", "{badkey_toml}", "--out", "R"), ["'learning_rate'", "valid keys"]),
    "toml-unknown-table": (("fit", "--config", "{badtable_toml}", "--out", "R"), ["runn"]),
    "toml-missing": (("fit", "--config", "nope.toml", "--out", "R"), ["nope.toml"]),
    "data-path-missing": (("fit", "gan", "--data", "npz:/nope.npz", "--out", "R"), ["/nope.npz"]),
    "npz-without-arrays": (("fit", "gan", "--data", "npz:{noarrays_npz}", "--out", "R"), ["noarrays.npz", "foo"]),
    "no-model": (("fit", "--data", "grid25", "--out", "R"), ["model"]),
    "no-data": (("fit", "gan", "--out", "R"), ["--data"]),
    "resume-empty-dir": (("fit", "--resume", "--out", "empty", "--steps", "5"), ["--resume", "empty"]),
    "resume-missing-dir": (("fit", "--resume", "--out", "missing", "--steps", "5"), ["--resume", "missing"]),
    "steps-zero": (("fit", "gan", "--data", "grid25", "--steps", "0", "--out", "R"), ["--steps", "0"]),
    "steps-negative": (("fit", "gan", "--data", "grid25", "--steps", "-5", "--out", "R"), ["--steps", "-5"]),
    "batch-size-zero": (("fit", "gan", "--data", "grid25", "--batch-size", "0", "--out", "R"), ["--batch-size", "0"]),
    "unknown-trainer": ((*FIT, "--trainer", "defualt"), ["did you mean 'default'"]),
    "sample-truncated": (("sample", "{truncated_safetensors}", "-n", "4", "--out", "s.npy"), ["truncated.safetensors"]),
    "info-truncated": (("info", "{truncated_safetensors}"), ["truncated.safetensors"]),
    "eval-truncated": (("eval", "{truncated_safetensors}", "--metric", "modes", "-n", "10"), ["truncated.safetensors"]),
    "sample-not-safetensors": (("sample", "{text_safetensors}", "-n", "4", "--out", "s.npy"), ["text.safetensors"]),
    "info-not-safetensors": (("info", "{text_safetensors}"), ["text.safetensors"]),
    "sample-no-igm-metadata": (("sample", "{plain_safetensors}", "-n", "4", "--out", "s.npy"), ["plain.safetensors", "igm"]),
    "info-no-igm-metadata": (("info", "{plain_safetensors}"), ["plain.safetensors", "igm"]),
    "sample-unknown-model": (("sample", "{nosuch_safetensors}", "-n", "4", "--out", "s.npy"), ["'nosuchmodel'", "igm-nosuchmodel"]),
    "eval-unknown-model": (("eval", "{nosuch_safetensors}", "--metric", "modes", "-n", "10"), ["'nosuchmodel'"]),
    "sample-import-path": (("sample", "{importpath_safetensors}", "-n", "4", "--out", "s.npy"), ["os.path:join"]),
    "info-import-path": (("info", "{importpath_safetensors}"), ["os.path:join"]),
    "sample-shape-mismatch": (("sample", "{shape_safetensors}", "-n", "4", "--out", "s.npy"), ["shape.safetensors", "shape"]),
    "sample-missing-file": (("sample", "nope.safetensors", "-n", "4", "--out", "s.npy"), ["nope.safetensors"]),
    "sample-label-unconditional": (("sample", "{ckpt}", "-n", "4", "--label", "3", "--out", "s.npy"), ["--label"]),
    "sample-n-zero": (("sample", "{ckpt}", "-n", "0", "--out", "s.npy"), ["-n", "0"]),
    "sample-bad-suffix": (("sample", "{ckpt}", "-n", "4", "--out", "s.txt"), ["s.txt", ".png"]),
    "eval-unknown-metric": (("eval", "{ckpt}", "--metric", "mode", "-n", "10"), ["did you mean 'modes'"]),
    "list-nonsense": (("list", "nonsense"), ["'nonsense'", "models"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    args, needles = BAD_INPUT[case]
    args = [a.format(**bad) for a in args]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    line = one_error_line(invoke(*args))
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # no run dir, no output file


@pytest.mark.parametrize(("key", "value"), [("igm.config", "{not json"), ("igm.step", "ten")])
def test_info_on_damaged_metadata_is_one_line(key, value, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with safe_open(str(bad["ckpt"]), framework="pt") as fh:
        meta = fh.metadata()
    save_file(load_file(bad["ckpt"]), "damaged.safetensors", metadata={**meta, key: value})
    line = one_error_line(invoke("info", "damaged.safetensors"))
    assert "damaged.safetensors" in line


# ---- nothing already written is lost ------------------------------------------------------------


def test_a_second_fit_into_a_finished_run_fails_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(fit_tiny("RUN"))
    (tmp_path / "other.toml").write_text('[run]\nmodel = "gan"\ndata = "grid25"\nsteps = 3\n')
    before = tree_hashes(tmp_path / "RUN")
    assert {"config.toml", "metrics.jsonl", "model.safetensors", "trainer.safetensors", "samples.png"} <= set(before)
    attempts = [
        ("fit", "gan", "--data", "grid25", "--out", "RUN"),
        ("fit", "gan", "--data", "grid25", "--steps", "3", "--out", "RUN", "--set", "lr_g=fast"),
        ("fit", "gan", "--data", "grid25", "--steps", "3", "--out", "RUN", "--set", "nokey=1"),
        ("fit", "gan", "--data", "grid52", "--out", "RUN"),
        ("fit", "--config", "RUN/config.toml", "--out", "RUN"),
        ("fit", "--config", "other.toml", "--out", "RUN"),
        ("fit", "--resume", "--out", "RUN", "--set", "lr_g=0.5"),
        ("fit", "--resume", "--out", "RUN", "--seed", "7"),
        ("fit", "--resume", "--out", "RUN", "--data", "ring8"),
    ]
    for args in attempts:
        line = one_error_line(invoke(*args))
        assert tree_hashes(tmp_path / "RUN") == before, (args, line)
    line = one_error_line(invoke("fit", "gan", "--data", "grid25", "--out", "RUN"))
    assert "RUN" in line and "--resume" in line


def test_a_fit_that_fails_while_starting_does_not_block_the_corrected_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(invoke("fit", "gan", "--data", "grid25", "--steps", "3", "--batch-size", "10000000",
                                 "--out", "RUN", "-q"))
    assert "batch" in line
    assert not (tmp_path / "RUN" / "config.toml").exists()
    ok(fit_tiny("RUN"))


def test_sampling_onto_the_checkpoint_itself_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(fit_tiny("RUN"))
    before = tree_hashes(tmp_path / "RUN")
    result = invoke("sample", "RUN/model.safetensors", "-n", "4", "--out", "RUN/model.safetensors")
    assert tree_hashes(tmp_path / "RUN") == before
    one_error_line(result)


# ---- resume ---------------------------------------------------------------------------------------


def test_resume_continues_to_the_new_step_count_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(
        '[run]\nmodel = "gan"\ndata = "grid25"\nsteps = 10\nbatch_size = 32\nseed = 3\nlog_every = 1\n'
        'lr_decay = "none"\n'  # a schedule over the run's length would change with --steps: exactness needs none
        'device = "cpu"\n\n[model]\nlr_g = 0.001\nlr_d = 0.001\n'
    )
    ok(invoke("fit", "--config", "run.toml", "--out", "R", "-q"))
    info = invoke("info", "R/model.safetensors", "--json")
    ok(info)
    assert json.loads(info.stdout)["step"] == 10
    # a run killed after logging past its last checkpoint: those lines must not survive the resume
    with open("R/metrics.jsonl", "a") as fh:
        fh.write('{"step": 11, "critic": 9.9, "generator": 9.9}\n{"step": 12, "critic": 9.9, "generator": 9.9}\n')

    ok(invoke("fit", "--resume", "--out", "R", "--steps", "20", "-q"))
    info = invoke("info", "R/model.safetensors", "--json")
    ok(info)
    assert json.loads(info.stdout)["step"] == 20
    logs = [json.loads(line) for line in Path("R/metrics.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logs] == list(range(1, 21))
    assert all(entry["critic"] != 9.9 for entry in logs)

    # the resumed run reaches the very tensors of a run that never stopped
    ok(invoke("fit", "--config", "run.toml", "--steps", "20", "--out", "S", "-q"))
    assert_same_tensors(Path("R/model.safetensors"), Path("S/model.safetensors"))
    assert_same_tensors(Path("R/trainer.safetensors"), Path("S/trainer.safetensors"))

    # changing the configuration of a run being resumed is refused, and the run is untouched
    before = tree_hashes(tmp_path / "R")
    line = one_error_line(invoke("fit", "--resume", "--out", "R", "--steps", "30", "--set", "lr_g=0.1"))
    assert "--resume" in line and "--set" in line
    assert tree_hashes(tmp_path / "R") == before


def test_resume_without_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(invoke("fit", "--resume", "--steps", "5"))
    assert "--resume" in line and "--out" in line


# ---- list -------------------------------------------------------------------------------------------


def test_list_json_has_every_kind_and_the_builtins():
    result = invoke("list", "--json")
    ok(result)
    listing = json.loads(result.stdout)
    assert set(listing) == {"models", "divergences", "datasets", "metrics", "trainers", "plugins"}
    names = {kind: {c["name"]: c for c in listing[kind]} for kind in listing if kind != "plugins"}
    assert names["models"]["gan"]["plugin"] == "gan" and names["models"]["gan"]["distribution"] == "igm-gan"
    assert {"jsd", "kl", "wasserstein", "sig", "mmd"} <= set(names["divergences"])
    assert {"grid25", "ring8", "npz"} <= set(names["datasets"])
    assert "modes" in names["metrics"] and "default" in names["trainers"]
    for kind in ("divergences", "datasets", "metrics", "trainers"):
        assert all(c["plugin"] == "igm" for c in names[kind].values() if c["distribution"] == "igm-toolkit")
    assert names["datasets"]["grid25"]["summary"]  # first docstring line


@pytest.mark.parametrize(("kind", "expected"), [("models", "gan"), ("divergences", "wasserstein"), ("datasets", "grid25"),
                                                 ("metrics", "modes"), ("trainers", "default")])
def test_list_one_kind_as_text_and_json(kind, expected):
    text = invoke("list", kind)
    ok(text)
    lines = text.stdout.splitlines()
    assert lines[0] == f"{kind}:"
    assert expected in [line.split()[0] for line in lines[1:] if line.strip()]
    as_json = invoke("list", kind, "--json")
    ok(as_json)
    assert expected in [c["name"] for c in json.loads(as_json.stdout)]


def test_sample_per_class_grid_has_one_row_per_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = invoke("fit", "gan", "--data", "digits", "--steps", "2", "--batch-size", "16", "--set", "conditional=true",
                "--set", "g_width=0.25", "--set", "d_width=0.25", "--out", "C", "-q")
    assert ok.exit_code == 0, ok.output
    done = invoke("sample", "C/model.safetensors", "--per-class", "3", "--out", "grid.png")
    assert done.exit_code == 0, done.output
    grid = Image.open(tmp_path / "grid.png")
    single = invoke("sample", "C/model.safetensors", "-n", "3", "--label", "1", "--out", "one.png")
    assert single.exit_code == 0, single.output
    # ten rows of classes, three columns: taller than wide by about 10 / 3
    assert 2.5 < grid.size[1] / grid.size[0] < 4.0
    uncond = invoke("fit", "gan", "--data", "grid25", "--steps", "2", "--out", "U", "-q")
    assert uncond.exit_code == 0
    refused = invoke("sample", "U/model.safetensors", "--per-class", "3", "--out", "g.png")
    assert refused.exit_code == 2 and "unconditional model: drop --per-class" in refused.output
