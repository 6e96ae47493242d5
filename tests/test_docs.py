"""The documentation for plugin authors and application developers, checked against the code.

- every hook of ``igm.hookspecs.HOOKS`` is documented in docs/plugins.md with its signature,
  and implemented by a test somewhere (core tests, plugins' tests, the example plugin's tests);
- the ```python blocks of docs/plugins.md run, in order, as one module (```py blocks are
  illustrations only) — so every documented example works, and its inline plugin registers
  all five hooks;
- docs/checkpoints.md names every metadata key igm writes and the current format version;
- the README points at both pages and keeps its two fresh-clone commands.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path

import pytest

from igm import checkpoint, hookspecs
from igm.testing import build_model, toy_points

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_MD = ROOT / "docs" / "plugins.md"
CHECKPOINTS_MD = ROOT / "docs" / "checkpoints.md"


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("hook", hookspecs.HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    text = PLUGINS_MD.read_text()
    spec = getattr(hookspecs, hook)
    params = list(inspect.signature(spec).parameters)
    assert params == ["register"]
    assert f"`{hook}(register: Callable[[str, " in text, f"docs/plugins.md lacks the signature of {hook}"
    assert f"def {hook}(register" in "".join(blocks(PLUGINS_MD, "python")), f"docs/plugins.md has no example of {hook}"


@pytest.mark.parametrize("hook", hookspecs.HOOKS)
def test_every_hook_is_implemented_by_a_test(hook):
    files = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py"), *ROOT.glob("examples/*/tests/**/*.py")]
    users = [f for f in files if f.name != "test_docs.py" and re.search(rf"def {hook}\(\s*register", f.read_text())]
    # the example plugin's module counts when its tests run the hooks (tests/test_examples.py registers it)
    example = ROOT / "examples" / "igm-plugin-example" / "igm_lsgan" / "__init__.py"
    if re.search(rf"def {hook}\(\s*register", example.read_text()):
        users.append(example)
    assert users, f"no test implements {hook}"


def test_the_python_blocks_of_plugins_md_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the examples write stays in tmp_path
    code = "\n\n".join(blocks(PLUGINS_MD, "python"))
    module = types.ModuleType("docs_plugins_md")  # dataclasses and type hints look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(PLUGINS_MD), "exec"), module.__dict__)
    namespace = module.__dict__
    for hook in hookspecs.HOOKS:
        assert getattr(namespace[hook], "igm_impl", None) is not None, f"{hook} in the docs is not an @igm.hookimpl"


def test_checkpoints_md_documents_the_format():
    text = CHECKPOINTS_MD.read_text()
    model = build_model("gan", toy_points().info)
    for key in checkpoint.model_metadata(model):
        assert f"`{key}`" in text, f"docs/checkpoints.md does not document {key}"
    assert f"format version is `{checkpoint.FORMAT_VERSION}`" in text
    for name in ("load_in_app.py", "read_without_igm.py"):
        assert name in text and (ROOT / "examples" / name).exists()


def test_readme_points_at_the_docs_and_keeps_its_commands():
    readme = (ROOT / "README.md").read_text()
    assert "docs/plugins.md" in readme and "docs/checkpoints.md" in readme and "examples/igm-plugin-example" in readme
    assert "bash scripts/setup.sh && .venv/bin/igm fit sig --data ring8 --metric modes" in readme  # the main job
    assert "bash scripts/setup.sh && .venv/bin/python -m pytest" in readme
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", readme):
        assert (ROOT / link).exists(), f"README links to missing {link}"


def test_every_public_name_is_documented_in_the_plugin_guide():
    import igm

    text = PLUGINS_MD.read_text()
    missing = [name for name in igm.__all__ if name != "__version__" and f"`{name}`" not in text]
    assert not missing, f"docs/plugins.md does not document igm.{', igm.'.join(missing)}"
