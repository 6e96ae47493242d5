"""Loading a checkpoint never executes code named by the file (complements test_checkpoint.py).

test_checkpoint.py refuses model names shaped like import paths. Here: a well-formed but
unknown model name, a name that is also an importable module, and import paths hidden in the
other metadata fields (plugin, config values, unknown config keys) — each refused or ignored
with a one-line error, and the named module is never imported.
"""

from __future__ import annotations

import json
import sys

import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

import igm
from igm import checkpoint
from igm.cli import app
from igm.errors import CheckpointError, IgmError
from igm.testing import build_model, toy_points

SENTINEL = "igm_sentinel_do_not_import"


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """An importable module that records being imported; the test fails if anything imports it."""
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{SENTINEL}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop(SENTINEL, None)
    assert not marker.exists() and SENTINEL not in sys.modules, "loading a checkpoint imported a module it named"


def write(path, meta_changes: dict[str, str] | None = None, config_changes: dict | None = None):
    model = build_model("gan", toy_points().info)
    meta = checkpoint.model_metadata(model)
    if config_changes:
        config = json.loads(meta["igm.config"])
        config.update(config_changes)
        meta["igm.config"] = json.dumps(config)
    meta.update(meta_changes or {})
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    return path


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, repr(text)
    return text


def test_an_unknown_model_is_refused_and_names_the_plugin_to_install(tmp_path):
    path = write(tmp_path / "m.safetensors", {"igm.model": "no-such-model", "igm.plugin": "igm-no-such-model"})
    with pytest.raises(CheckpointError) as caught:
        igm.load(path)
    msg = one_line(caught.value)
    assert "needs model 'no-such-model' from igm-no-such-model" in msg and "pip install igm-no-such-model" in msg


def test_a_model_named_like_an_importable_module_is_not_imported(tmp_path, sentinel):
    path = write(tmp_path / "m.safetensors", {"igm.model": SENTINEL, "igm.plugin": SENTINEL})
    with pytest.raises(CheckpointError, match=f"needs model '{SENTINEL}'"):
        igm.load(path)


@pytest.mark.parametrize("name", [f"{SENTINEL}:main", f"{SENTINEL}.Model", "builtins.eval", "__import__('os')", "Gan", ""])
def test_import_paths_and_odd_names_are_refused_before_any_lookup(tmp_path, sentinel, name):
    path = write(tmp_path / "m.safetensors", {"igm.model": name})
    with pytest.raises(CheckpointError, match="not a registered model name") as caught:
        igm.load(path)
    one_line(caught.value)


def test_the_plugin_field_is_informational_only(tmp_path, sentinel):
    path = write(tmp_path / "m.safetensors", {"igm.plugin": f"{SENTINEL}:evil", "igm.plugin_version": "6.6.6"})
    model = igm.load(path)  # resolved through the registry by model name; the plugin field is never imported
    assert model.name == "gan"


def test_import_paths_in_the_config_are_data_not_code(tmp_path, sentinel):
    path = write(tmp_path / "a.safetensors", config_changes={"__class__": f"{SENTINEL}.Config"})
    with pytest.raises(CheckpointError, match="does not accept") as caught:
        igm.load(path)
    assert "unknown" in one_line(caught.value) and "__class__" in str(caught.value)
    path = write(tmp_path / "b.safetensors", config_changes={"divergence": f"{SENTINEL}.Divergence"})
    with pytest.raises(IgmError, match="unknown divergence") as caught:  # looked up in the registry only
        igm.load(path)
    one_line(caught.value)


def test_the_cli_refuses_an_unknown_model_in_one_line(tmp_path):
    path = write(tmp_path / "m.safetensors", {"igm.model": "no-such-model", "igm.plugin": "igm-no-such-model"})
    result = CliRunner().invoke(app, ["sample", str(path), "-n", "4", "--out", str(tmp_path / "x.png")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "pip install igm-no-such-model" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_tensors_are_only_tensors(tmp_path):
    """A safetensors file cannot carry code: non-tensor payloads are refused at read time."""
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"x": "cos"}    ')
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as caught:
        igm.load(path)
    one_line(caught.value)
