"""The registry: component name -> component, with the plugin that registered it.

Built once per process by calling every plugin's hooks one plugin at a time, so an exception
in one plugin's hook is recorded against that plugin and the rest keep working.
``get(kind, name)`` raises a one-line :class:`UnknownNameError` with a "did you mean" when a
name is close to a registered one.

A name two plugins register is settled the same way whatever order they load in: a
distribution bundled with igm (:data:`igm.plugins.BUNDLED`) keeps its names and the other
plugin's claim is refused; between two other plugins neither gets the name, so that
``igm fit NAME`` never quietly trains whichever loaded first. Both plugins carry the error
(``igm list plugins`` shows it) and using the name says which plugins to choose between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from igm.errors import PluginError, UnknownNameError, did_you_mean
from igm.hookspecs import KINDS
from igm.plugins import BUNDLED, PluginInfo, PluginSet, load_plugins, one_line

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
        self.claims: dict[tuple[str, str], list[Component]] = {}  # every registration, winners or not
        self.hook_errors: dict[str, str | None] = {}  # each plugin's own error (import, hooks), before clashes
        for name in list(plugins.infos):
            self._collect(plugins.infos[name])

    def _collect(self, info: PluginInfo) -> None:
        self.hook_errors[info.name] = info.error
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
                if any(c.kind == _kind and c.name == name for c in staged):
                    problems.append(f"{SINGULAR[_kind]} name '{name}' is registered twice by this plugin")
                    return
                staged.append(Component(_kind, name, obj, info))

            try:
                impl(register=register)
            except Exception as exc:  # a plugin's bug is reported against it, not fatal to others
                problems.append(one_line(f"{hook} raised {type(exc).__name__}: {exc}"))
        if problems:
            info.error = "; ".join(problems)
            self.hook_errors[info.name] = info.error
        for comp in staged:
            self.claims.setdefault((comp.kind, comp.name), []).append(comp)
        for key in dict.fromkeys((c.kind, c.name) for c in staged):  # in registration order
            self._settle(*key)

    def _settle(self, kind: str, name: str) -> None:
        """Give ``name`` to its one claimant, to the one bundled claimant, or to nobody; record why."""
        claimants = self.claims.get((kind, name), [])
        bundled = [c for c in claimants if c.plugin.dist in BUNDLED]
        winner = claimants[0] if len(claimants) == 1 else (bundled[0] if len(bundled) == 1 else None)
        if winner is None:
            self.components[kind].pop(name, None)
        else:
            self.components[kind][name] = winner
        for comp in claimants:
            registered = (kind, name) in comp.plugin.registered
            if comp is winner and not registered:
                comp.plugin.registered.append((kind, name))
            elif comp is not winner and registered:
                comp.plugin.registered.remove((kind, name))
        for info in {id(c.plugin): c.plugin for c in claimants}.values():
            self._refresh_error(info)

    def clash(self, kind: str, name: str, info: PluginInfo) -> str | None:
        """Why ``info``'s claim on ``name`` was refused (None when it holds the name or made no claim)."""
        claimants = self.claims.get((kind, name), [])
        winner = self.components[kind].get(name)
        if len(claimants) < 2 or (winner is not None and winner.plugin is info):
            return None
        what = SINGULAR[kind]
        if winner is not None:
            return (f"{what} name '{name}' is already taken by bundled plugin '{winner.plugin.name}' "
                    f"({winner.plugin.dist}), which keeps it")
        others = ", ".join(f"'{c.plugin.name}' ({c.plugin.dist or c.plugin.module})" for c in claimants if c.plugin is not info)
        return f"{what} name '{name}' is also registered by plugin {others}: neither is used; uninstall or disable one"

    def _refresh_error(self, info: PluginInfo) -> None:
        clashes = [self.clash(k, n, info) for (k, n), comps in self.claims.items() if any(c.plugin is info for c in comps)]
        parts = [self.hook_errors.get(info.name)] + sorted(c for c in clashes if c)
        info.error = "; ".join(p for p in parts if p) or None

    def withdraw(self, plugin_name: str) -> None:
        """Forget every claim of a plugin and settle again the names it claimed."""
        touched = []
        for key, comps in self.claims.items():
            kept = [c for c in comps if c.plugin.name != plugin_name]
            if len(kept) != len(comps):
                self.claims[key] = kept
                touched.append(key)
        for kind, name in touched:
            if self.components[kind].get(name) is not None and self.components[kind][name].plugin.name == plugin_name:
                del self.components[kind][name]
            self._settle(kind, name)
        self.hook_errors.pop(plugin_name, None)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def component(self, kind: str, name: str) -> Component:
        found = self.components[kind].get(name)
        if found is not None:
            return found
        what = SINGULAR[kind]
        contested = self.claims.get((kind, name), [])
        if len(contested) > 1:
            plugins = " and ".join(f"'{c.plugin.name}' ({c.plugin.dist or c.plugin.module})" for c in contested)
            raise UnknownNameError(
                f"{what} '{name}' is registered by plugins {plugins}, so igm uses neither: uninstall one, "
                f"or skip one with IGM_DISABLE_PLUGINS={contested[-1].plugin.name}"
            )
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
    """Undo :func:`add_plugin`: its names go back to whoever else claims them."""
    registry = get_registry()
    registry.withdraw(name)
    registry.plugins.remove(name)
