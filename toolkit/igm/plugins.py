"""Plugin discovery: the pluggy manager, entry points, error isolation and allow/deny lists.

Plugins are modules named by entry points in the ``igm`` group
(``[project.entry-points.igm] gan = "igm_gan"``). Each one is imported on its own: one that
fails to import, or that implements a hook that does not exist (a misspelling), is recorded
with its distribution and error and left out, and the others keep working.

``IGM_PLUGINS=a,b`` loads only the named plugins; ``IGM_DISABLE_PLUGINS=c`` skips the named
ones. The core's built-ins (plugin ``igm``) are always loaded.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from igm import hookspecs
from igm.errors import did_you_mean

GROUP = "igm"
CORE = "igm"
# distributions shipped with igm: a name one of them registers stays theirs whatever else is installed
BUNDLED = frozenset(
    {"igm-toolkit", "igm-gan", "igm-cgan", "igm-iwgan", "igm-gan-si", "igm-sig", "igm-mmd", "igm-rbm", "igm-vae",
     "igm-aavae", "igm-ebm", "igm-dbn"}
)


@dataclass
class PluginInfo:
    """One plugin as ``igm list plugins`` shows it."""

    name: str  # entry-point name (or the name given to an inline plugin)
    dist: str | None = None  # distribution that provides it
    version: str | None = None
    module: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    error: str | None = None  # why it failed to load or register, if it did
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.dist,
            "version": self.version,
            "module": self.module,
            "hooks": self.hooks,
            "registered": {k: [n for kk, n in self.registered if kk == k] for k in sorted({k for k, _ in self.registered})},
            "error": self.error,
            "disabled": self.disabled,
        }


def one_line(text: str) -> str:
    """Collapse an error text (pluggy's can span lines) into one line."""
    return " ".join(text.split())


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _unknown_hooks(plugin: Any) -> list[str]:
    """Hook implementations on ``plugin`` whose names are not igm hooks (misspellings)."""
    bad = []
    for attr in dir(plugin):
        fn = getattr(plugin, attr, None)
        if getattr(fn, "igm_impl", None) is not None and attr not in hookspecs.HOOKS:
            bad.append(f"'{attr}'{did_you_mean(attr, hookspecs.HOOKS)}")
    return bad


class PluginSet:
    """The pluggy manager plus what happened to each plugin while loading."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def add(self, module: Any, name: str, dist: str | None = None, version: str | None = None) -> PluginInfo:
        """Register an imported plugin object (a module, or any object with hook functions)."""
        info = PluginInfo(name, dist, version, getattr(module, "__name__", type(module).__name__))
        taken = self.infos.get(name)
        if taken is not None:  # report it, but leave the plugin that has the name alone
            info.error = f"plugin name '{name}' is already taken by {taken.dist or taken.module}"
            return info
        self.infos[name] = info
        bad = _unknown_hooks(module)
        if bad:
            info.error = f"unknown hook {', '.join(bad)}; the hooks are: {', '.join(hookspecs.HOOKS)}"
            return info
        try:
            self.pm.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            info.error = one_line(f"{type(exc).__name__}: {exc}")
            return info
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(module) or [])
        return info

    def remove(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.infos.pop(name, None)

    def load_entry_points(self) -> None:
        allow, deny = _names("IGM_PLUGINS"), _names("IGM_DISABLE_PLUGINS") or set()
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name, version = (dist.metadata["Name"], dist.version) if dist else (None, None)
            if ep.name in self.infos:
                first = self.infos[ep.name]
                if first.dist != dist_name and not first.error:
                    first.error = f"entry point '{ep.name}' is also provided by {dist_name}, which was skipped"
                continue
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                self.infos[ep.name] = PluginInfo(ep.name, dist_name, version, ep.value, disabled=True)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                self.infos[ep.name] = PluginInfo(
                    ep.name, dist_name, version, ep.value, error=one_line(f"failed to import: {type(exc).__name__}: {exc}")
                )
                continue
            self.add(module, ep.name, dist_name, version)


def core_plugin() -> ModuleType:
    return importlib.import_module("igm.builtins")


def load_plugins() -> PluginSet:
    """The core's built-ins and every installed plugin, each isolated from the others' errors."""
    plugins = PluginSet()
    from igm import __version__

    plugins.add(core_plugin(), CORE, "igm-toolkit", __version__)
    plugins.load_entry_points()
    return plugins
