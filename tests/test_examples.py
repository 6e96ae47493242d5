"""The examples for application developers and plugin authors, run on checkpoints trained here.

- ``examples/load_in_app.py`` loads a checkpoint, samples on the device it is given and writes
  a PNG (and says what is wrong in one line);
- ``examples/read_without_igm.py`` rebuilds MLP generators from the file alone and reproduces
  igm's samples exactly for the same seed, without importing igm (checked with ``-X importtime``);
- ``examples/igm-plugin-example`` passes the ``igm.testing`` contract when registered inline
  (the fresh-venv test installs it for real).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import igm
from igm.registry import get_registry
from igm.testing import build_model, check_model, plugin, toy_images, toy_points
from igm.trainer import RunConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def script(name: str, *args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, *python_flags, str(EXAMPLES / name), *args], capture_output=True, text=True, env=env, timeout=120
    )


def import_script(name: str):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(name: str, data, overrides: dict[str, str], out: Path, steps: int = 4) -> Path:
    """A few real training steps (BatchNorm statistics move too); returns the checkpoint."""
    model = build_model(name, data.info, overrides)
    run = RunConfig(steps=steps, batch_size=32, log_every=steps, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(model, data, run, out, progress=False).fit()
    return out / "model.safetensors"


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory) -> Path:
    return train("gan", toy_points(), {"g_batchnorm": "true"}, tmp_path_factory.mktemp("gan"))


@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory) -> Path:
    return train("gan", toy_points(), {"conditional": "true"}, tmp_path_factory.mktemp("cgan"))


# ---- load_in_app.py ----------------------------------------------------------------------


def test_load_in_app_samples_on_the_given_device_and_writes_a_png(gan_ckpt, tmp_path):
    out = tmp_path / "app.png"
    result = script("load_in_app.py", str(gan_ckpt), "--device", "cpu", "-n", "500", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "(500, 2) samples on cpu" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    app = import_script("load_in_app.py")
    _, x = app.sample_checkpoint(str(gan_ckpt), 7, "cpu", seed=5)
    with torch.no_grad():
        expected = igm.load(gan_ckpt).generator.sample(7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, expected)


def test_load_in_app_draws_one_class_of_a_conditional_model(cgan_ckpt, tmp_path):
    app = import_script("load_in_app.py")
    model, x = app.sample_checkpoint(str(cgan_ckpt), 6, "cpu", seed=1, label=2)
    assert model.generator.num_classes == 4 and x.shape == (6, 2)
    labels = torch.full((6,), 2)
    with torch.no_grad():
        expected = model.generator.sample(6, labels=labels, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, expected)
    assert app.main([str(cgan_ckpt), "--label", "2", "-n", "40", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label", "1"], "unconditional model: drop --label"),
        (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "nonsense"], "device"),
    ],
)
def test_load_in_app_user_errors_are_one_line(gan_ckpt, tmp_path, capsys, args, message):
    app = import_script("load_in_app.py")
    assert app.main([str(gan_ckpt), *args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error:") and message in err[0], err
    assert app.main([str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---- read_without_igm.py -----------------------------------------------------------------


def test_read_without_igm_reproduces_igms_samples_without_importing_igm(gan_ckpt, tmp_path):
    out = tmp_path / "samples.safetensors"
    result = script("read_without_igm.py", str(gan_ckpt), "-n", "300", "--seed", "11", "--out", str(out),
                    python_flags=("-X", "importtime"))
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "torch" in imported and "safetensors" in imported
    assert not [m for m in imported if m == "igm" or m.startswith("igm.") or m.startswith("igm_")], "the script imported igm"
    assert "igm.model            gan" in result.stdout and '"event_shape": [2]' in result.stdout
    with torch.no_grad():
        expected = igm.load(gan_ckpt).generator.sample(300, generator=torch.Generator().manual_seed(11))
    assert torch.equal(load_file(str(out))["samples"], expected)


def mlp_variants():
    yield "relu+batchnorm", "gan", toy_points, {"g_batchnorm": "true"}
    yield "maxout+batchnorm", "gan", toy_points, {"g_activation": "maxout", "g_hidden": "8,6", "g_batchnorm": "true"}
    yield "conditional elu", "gan", toy_points, {"conditional": "true", "g_activation": "elu"}
    yield "images through an MLP (sigmoid)", "gan", toy_images, {"network": "mlp", "g_activation": "leaky_relu"}
    yield "least-squares example plugin", "lsgan", toy_points, {"latent_dim": "3", "g_activation": "tanh"}
    if "sig" in get_registry().names("models"):
        yield "semi-implicit gaussian (sig)", "sig", toy_points, {}
        yield "semi-implicit bernoulli (sig)", "sig", toy_images, {"network": "mlp"}


@pytest.mark.parametrize("label, name, data, overrides", list(mlp_variants()), ids=[v[0] for v in mlp_variants()])
def test_read_without_igm_rebuilds_every_mlp_generator_exactly(tmp_path, example_plugin, label, name, data, overrides):
    path = train(name, data(), overrides, tmp_path, steps=2)
    reader = import_script("read_without_igm.py")
    metadata, tensors = reader.read(str(path))
    sampler = reader.Sampler(metadata, tensors)
    model = igm.load(path)
    with torch.no_grad():
        expected = model.generator.sample(64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(sampler.sample(64, seed=4), expected)
    if model.generator.num_classes:
        labels = torch.arange(64) % model.generator.num_classes
        with torch.no_grad():
            expected = model.generator.sample(64, labels=labels, generator=torch.Generator().manual_seed(4))
        assert torch.equal(sampler.sample(64, seed=4, labels=labels), expected)


def test_read_without_igm_refuses_a_dcgan_in_one_line(tmp_path, capsys):
    path = igm.save(build_model("gan", toy_images().info), tmp_path / "dcgan.safetensors")
    reader = import_script("read_without_igm.py")
    assert reader.main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rebuilds MLPs only" in err[0]


# ---- the example plugin, registered inline -----------------------------------------------


@pytest.fixture(scope="module")
def example_plugin():
    """igm_lsgan registered as if installed (under its entry-point name), unless it is installed."""
    if "lsgan" in get_registry().names("models"):
        yield
        return
    sys.path.insert(0, str(EXAMPLES / "igm-plugin-example"))
    try:
        import igm_lsgan

        with plugin(igm_lsgan, "lsgan"):
            yield
    finally:
        sys.path.remove(str(EXAMPLES / "igm-plugin-example"))


def test_example_plugin_passes_the_contract(tmp_path, example_plugin):
    model = check_model("lsgan", toy_points(), tmp_path, overrides={"divergence": "hinge"})
    assert model.divergence.name == "hinge"  # the model built with the overrides
    assert type(build_model("gan", toy_points().info, {"divergence": "hinge"}).divergence).__name__ == "Hinge"


# ---- seed toy demos: each writes a PNG and checks its own numbers (exit status 0) ----------


@pytest.mark.parametrize(
    "name, args, expect",
    [
        ("sig_theorem1.py", ["--points", "6"], "max |m_k/M - n_k/N|"),
        ("implicit_densities.py", ["--steps", "30"], "autograd density TV"),
        ("mode_collapse.py", ["--steps", "20"], "gan     near (0.1)"),
        ("energy_landscape.py", ["--steps", "20"], "ebm modes"),
    ],
)
def test_seed_demo_runs_and_writes_its_png(tmp_path, name, args, expect):
    out = tmp_path / name.replace(".py", ".png")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args, "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert expect in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if name == "mode_collapse.py" and "gan-si" in get_registry().names("models"):
        assert "gan-si  near (0.1)" in result.stdout
