"""Plugins and examples use igm's public surface only: ``igm`` itself and its contract kit ``igm.testing``.

Built-in families are written exactly as a third party would write them, so every import under
``plugins/`` and ``examples/`` is checked here: ``import igm`` / ``from igm import ...``,
``igm.testing``, and in test code the command line ``igm.cli``. Anything deeper (``igm.models``,
``igm.divergences._distances``, ...) fails this test with the file and line, and so does a name
``from igm import`` takes that ``igm.__all__`` does not list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import igm

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"igm", "igm.testing"}
PUBLIC_IN_TESTS = PUBLIC | {"igm.cli"}


def sources() -> list[Path]:
    found = []
    for top in ("plugins", "examples"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if not any(part.startswith(".") or part in ("build", "__pycache__") or part.endswith(".egg-info")
                       for part in path.relative_to(ROOT).parts):
                found.append(path)
    return found


def is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def igm_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of igm or below it in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name == "igm" or a.name.startswith("igm.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "igm" or node.module.startswith("igm."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def test_there_is_something_to_check():
    paths = sources()
    assert any("igm_gan" in str(p) for p in paths) and any("igm_lsgan" in str(p) for p in paths)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_stay_on_the_public_surface(path):
    allowed = PUBLIC_IN_TESTS if is_test(path) else PUBLIC
    past = [f"{path.relative_to(ROOT)}:{line}: {module}" for line, module, _ in igm_imports(path) if module not in allowed]
    assert not past, "imports past igm's public surface (use `from igm import ...`):\n" + "\n".join(past)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_taken_from_igm_is_on_the_surface(path):
    for line, module, names in igm_imports(path):
        if module == "igm":
            unknown = [n for n in names if n not in igm.__all__ and n != "*"]
            assert not unknown, f"{path.relative_to(ROOT)}:{line}: igm has no public {unknown}"
