"""Name registries built from the hooks: look up, list and instantiate components by name."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from dd_plugins.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from dd_plugins.manager import get_plugin_manager
from dd_plugins.params import check_parameters, closest

KINDS = {
    "weighter": "dd_register_weighters",
    "method": "dd_register_methods",
    "dataset": "dd_register_datasets",
    "trainer": "dd_register_trainers",
}


@dataclass(frozen=True)
class Entry:
    """One registered component: its name, factory, description and the plugin that gave it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str


def _first_docstring_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def collect(kind: str) -> dict[str, Entry]:
    """Ask every plugin's hook for its components of ``kind``; duplicates are errors."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind '{kind}'; expected one of {sorted(KINDS)}")
    pm = get_plugin_manager()
    caller = getattr(pm.hook, KINDS[kind])
    entries: dict[str, Entry] = {}
    for impl in reversed(caller.get_hookimpls()):  # registration order

        def register(name: str, factory: Callable[..., Any], *, description: str | None = None,
                     _plugin: str = impl.plugin_name) -> None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"plugin '{_plugin}' registered a {kind} with an empty or non-string name")
            if name in entries:
                raise DuplicateNameError(
                    f"{kind} '{name}' is registered by both plugin '{entries[name].plugin}' and "
                    f"plugin '{_plugin}'. Uninstall one of them or rename the {kind}."
                )
            text = description if description is not None else _first_docstring_line(factory)
            entries[name] = Entry(kind, name, factory, text, _plugin)

        impl.function(register=register)
    return entries


def lookup(kind: str, name: str) -> Entry:
    """The entry for ``name``, or an error listing what exists (or which plugin failed to load)."""
    entries = collect(kind)
    if name in entries:
        return entries[name]
    broken = get_plugin_manager().broken
    if broken:
        details = "; ".join(f"'{b.name}' from distribution '{b.distribution}' ({b.error})" for b in broken)
        raise PluginLoadError(
            f"{kind} '{name}' is not available, and these plugins failed to load: {details}. "
            f"Fix or reinstall the plugin that provides '{name}'."
        )
    names = sorted(entries)
    hint = closest(name, names)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    raise UnknownNameError(
        f"unknown {kind} '{name}'.{did_you_mean} Available: {', '.join(names) or '(none)'}."
    )


def create(kind: str, name: str, **params: Any) -> Any:
    """Check ``params`` against the factory's signature, then call it."""
    entry = lookup(kind, name)
    check_parameters(entry.factory, params, where=f"{kind} '{name}'")
    return entry.factory(**params)


def list_names(kind: str) -> dict[str, str]:
    """Registered names of ``kind`` mapped to their one-line descriptions, sorted."""
    return {name: entry.description for name, entry in sorted(collect(kind).items())}


def get_weighter(name: str, **params: Any) -> Any:
    """Instantiate the weighter registered as ``name`` with ``params``."""
    return create("weighter", name, **params)


def get_method(name: str, **params: Any) -> Any:
    """Instantiate the distillation method registered as ``name`` with ``params``."""
    return create("method", name, **params)


def get_dataset_builder(name: str) -> Callable[..., Any]:
    """The builder registered as dataset ``name`` (call it with ``seed=`` and its parameters)."""
    return lookup("dataset", name).factory


def get_trainer(name: str, **params: Any) -> Any:
    """Instantiate the evaluation trainer registered as ``name`` with ``params``."""
    return create("trainer", name, **params)


def list_weighters() -> dict[str, str]:
    """Weighter names and descriptions."""
    return list_names("weighter")


def list_methods() -> dict[str, str]:
    """Method names and descriptions."""
    return list_names("method")


def list_datasets() -> dict[str, str]:
    """Dataset names and descriptions."""
    return list_names("dataset")


def list_trainers() -> dict[str, str]:
    """Trainer names and descriptions."""
    return list_names("trainer")
