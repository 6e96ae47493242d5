"""Checkpoints: the safetensors format, strict loading, clear refusals, and no pickle anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import igm
from igm import checkpoint
from igm.errors import CheckpointError
from igm.testing import build_model, check_checkpoint_roundtrip, toy_images, toy_points

ROOT = Path(__file__).resolve().parents[1]


def test_format_holds_every_tensor_and_the_metadata(tmp_path):
    data = toy_points()
    model = build_model("gan", data.info, {"g_batchnorm": "true"})
    path = checkpoint.save(model, tmp_path / "m.safetensors", step=42)
    with safe_open(str(path), framework="pt") as fh:
        meta, keys = fh.metadata(), set(fh.keys())
    assert keys == set(model.state_dict())  # parameters and BatchNorm buffers of both players
    assert {k.split(".")[0] for k in keys} == {"generator", "critic"}
    assert meta["igm.format"] == checkpoint.FORMAT_VERSION and meta["igm.model"] == "gan"
    assert meta["igm.plugin"] == "igm-gan" and meta["igm.version"] == igm.__version__
    assert meta["igm.step"] == "42"
    assert json.loads(meta["igm.config"])["g_batchnorm"] is True
    assert json.loads(meta["igm.data"])["event_shape"] == [2]
    assert not list(tmp_path.glob(".*.tmp"))


def test_round_trip_is_bit_exact_for_images(tmp_path):
    model = build_model("gan", toy_images().info)
    loaded = check_checkpoint_roundtrip(model, tmp_path / "m.safetensors")
    assert not loaded.training  # igm.load returns an eval-mode model


def test_load_is_strict_about_shapes(tmp_path):
    data = toy_points()
    path = checkpoint.save(build_model("gan", data.info), tmp_path / "m.safetensors")
    tensors, meta = checkpoint.read_file(path)
    cfg = json.loads(meta["igm.config"])
    cfg["g_hidden"] = [7, 7]
    meta["igm.config"] = json.dumps(cfg)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=r"does not match model 'gan' \(shape mismatch: generator"):
        igm.load(path)


def test_old_28x28_dcgan_checkpoint_names_the_fix_and_the_fix_loads(tmp_path):
    # a 28x28 `dcgan` checkpoint from before the standard layout holds the SIG paper's tensors:
    # the error names the fix (network = sig-dcgan in the metadata), and that rewrite loads it
    data = toy_images(4, (1, 28, 28))
    model = build_model("gan", data.info, {"network": "sig-dcgan"})
    path = checkpoint.save(model, tmp_path / "old.safetensors")
    tensors, meta = checkpoint.read_file(path)
    config = json.loads(meta["igm.config"])
    config["network"] = "dcgan"  # what such a checkpoint says, in format 1 (the layout changed within it)
    meta["igm.config"] = json.dumps(config)
    save_file(tensors, str(path), metadata={**meta, "igm.format": "2"})
    with pytest.raises(CheckpointError, match="does not match model 'gan'") as err:  # format 2: no such file can exist
        igm.load(path)
    assert "sig-dcgan" not in str(err.value)
    meta["igm.format"] = "1"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="set network to sig-dcgan in its igm.config metadata"):
        igm.load(path)
    config["network"] = "sig-dcgan"  # the rewrite docs/checkpoints.md shows
    meta["igm.config"] = json.dumps(config)
    save_file(tensors, str(tmp_path / "fixed.safetensors"), metadata=meta)
    loaded = igm.load(tmp_path / "fixed.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


@pytest.mark.parametrize("name", ["os.path:join", "igm_gan.GAN", "../evil"])
def test_a_model_named_by_import_path_is_refused(tmp_path, name):
    path = tmp_path / "m.safetensors"
    meta = {"igm.format": "1", "igm.model": name, "igm.config": "{}", "igm.data": "{}"}
    save_file({"x": torch.zeros(1)}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="not a registered model name"):
        igm.load(path)


def test_optimizer_state_survives_the_file_format():
    params = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2, 2))]
    opt = torch.optim.Adam(params, lr=0.1, betas=(0.5, 0.9))
    for _ in range(3):
        opt.zero_grad()
        sum(p.pow(2).sum() for p in params).backward()
        opt.step()
    tensors, meta = checkpoint.optimizer_state(opt, "optim.x")
    meta = json.loads(json.dumps(meta))  # as stored in the file
    fresh = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.5)
    checkpoint.load_optimizer_state(fresh, "optim.x", tensors, meta)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for key, value in a["state"][idx].items():
            assert torch.equal(value, b["state"][idx][key])


def test_no_pickle_and_no_torch_load_in_the_project():
    pattern = re.compile(r"torch\.load\(|import pickle|from pickle|allow_pickle\s*=\s*True|cloudpickle|joblib")
    offenders = []
    for path in [*ROOT.glob("toolkit/**/*.py"), *ROOT.glob("plugins/**/*.py"), *ROOT.glob("examples/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, offenders
