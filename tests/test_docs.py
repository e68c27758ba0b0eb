"""Docs stay true to the code: every hook spec is documented with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

from dd_plugins import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def hook_specs():
    return [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("dd_register_")
    ]


def test_every_hook_spec_is_documented_with_its_signature():
    text = (DOCS / "plugin_hooks.md").read_text()
    specs = hook_specs()
    assert {name for name, _ in specs} >= {"dd_register_weighters", "dd_register_methods",
                                           "dd_register_datasets", "dd_register_trainers"}
    for name, fn in specs:
        assert f"## `{name}`" in text, f"{name} has no section in docs/plugin_hooks.md"
        assert f"def {name}{inspect.signature(fn)}" in text, f"{name}'s signature is not in docs/plugin_hooks.md"


def test_writing_a_weighter_matches_the_example_plugin():
    text = (DOCS / "writing_a_weighter.md").read_text()
    module = (Path(__file__).parent / "example_plugin" / "dd_example_weighter.py").read_text()
    assert 'example = "dd_example_weighter"' in text
    for line in ("class JitterWeighter:", 'register("jitter", JitterWeighter)',
                 "return 1 - self.spread + 2 * self.spread * noise"):
        assert line in module and line in text
