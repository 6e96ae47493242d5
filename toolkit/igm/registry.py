"""The registry: component name -> component, with the plugin that registered it.

Built once per process by calling every plugin's hooks one plugin at a time, so an exception
in one plugin's hook, or a name it registers that another plugin already took, is recorded
against that plugin and the rest keep working. ``get(kind, name)`` raises a one-line
:class:`UnknownNameError` with a "did you mean" when a name is close to a registered one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from igm.errors import PluginError, UnknownNameError, did_you_mean
from igm.hookspecs import KINDS
from igm.plugins import PluginInfo, PluginSet, load_plugins, one_line

NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")  # \Z, not $: "gan\n" is no name
SINGULAR = {"models": "model", "divergences": "divergence", "datasets": "data source", "metrics": "metric", "trainers": "trainer"}


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    obj: Any
    plugin: PluginInfo

    @property
    def summary(self) -> str:
        doc = getattr(self.obj, "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS.values()}
        for name in list(plugins.infos):
            self._collect(plugins.infos[name])

    def _collect(self, info: PluginInfo) -> None:
        plugin = self.plugins.pm.get_plugin(info.name)
        if plugin is None or info.error:
            return
        staged: list[Component] = []
        problems: list[str] = []

        impls = {
            caller.name: impl.function
            for caller in self.plugins.pm.get_hookcallers(plugin) or []
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin
        }
        for hook, kind in KINDS.items():
            impl = impls.get(hook)
            if impl is None:
                continue

            def register(name: str, obj: Any, _kind: str = kind) -> None:
                if not isinstance(name, str) or not NAME.match(name):
                    problems.append(f"invalid {SINGULAR[_kind]} name {name!r} (use lowercase letters, digits, '-' and '_')")
                    return
                taken = self.components[_kind].get(name) or next(
                    (c for c in staged if c.kind == _kind and c.name == name), None
                )
                if taken is not None:
                    problems.append(f"{SINGULAR[_kind]} name '{name}' is already taken by plugin '{taken.plugin.name}'")
                    return
                staged.append(Component(_kind, name, obj, info))

            try:
                impl(register=register)
            except Exception as exc:  # a plugin's bug is reported against it, not fatal to others
                problems.append(one_line(f"{hook} raised {type(exc).__name__}: {exc}"))
        for comp in staged:
            self.components[comp.kind][comp.name] = comp
            info.registered.append((comp.kind, comp.name))
        if problems:
            info.error = "; ".join(problems)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def component(self, kind: str, name: str) -> Component:
        found = self.components[kind].get(name)
        if found is not None:
            return found
        what = SINGULAR[kind]
        hint = did_you_mean(name, self.components[kind])
        failed = self.plugins.infos.get(name)
        if failed is not None and failed.error:
            raise UnknownNameError(
                f"{what} '{name}' is unavailable: plugin '{name}' ({failed.dist or failed.module}) failed: {failed.error}"
            )
        if failed is not None and failed.disabled:
            raise UnknownNameError(f"{what} '{name}' is provided by plugin '{name}', which IGM_PLUGINS/IGM_DISABLE_PLUGINS turned off")
        known = ", ".join(self.names(kind)) or "none"
        raise UnknownNameError(f"unknown {what} '{name}'{hint}; installed: {known} (see 'igm list {kind}')")

    def get(self, kind: str, name: str) -> Any:
        return self.component(kind, name).obj


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = Registry(load_plugins())
    return _registry


def reset_registry() -> None:
    """Forget the registry so the next use rebuilds it (tests, after adding a plugin)."""
    global _registry
    _registry = None


def add_plugin(plugin: Any, name: str) -> PluginInfo:
    """Register an in-process plugin (a module or an object with hook functions) and its components.

    A name already in use raises :class:`PluginError`; other problems are recorded on the info.
    """
    registry = get_registry()
    info = registry.plugins.add(plugin, name, dist=None, version=None)
    if registry.plugins.infos.get(name) is not info:
        raise PluginError(info.error or f"plugin name '{name}' is already taken")
    registry._collect(info)
    return info


def remove_plugin(name: str) -> None:
    """Undo :func:`add_plugin`: the registry is rebuilt without it on next use."""
    registry = get_registry()
    registry.plugins.remove(name)
    for kind in registry.components.values():
        for key in [k for k, c in kind.items() if c.plugin.name == name]:
            del kind[key]
