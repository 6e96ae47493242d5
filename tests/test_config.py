"""Config dataclasses: typed --set parsing, TOML checks, and TOML output that reads back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from igm import config as cfg
from igm.errors import ConfigError


@dataclass
class Sample:
    lr: float = 1e-3
    steps: int = 10
    flag: bool = False
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    hidden: tuple[int, ...] = (4, 4)
    limit: float | None = None


def test_cli_strings_are_parsed_by_field_type():
    c = cfg.build(Sample, cfg.parse_sets(["lr=0.5", "steps=1_000", "flag=yes", "name=y", "mode=b", "hidden=8,16,32", "limit=none"]))
    assert c == Sample(0.5, 1000, True, "y", "b", (8, 16, 32), None)
    assert cfg.build(Sample, {"limit": "2.5"}).limit == 2.5


def test_toml_values_are_checked():
    assert cfg.build(Sample, {"lr": 1, "hidden": [1, 2]}).hidden == (1, 2)
    with pytest.raises(ConfigError, match="bad value 'x' for config key 'steps': expected an integer"):
        cfg.build(Sample, {"steps": "x"})
    with pytest.raises(ConfigError, match="expected an integer"):
        cfg.build(Sample, {"steps": 1.5})
    with pytest.raises(ConfigError, match="expected one of 'a', 'b'"):
        cfg.build(Sample, {"mode": "c"})
    with pytest.raises(ConfigError, match="expected true or false"):
        cfg.build(Sample, {"flag": "maybe"})
    with pytest.raises(ConfigError, match="finite number"):
        cfg.build(Sample, {"lr": "nan"})


def test_unknown_key_lists_the_valid_keys_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        cfg.build(Sample, {"stepz": "3"})
    message = str(err.value)
    assert "did you mean 'steps'" in message and "valid keys: lr (float), steps (int)" in message
    assert "\n" not in message


def test_set_without_equals_is_refused():
    with pytest.raises(ConfigError, match="--set expects key=value"):
        cfg.parse_sets(["lr"])


def test_toml_output_reads_back(tmp_path):
    sections = {"run": {"model": "gan", "steps": 5, "quoted": 'a "b"'}, "model": cfg.to_dict(Sample())}
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml(sections, header="hello"))
    doc = cfg.read_toml(path)
    assert doc["run"] == sections["run"]
    assert cfg.build(Sample, doc["model"]) == Sample()


def test_bad_toml_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[run\nsteps = ")
    with pytest.raises(ConfigError, match="is not valid TOML") as err:
        cfg.read_toml(path)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.read_toml(tmp_path / "missing.toml")


def test_fill_auto_sets_only_the_fields_still_at_their_auto_value():
    auto = {"lr": 0.0, "hidden": ()}
    table = {"lr": 3e-3, "hidden": (256, 256)}
    assert cfg.fill_auto(Sample(lr=0.0, hidden=()), table, auto) == Sample(lr=3e-3, hidden=(256, 256))
    # a value the user set stays, whatever the table says; fields the table does not name are untouched
    assert cfg.fill_auto(Sample(lr=0.5, hidden=(), steps=7), table, auto) == Sample(lr=0.5, hidden=(256, 256), steps=7)
    # a list, as TOML gives it, is the tuple it stands for: an empty list is still "auto"
    assert cfg.fill_auto(Sample(lr=0.0, hidden=[]), table, auto).hidden == (256, 256)  # type: ignore[arg-type]
    assert cfg.fill_auto(Sample(lr=0.0, hidden=[8]), table, auto).hidden == [8]  # type: ignore[arg-type]
