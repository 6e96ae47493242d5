"""The example third-party plugin, installed into a FRESH virtual environment with the core.

Nothing of the project's ``.venv`` is visible there: a clean ``python -m venv`` gets the core
(a non-editable install of a copy of the sources, as a user's ``pip install igm-toolkit``
would), ``pip install -e examples/igm-plugin-example[test]`` and torch pinned by
``constraints.txt`` (pip's find-links holds the CPU wheel). Then ``igm list --json`` must
show the plugin and nothing else, ``igm fit lsgan`` must train it with no change to the core,
and the plugin's own tests (``igm.testing``) must pass where it is installed.

``--no-compile`` skips byte-compiling torch's thousands of modules at install time (Python
compiles what it imports on first use), which halves the install; the rest is unpacking torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "igm-plugin-example"


def run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "IGM_PLUGINS", "IGM_DISABLE_PLUGINS")}
    env["OMP_NUM_THREADS"] = "1"  # tiny networks: one thread each is fastest on a busy machine
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_example_plugin_in_a_fresh_venv(tmp_path):
    t0 = time.perf_counter()
    core = tmp_path / "igm-toolkit"  # a copy, so the build never writes into the repository
    core.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, core / name)
    shutil.copytree(ROOT / "toolkit", core / "toolkit", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    env = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(env)], tmp_path)
    py, igm = env / "bin" / "python", env / "bin" / "igm"
    run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), str(core), "-e", f"{EXAMPLE}[test]"],
        tmp_path,
    )
    installed = time.perf_counter() - t0

    # the environment is fresh: only the core and the example plugin are there
    listing = json.loads(run([str(igm), "list", "--json"], tmp_path).stdout)
    plugins = {p["name"]: p for p in listing["plugins"]}
    assert sorted(plugins) == ["igm", "lsgan"], sorted(plugins)
    lsgan = plugins["lsgan"]
    assert lsgan["distribution"] == "igm-lsgan" and lsgan["version"] == "0.1.0" and lsgan["error"] is None
    assert lsgan["registered"] == {
        "datasets": ["moons"], "divergences": ["least-squares", "hinge"], "metrics": ["energy"], "models": ["lsgan"],
    }
    assert [m["name"] for m in listing["models"]] == ["lsgan"]

    # igm fit trains it with no change to the core, and the checkpoint names the plugin
    run_dir = tmp_path / "run"
    fit = run([str(igm), "fit", "lsgan", "--data", "moons", "--steps", "20", "--batch-size", "64",
               "--set", "divergence=hinge", "--out", str(run_dir)], tmp_path)
    assert "done: step 20" in fit.stdout + fit.stderr
    probe = (
        "import json, igm, torch; from igm.checkpoint import read_metadata; "
        f"m = read_metadata({str(run_dir / 'model.safetensors')!r}); "
        "print(json.dumps([igm.__file__, torch.__version__, m['igm.model'], m['igm.plugin'], json.loads(m['igm.config'])['divergence']]))"
    )
    where, torch_version, model, dist, divergence = json.loads(run([str(py), "-c", probe], tmp_path).stdout)
    assert where.startswith(str(env)) and torch_version.startswith("2.13.0")  # the venv's own copies, not the project's
    assert (model, dist, divergence) == ("lsgan", "igm-lsgan", "hinge")

    # the plugin's own tests, which use igm.testing, pass where it is installed
    tests = run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider"], EXAMPLE)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    total = time.perf_counter() - t0
    print(f"fresh venv: install {installed:.0f} s, whole test {total:.0f} s")
