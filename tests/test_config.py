"""Config loading: validation errors with dotted paths, overrides, presets and per-component tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from dd_plugins.params import accepted_parameters
from dd_plugins.registry import collect
from pipeline_fakes import BASE, registered, write_config
from reference_methods.config import (
    RUN_DEFAULTS,
    ConfigError,
    available_presets,
    eval_defaults,
    load_config,
    load_raw,
    parse_override,
    preset_layers,
    resolve,
    shipped_configs,
)
from reference_methods.grid import expand_grid


@pytest.fixture(autouse=True)
def fakes():
    with registered():
        yield


def error_of(tmp_path, body: str, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, body), overrides)
    return str(info.value)


def test_base_config_resolves_with_factory_defaults_filled_in(tmp_path):
    config = load_config(write_config(tmp_path, BASE))
    assert config.method.name == "top"
    assert config.method.params == {"ipc": 2, "iterations": 1, "fail": False, "syn_lr": None, "interrupt": False}
    assert config.data.params == {"per_class": 20, "conflicting_share": 0.1}  # seed is the run's, not a key
    assert config.eval["trainer"] == "erm" and config.eval["epochs"] == 2
    assert config.run == {"seed": 0, "device": "cpu", "out_dir": "runs", "preset": "none", "cache_dir": ""}
    assert config.to_dict()["method"] == {"name": "top", "ipc": 2, "iterations": 1, "fail": False, "syn_lr": None, "interrupt": False}


def test_unknown_key_names_its_dotted_path_and_the_closest_key(tmp_path):
    message = error_of(tmp_path, BASE.replace("ipc = 2", "ipc = 2\niteratons = 3"))
    assert "method.iteratons: unknown key; did you mean iterations?" in message


def test_wrong_type_and_zero_ipc(tmp_path):
    assert "method.ipc: expected int, got str ('ten')" in error_of(tmp_path, BASE.replace("ipc = 2", 'ipc = "ten"'))
    assert "method.ipc: must be at least 1, got 0" in error_of(tmp_path, BASE.replace("ipc = 2", "ipc = 0"))


def test_all_problems_are_reported_at_once(tmp_path):
    body = BASE.replace("ipc = 2", "ipc = 2\niteratons = 3") + '\n[runn]\nseed = 1\n'
    with pytest.raises(ConfigError) as info:
        load_raw(write_config(tmp_path, body))
    assert "runn: unknown section; did you mean run?" in str(info.value)
    message = error_of(tmp_path, BASE.replace('device = "cpu"', 'device = "cpu"\nsed = 1').replace("ipc = 2", "ipz = 2"))
    assert "2 problems" in message
    assert "run.sed: unknown key; did you mean seed?" in message
    assert "method.ipz: unknown key; did you mean ipc?" in message


def test_unknown_component_names_list_the_available_ones(tmp_path):
    message = error_of(tmp_path, BASE.replace('name = "top"', 'name = "tpo"'))
    assert "method.name: unknown method 'tpo'; did you mean top?" in message
    message = error_of(tmp_path, BASE, {"eval.trainer": "ermm"})
    assert "eval.trainer: unknown trainer 'ermm'; did you mean erm?" in message


def test_data_seed_is_reserved_for_the_run(tmp_path):
    assert "data.seed: set by the run" in error_of(tmp_path, BASE.replace('name = "tiny"', 'name = "tiny"\nseed = 3'))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_raw(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="Did you mean 'quickstart'"):
        load_raw("quickstar")
    bad = tmp_path / "bad.toml"
    bad.write_text("[method\nname = dm\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_raw(bad)


def test_overrides_are_typed_by_toml_rules():
    assert parse_override("method.iterations=5") == ("method.iterations", 5)
    assert parse_override("data.conflict_ratio=0.01") == ("data.conflict_ratio", 0.01)
    assert parse_override("eval.dsa=false") == ("eval.dsa", False)
    assert parse_override("weighter.name=kde") == ("weighter.name", "kde")
    assert parse_override('eval.baselines=["random_real"]') == ("eval.baselines", ["random_real"])
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("iterations")


def test_overrides_win_over_the_file_and_are_validated(tmp_path):
    path = write_config(tmp_path, BASE)
    assert load_config(path, {"method.ipc": 3}).method.params["ipc"] == 3
    assert load_config(path, {"data.conflicting_share": 1}).data.params["conflicting_share"] == 1.0  # int -> float
    with pytest.raises(ConfigError, match="method.ipc: expected int"):
        load_config(path, {"method.ipc": "x"})
    with pytest.raises(ConfigError, match="mthod: unknown section; did you mean method"):
        load_config(path, {"mthod.ipc": 3})


DM = BASE.replace('name = "top"', 'name = "dm"')


def test_preset_layers_below_the_file_and_the_overrides(tmp_path):
    plain = write_config(tmp_path, DM)
    assert load_config(plain).method.params["iterations"] == 20000  # DM's own default
    quick = load_raw(write_config(tmp_path, DM.replace('device = "cpu"', 'device = "cpu"\npreset = "quick"')))
    assert resolve(quick).method.params["iterations"] == 200  # preset [method.dm]
    assert resolve(quick).eval["num_eval"] == 1  # the file's [eval] wins over the preset's
    assert resolve(quick, {"method.iterations": 5}).method.params["iterations"] == 5
    assert resolve(quick, {"run.preset": "none"}).method.params["iterations"] == 20000
    with pytest.raises(ConfigError, match="unknown preset 'quik'; did you mean quick"):
        resolve(quick, {"run.preset": "quik"})


def test_preset_tables_for_one_dataset_win_over_its_generic_tables():
    preset = {"method": {"dm": {"iterations": 5}}, "by_dataset": {"cmnist": {"method": {"dm": {"iterations": 7}}}}}
    generic, specific = preset_layers(preset, "cmnist")
    assert generic == {"method": {"dm": {"iterations": 5}}}
    assert specific == {"method": {"dm": {"iterations": 7}}}
    assert preset_layers(preset, "cdigits")[1] == {}


def test_quick_preset_slows_mtt_experts_on_all_but_the_small_cdigits():
    """A weighted expert at batch 128 learns CMNIST inside its first epoch (docs/results.md, table 2)."""
    raw = load_raw("bench/cmnist_methods_cpu")
    batch = {name: resolve(raw, {"method.name": "mtt", "data.name": name, "run.seed": 0,
                                 "weighter.name": "kde"}).method.params["batch_train"]
             for name in ("cmnist", "bg_fmnist", "cdigits")}
    assert batch == {"cmnist": 1024, "bg_fmnist": 1024, "cdigits": 128}
    dsa = resolve(raw, {"method.name": "dsa", "run.seed": 0, "weighter.name": "kde"}).method.params
    assert (dsa["batch_train"], dsa["lr_img"]) == (128, 1.0)


def test_component_tables_apply_only_to_the_selected_component(tmp_path):
    body = DM + "\n[method.dm]\niterations = 70\n\n[method.top]\nfail = true\n"
    raw = load_raw(write_config(tmp_path, body))
    assert resolve(raw).method.params["iterations"] == 70
    assert resolve(raw, {"method.iterations": 5}).method.params["iterations"] == 5  # a later layer wins
    top = resolve(raw, {"method.name": "top"})
    assert top.method.params == {"ipc": 2, "iterations": 1, "fail": True, "syn_lr": None, "interrupt": False}


def test_trainer_args_are_checked_against_the_trainer(tmp_path):
    path = write_config(tmp_path, BASE)
    config = load_config(path, {"eval.trainer": "lff", "eval.trainer_args.lff.q": 0.5, "eval.trainer_args.dfa.q": 0.9})
    assert config.eval["trainer_args"]["q"] == 0.5
    with pytest.raises(ConfigError, match="eval.trainer_args.qq: unknown key; did you mean q"):
        load_config(path, {"eval.trainer": "lff", "eval.trainer_args.qq": 0.5})


def test_a_grid_config_needs_the_grid_runner_or_fixed_axes(tmp_path):
    path = write_config(tmp_path, BASE + '\n[grid]\n"method.ipc" = [1, 2]\n')
    with pytest.raises(ConfigError, match="is a grid over method.ipc"):
        load_config(path)
    assert load_config(path, {"method.ipc": 3}).method.params["ipc"] == 3


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_resolves_under_every_preset(name):
    raw = load_raw(name)
    for preset in available_presets():
        cells = expand_grid(raw, {"run.preset": preset})
        assert cells, name


def test_docs_list_every_key_of_every_built_in_component():
    docs = (Path(__file__).parent.parent / "docs" / "configs.md").read_text()
    keys = set(RUN_DEFAULTS) | set(eval_defaults()[0])
    for kind in ("dataset", "weighter", "method", "trainer"):
        for name, entry in collect(kind).items():
            if entry.plugin.startswith(("dd_plugins.", "reference_methods.")):
                assert f"**`{name}`**" in docs, name
                keys |= set(accepted_parameters(entry.factory)) - {"seed"}
    assert [k for k in sorted(keys) if f"| `{k}` |" not in docs] == []
