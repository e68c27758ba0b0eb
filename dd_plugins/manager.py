"""The plugin manager: built-in plugins plus the ``dd_plugins`` entry points, loaded one by one."""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import warnings
from dataclasses import dataclass

import pluggy

from dd_plugins import hookspecs
from dd_plugins.errors import PluginLoadError

ENTRY_POINT_GROUP = "dd_plugins"

# Modules of this project that register built-in components through the same hooks as any
# third-party plugin. Listed by name so that importing dd_plugins stays cheap.
DEFAULT_PLUGINS = (
    "dd_plugins.weighters.builtin",
    "reference_methods.datasets.plugin",
    "reference_methods.methods.plugin",
    "reference_methods.trainers.plugin",
)

hookimpl = pluggy.HookimplMarker("dd_plugins")


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to load: kept so a run that needs it can say why."""

    name: str
    distribution: str
    error: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus what we know about each plugin's distribution and failures."""

    def __init__(self) -> None:
        super().__init__("dd_plugins")
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self.broken: list[BrokenPlugin] = []


_manager: PluginManager | None = None


def _strict() -> bool:
    return os.environ.get("DD_PLUGINS_STRICT", "") not in ("", "0")


def _load_default_plugins(pm: PluginManager) -> None:
    version = metadata.version("dd-plugins") if _is_installed("dd-plugins") else "dev"
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        pm.distributions[module_name] = ("dd-plugins", version)


def _is_installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def load_entry_points(pm: PluginManager) -> None:
    """Load every ``dd_plugins`` entry point, one at a time, so one broken plugin spoils nothing else."""
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(entry_point.name):
            continue
        dist = entry_point.dist
        dist_name = dist.name if dist is not None else "unknown distribution"
        dist_version = dist.version if dist is not None else "?"
        try:
            module = entry_point.load()
            pm.register(module, name=entry_point.name)
        except Exception as exc:  # a plugin may fail in any way while importing
            message = f"{type(exc).__name__}: {exc}"
            if _strict():
                raise PluginLoadError(
                    f"plugin '{entry_point.name}' from distribution '{dist_name}' failed to load "
                    f"({message}). Fix or uninstall it, or unset DD_PLUGINS_STRICT to skip it."
                ) from exc
            pm.broken.append(BrokenPlugin(entry_point.name, dist_name, message))
            warnings.warn(
                f"dd_plugins: skipping plugin '{entry_point.name}' from distribution "
                f"'{dist_name}': {message}",
                stacklevel=2,
            )
            continue
        pm.distributions[entry_point.name] = (dist_name, dist_version)


def get_plugin_manager() -> PluginManager:
    """Return the process-wide plugin manager, building it on first use.

    Tests register and unregister plugins on it in-process:
    ``pm = get_plugin_manager(); pm.register(MyPlugin, name="mine"); ...; pm.unregister(name="mine")``.
    """
    global _manager
    if _manager is None:
        pm = PluginManager()
        _load_default_plugins(pm)
        load_entry_points(pm)
        _manager = pm
    return _manager


def reset_plugin_manager() -> None:
    """Forget the manager so the next call rebuilds it (after installing a plugin, in tests)."""
    global _manager
    _manager = None


def describe_plugins() -> list[dict]:
    """Name, version and implemented hooks of every registered plugin (for ``dd-distill plugins``)."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(impl.name for impl in _hookcallers(pm, plugin))
        distribution, version = pm.distributions.get(name, (None, None))
        rows.append({"name": name, "distribution": distribution, "version": version, "hooks": hooks})
    return rows


def _hookcallers(pm: PluginManager, plugin: object):
    return pm.get_hookcallers(plugin) or []
