"""Config dataclasses: checked overrides from ``--set key=value`` and TOML, and TOML output.

Every model (and the run itself) is configured by a dataclass. Values from the command line
arrive as strings and are parsed by the field's type; values from TOML arrive typed and are
checked. An unknown key or a value of the wrong type is a :class:`ConfigError` that lists the
valid keys, so a typo never silently trains the wrong thing.

Numbers obey one rule for every config, so that the whole class of out-of-range values is
refused at the boundary: a number is finite, non-negative and within float32's range (an int
below 2**63), and the numbers in a list (layer sizes, bandwidths) are positive. A field that
may be negative says so with ``field(metadata={"signed": True})``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from igm.errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` (a CLI string or a TOML value) to type ``tp``; raise ValueError."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            if type(None) in args:
                return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ValueError:
                continue
        raise ValueError(f"expected {_type_name(tp)}")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"expected one of {', '.join(repr(a) for a in args)}")
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [s.strip() for s in text.split(",") if s.strip()] if text else []
        if not isinstance(items, (list, tuple)):
            raise ValueError("expected a list, e.g. 1,2,3")
        inner = args[0] if args else Any
        converted = [_convert(item, inner, key) for item in items]
        return tuple(converted) if origin is tuple else converted
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ValueError("expected an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(out):
                    return out
        raise ValueError("expected a finite number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected a string")
    raise ValueError(f"unsupported config type {_type_name(tp)}")


def field_types(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def describe_keys(cls: type) -> str:
    return ", ".join(f"{k} ({_type_name(t)})" for k, t in field_types(cls).items())


@dataclasses.dataclass
class EmptyConfig:
    """The config of a component with nothing to configure (a model, a divergence)."""


FLOAT32_MAX = 3.4028234663852886e38


def _check_number(value: Any, signed: bool, in_list: bool) -> None:
    """ValueError unless ``value`` (already converted) obeys the module's rule for numbers."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_number(item, signed, in_list=True)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
        raise ValueError("expected a finite number within float32's range (|x| <= 3.4e38)")
    if isinstance(value, int) and abs(value) >= 2**63:
        raise ValueError("expected an integer below 2**63")
    if in_list and value <= 0:
        raise ValueError("expected positive numbers in the list")
    if not signed and value < 0:
        raise ValueError("expected a number >= 0")


def build(cls: type[T], values: dict[str, Any] | None = None, what: str = "config") -> T:
    """Build ``cls`` from defaults plus ``values`` (strings or typed); unknown or bad keys raise."""
    types_ = field_types(cls)
    signed = {f.name for f in dataclasses.fields(cls) if f.metadata.get("signed")}
    kwargs = {}
    for key, value in (values or {}).items():
        if key not in types_:
            raise ConfigError(
                f"unknown {what} key '{key}'{did_you_mean(key, types_)}; valid keys: {describe_keys(cls)}"
            )
        try:
            kwargs[key] = _convert(value, types_[key], key)
            _check_number(kwargs[key], key in signed, in_list=False)
        except ValueError as exc:
            raise ConfigError(f"bad value {value!r} for {what} key '{key}': {exc}") from None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"invalid {what}: {exc}") from None


def refuse_unread(config: Any, names: tuple[str, ...], where: str) -> None:
    """ConfigError naming the first of ``names`` that ``config`` sets away from its default: nothing reads it."""

    for field in dataclasses.fields(config):
        if field.name not in names or field.default is dataclasses.MISSING:
            continue
        value = getattr(config, field.name)
        if value != field.default and not (isinstance(value, (list, tuple)) and tuple(value) == tuple(field.default)):
            raise ConfigError(
                f"{field.name}={value!r} has no effect with {where}: drop it (or choose a setting that reads it)"
            )


def fill_auto(config: T, table: Mapping[str, Any], auto: Mapping[str, Any]) -> T:
    """``config`` with each field named in ``table`` that still holds its "auto" value (``auto[name]``)
    set to ``table[name]``: a family's defaults for one kind of data. A value the user set is never
    replaced; a list (as TOML gives it) compares as the tuple it stands for."""

    def plain(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    fill = {name: value for name, value in table.items() if plain(getattr(config, name)) == auto[name]}
    return dataclasses.replace(config, **fill)  # type: ignore[type-var]


def as_stored_then(cls: type, stored: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` (a config table that a checkpoint or a run's ``config.toml`` holds) with each setting it leaves out
    that ``cls.ABSENT_FROM_OLDER_FILES`` names set to what the igm that wrote it did there. A field whose new default
    differs from that older behaviour lists it, so files written before the field existed load and resume as they
    were trained."""
    return {**getattr(cls, "ABSENT_FROM_OLDER_FILES", {}), **stored}


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON- and TOML-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` raises."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: give the path of a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}): fix the file or drop --config") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    """Write ``{section: {key: value}}`` as TOML (None values are left out)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in sections.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(v)}" for key, v in values.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"

