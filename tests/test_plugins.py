"""Plugin layer: registration through hooks, lookups, errors, entry points and broken plugins."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import dd_plugins
from dd_plugins import manager
from dd_plugins.registry import collect, lookup
from reference_methods.cli import main as cli_main


class HalfWeighter:
    """Weight 0.5 everywhere (test plugin)."""

    requires = frozenset()

    def __init__(self, value: float = 0.5):
        self.value = value

    def weigh(self, ctx):
        return torch.full((ctx.labels.shape[0],), self.value)


class HalfPlugin:
    @dd_plugins.hookimpl
    def dd_register_weighters(self, register):
        register("half", HalfWeighter)


class DuplicatePlugin:
    @dd_plugins.hookimpl
    def dd_register_weighters(self, register):
        register("uniform", HalfWeighter)


@pytest.fixture
def registered():
    """Register plugins in-process for one test and always unregister them."""
    pm = dd_plugins.get_plugin_manager()
    names = []

    def register(plugin, name):
        pm.register(plugin, name=name)
        names.append(name)

    yield register
    for name in names:
        pm.unregister(name=name)


def test_builtin_weighters_are_listed():
    names = dd_plugins.list_weighters()
    assert {"uniform", "oracle"} <= set(names)
    assert names["uniform"].startswith("Every sample weight 1")


def test_in_process_plugin_register_use_unregister(registered):
    registered(HalfPlugin(), "half-plugin")
    assert "half" in dd_plugins.list_weighters()
    weighter = dd_plugins.get_weighter("half", value=0.25)
    labels = torch.tensor([0, 0, 1])
    ctx = dd_plugins.WeightContext(images=torch.zeros(3, 1, 2, 2), labels=labels, num_classes=2)
    assert torch.equal(weighter.weigh(ctx), torch.full((3,), 0.25))
    dd_plugins.get_plugin_manager().unregister(name="half-plugin")
    assert "half" not in dd_plugins.list_weighters()
    dd_plugins.get_plugin_manager().register(HalfPlugin(), name="half-plugin")


def test_unknown_name_lists_available_and_suggests_closest():
    with pytest.raises(dd_plugins.UnknownNameError) as info:
        dd_plugins.get_weighter("unifrom")
    message = str(info.value)
    assert "Did you mean 'uniform'?" in message
    assert "oracle" in message and "uniform" in message


def test_duplicate_name_names_both_plugins(registered):
    registered(DuplicatePlugin(), "dup-plugin")
    with pytest.raises(dd_plugins.DuplicateNameError) as info:
        dd_plugins.list_weighters()
    assert "dd_plugins.weighters.builtin" in str(info.value)
    assert "dup-plugin" in str(info.value)


def test_bad_factory_parameter_names_parameter_and_accepted(registered):
    registered(HalfPlugin(), "half-plugin")
    with pytest.raises(dd_plugins.ParameterError) as info:
        dd_plugins.get_weighter("half", valeu=1.0)
    message = str(info.value)
    assert "valeu" in message and "Did you mean 'value'?" in message and "Accepted parameters: value" in message


def test_uniform_has_no_parameters():
    with pytest.raises(dd_plugins.ParameterError, match="Accepted parameters: \\(none\\)"):
        dd_plugins.get_weighter("uniform", scale=2)


class FakeDist:
    def __init__(self, name: str, version: str = "9.9"):
        self.name = name
        self.version = version


class FakeEntryPoint:
    def __init__(self, name: str, loader, dist: str):
        self.name = name
        self._loader = loader
        self.dist = FakeDist(dist)

    def load(self):
        return self._loader()


class GoodModule:
    """Stands in for an imported plugin module."""

    @staticmethod
    @dd_plugins.hookimpl
    def dd_register_weighters(register):
        register("from-entry-point", HalfWeighter)


def _broken_loader():
    raise ImportError("No module named 'missing_dependency'")


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points and rebuild the manager around them."""

    def install(*entry_points):
        monkeypatch.setattr(manager.metadata, "entry_points", lambda group: list(entry_points))
        dd_plugins.reset_plugin_manager()

    yield install
    monkeypatch.undo()
    dd_plugins.reset_plugin_manager()


def test_entry_point_discovery(fake_entry_points):
    fake_entry_points(FakeEntryPoint("good", lambda: GoodModule, "dd-good"))
    assert "from-entry-point" in dd_plugins.list_weighters()
    rows = {row["name"]: row for row in manager.describe_plugins()}
    assert rows["good"]["distribution"] == "dd-good"
    assert rows["good"]["version"] == "9.9"
    assert rows["good"]["hooks"] == ["dd_register_weighters"]


def test_broken_plugin_is_skipped_with_warning_naming_distribution(fake_entry_points):
    with pytest.warns(UserWarning, match="dd-broken.*missing_dependency"):
        fake_entry_points(
            FakeEntryPoint("broken", _broken_loader, "dd-broken"),
            FakeEntryPoint("good", lambda: GoodModule, "dd-good"),
        )
        names = dd_plugins.list_weighters()
    assert "from-entry-point" in names and "uniform" in names


def test_run_asking_for_a_broken_plugins_name_raises(fake_entry_points):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fake_entry_points(FakeEntryPoint("broken", _broken_loader, "dd-broken"))
        with pytest.raises(dd_plugins.PluginLoadError, match="dd-broken"):
            dd_plugins.get_weighter("broken-weighter")
        assert isinstance(dd_plugins.get_weighter("uniform"), object)


def test_strict_mode_makes_any_plugin_failure_fatal(fake_entry_points, monkeypatch):
    monkeypatch.setenv("DD_PLUGINS_STRICT", "1")
    fake_entry_points(FakeEntryPoint("broken", _broken_loader, "dd-broken"))
    with pytest.raises(dd_plugins.PluginLoadError, match="'broken' from distribution 'dd-broken'"):
        dd_plugins.get_plugin_manager()


def test_cli_lists_and_prints_plugins_json(capsys, registered):
    registered(HalfPlugin(), "half-plugin")
    assert cli_main(["weighters"]) == 0
    out = capsys.readouterr().out
    assert "half" in out and "Weight 0.5 everywhere (test plugin)." in out
    assert cli_main(["plugins"]) == 0
    plugins = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert plugins["half-plugin"]["hooks"] == ["dd_register_weighters"]
    assert plugins["dd_plugins.weighters.builtin"]["distribution"] == "dd-plugins"


def test_cli_help_everywhere(capsys):
    for command in (["--help"], ["plugins", "--help"], ["weighters", "--help"], ["methods", "--help"],
                    ["datasets", "--help"], ["trainers", "--help"]):
        with pytest.raises(SystemExit) as info:
            cli_main(command)
        assert info.value.code == 0
        assert "usage: dd-distill" in capsys.readouterr().out


def test_every_kind_collects_without_error():
    for kind in ("weighter", "method", "dataset", "trainer"):
        for name, entry in collect(kind).items():
            assert lookup(kind, name) == entry
