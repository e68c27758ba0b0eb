"""Experiment configs: TOML files, presets, ``--set`` overrides, and validation against the factories.

A config names ``[data]``, ``[weighter]``, ``[method]``, ``[eval]`` and ``[run]``; a ``[grid]``
table (dotted key -> list of values) makes it a comparison (see ``reference_methods.grid``).
Values are layered, later wins:

    component defaults < preset (``run.preset``) < the file's keys < grid cell < ``--set``

Every key other than ``name`` in ``[data]``, ``[weighter]`` and ``[method]`` goes to that
component's factory and is checked against the factory's signature and type hints, so a typo is
an error naming its dotted path before anything runs. The resolved config (every parameter,
defaults filled in) is what a run saves as ``config.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import inspect
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_plugins import DDPluginsError
from dd_plugins.params import (
    accepted_parameters,
    check_parameter_types,
    closest,
    coerce_value,
    describe_type,
    parameter_types,
)
from dd_plugins.registry import collect

COMPONENTS = {"data": "dataset", "weighter": "weighter", "method": "method"}
SECTIONS = ("run", "data", "weighter", "method", "eval")
TOP_LEVEL = (*SECTIONS, "grid", "launcher", "description")  # [launcher]: job settings, read by reference_methods.launchers

RUN_DEFAULTS: dict[str, Any] = {
    "seed": 0,  # run seed; every component gets its own seed derived from it
    "device": "auto",  # "auto" = CUDA when present, else CPU
    "out_dir": "runs",  # runs go to out_dir/<config name>
    "preset": "none",  # "none", "quick" or "paper" (reference_methods/configs/presets/)
    "cache_dir": "",  # KDE embeddings and baseline metrics; "" = .cache in the run (or grid) folder
}
BASELINES = ("random_real", "whole_train")
# [eval] keys that are not keywords of evaluate_set or fields of TrainSchedule.
EVAL_OWN_DEFAULTS: dict[str, Any] = {
    "trainer": "erm",  # evaluation trainer (dd-distill trainers)
    "trainer_args": {},  # parameters of that trainer's factory
    "baselines": list(BASELINES),  # which baselines to evaluate next to the synthetic set
    "whole_train_epochs": 30,  # epochs of the whole-train-split baseline (it sees far more data per epoch)
    "whole_train_lr": 0.05,  # its lr: ordinary supervised training, not the few-image synthetic-set regime
    "learned_lr": True,  # train on a set with the lr its method learned (MTT's syn_lr), as MTT evaluates
}
# evaluate_set keywords that the run sets itself, never the config.
EVAL_RUN_KEYWORDS = ("images", "labels", "data", "trainer", "schedule", "device", "seed", "progress")
POSITIVE_INTS = ("method.ipc", "eval.num_eval", "eval.epochs", "eval.batch_size", "eval.whole_train_epochs")
POSITIVE_FLOATS = ("eval.lr", "eval.whole_train_lr")


class ConfigError(DDPluginsError, ValueError):
    """A config that cannot run: missing or malformed file, unknown key, wrong type, bad value."""


@dataclass(frozen=True)
class Component:
    """A named component and its factory parameters (JSON values, defaults filled in)."""

    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class RunConfig:
    """One validated experiment: what ``reference_methods.pipeline.run_experiment`` runs."""

    name: str
    run: dict[str, Any]
    data: Component
    weighter: Component
    method: Component
    eval: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as saved in ``config.json`` (JSON types only)."""
        out = {"name": self.name, "run": self.run, "eval": self.eval}
        for section in COMPONENTS:
            component = getattr(self, section)
            out[section] = {"name": component.name, **component.params}
        return json.loads(json.dumps(out))

    @property
    def seed(self) -> int:
        return self.run["seed"]


@dataclass(frozen=True)
class RawConfig:
    """A config file as written: its tables (without ``[grid]``) and its grid axes."""

    name: str
    path: str
    tables: dict[str, Any]
    grid: dict[str, list[Any]]
    description: str = ""


# ---------------------------------------------------------------- finding and parsing files

def _configs_root():
    return importlib.resources.files("reference_methods.configs")


def shipped_configs() -> list[str]:
    """Names of the configs shipped with the package (``quickstart``, ``cmnist_dm``, ``bench/...``)."""
    root = _configs_root()
    names = [p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml")]
    bench = root / "bench"
    if bench.is_dir():
        names += [f"bench/{p.name[:-5]}" for p in bench.iterdir() if p.name.endswith(".toml")]
    return sorted(names)


def available_presets() -> list[str]:
    """Preset names: ``none`` plus every file in ``reference_methods/configs/presets/``."""
    presets = _configs_root() / "presets"
    return ["none", *sorted(p.name[:-5] for p in presets.iterdir() if p.name.endswith(".toml"))]


def find_config(source: str | Path) -> tuple[str, str]:
    """(name, TOML text) of a config given by path or by shipped name."""
    path = Path(source)
    if path.is_file():
        try:
            return path.stem, path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}. Check the path and its permissions.") from None
    shipped = shipped_configs()
    if str(source) in shipped:
        return path.name, (_configs_root() / f"{source}.toml").read_text()
    if path.suffix == ".toml":
        raise ConfigError(f"config file {path} does not exist. Check the path, or name a shipped config "
                          f"({', '.join(shipped)}).")
    hint = closest(str(source), shipped)
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    raise ConfigError(f"no config file or shipped config named '{source}'.{did_you_mean} "
                      f"Shipped configs: {', '.join(shipped)}; or give the path of a TOML file.")


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """TOML text as a dict; a syntax error says where and what to fix."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {where}: {exc}. Fix the TOML syntax (strings need quotes, "
                          "tables are [section], keys are key = value).") from None


def load_raw(source: str | Path) -> RawConfig:
    """Read a config by path or shipped name, checking only its outline (sections and grid)."""
    name, text = find_config(source)
    where = f"config '{source}'"
    doc = parse_toml(text, where)
    problems = []
    for key, value in doc.items():
        if key not in TOP_LEVEL:
            problems.append(_unknown(key, TOP_LEVEL, "section"))
        elif key in SECTIONS and not isinstance(value, dict):
            problems.append(f"{key}: expected a table [{key}], got {type(value).__name__}")
    grid = doc.get("grid", {})
    if not isinstance(grid, dict):
        problems.append("grid: expected a table [grid] of dotted key = list of values")
        grid = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            problems.append(f"grid.\"{key}\": expected a non-empty list of values, got {values!r}")
        if key.split(".")[0] not in SECTIONS:
            problems.append(f"grid.\"{key}\": the key must start with a section ({', '.join(SECTIONS)})")
    _raise_problems(problems, where)
    tables = {k: v for k, v in doc.items() if k in SECTIONS}
    return RawConfig(name, str(source), tables, grid, str(doc.get("description", "")))


# ---------------------------------------------------------------- overrides

def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` -> (dotted key, value typed by TOML rules; bare words are strings)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or "." not in key or not key.split(".")[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set method.iterations=100.")
    value = value.strip()
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Several ``--set`` items as a dict of dotted key -> value (a later item wins)."""
    return dict(parse_override(item) for item in items)


def set_dotted(tables: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tables[a][b][c] = value`` for ``a.b.c``, creating tables on the way."""
    *parents, last = dotted.split(".")
    node = tables
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parents[:i + 1])} is a value, not a table; cannot set {dotted}.")
        node = child
    node[last] = value


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------- presets

def load_preset(name: str) -> dict[str, Any]:
    """The preset's tables, written like a config file's (``[eval]``, ``[method.dm]``, ...) plus
    ``[by_dataset.<data name>....]`` for what depends on the dataset; ``none`` is empty."""
    if name == "none":
        return {}
    presets = available_presets()
    if name not in presets:
        hint = closest(name, presets)
        did_you_mean = f"; did you mean {hint}?" if hint else "."
        raise ConfigError(f"run.preset: unknown preset '{name}'{did_you_mean} Available: {', '.join(presets)}.")
    return parse_toml((_configs_root() / "presets" / f"{name}.toml").read_text(), f"preset '{name}'")


def preset_layers(preset: dict[str, Any], data_name: str | None) -> list[dict[str, Any]]:
    """The preset's generic tables, then its tables for ``data_name`` (which win)."""
    generic = {k: v for k, v in preset.items() if k != "by_dataset"}
    specific = preset.get("by_dataset", {}).get(data_name, {}) if data_name else {}
    return [generic, specific]


def select_components(layer: dict[str, Any], names: dict[str, str | None], trainer: str | None) -> dict[str, Any]:
    """One layer with its per-component tables applied: in ``[method]`` a table named after a
    registered method (``[method.dm]``) holds parameters for that method only; they are used when
    it is the selected one (and win over the layer's plain keys) and dropped otherwise. The same
    holds for ``[weighter.<name>]``, ``[data.<name>]`` and ``[eval.trainer_args.<trainer>]``."""
    out = copy.deepcopy(layer)

    def pick(table: dict[str, Any], kind: str, selected: str | None) -> dict[str, Any]:
        registered = collect(kind)
        specific = {k: v for k, v in table.items() if isinstance(v, dict) and k in registered}
        plain = {k: v for k, v in table.items() if k not in specific}
        return {**plain, **specific.get(selected, {})}

    for section, kind in COMPONENTS.items():
        if isinstance(out.get(section), dict):
            out[section] = pick(out[section], kind, names.get(section))
    trainer_args = out.get("eval", {}).get("trainer_args") if isinstance(out.get("eval"), dict) else None
    if isinstance(trainer_args, dict):
        out["eval"]["trainer_args"] = pick(trainer_args, "trainer", trainer)
    return out


# ---------------------------------------------------------------- validation

def _unknown(key: str, known, what: str = "key", path: str = "") -> str:
    hint = closest(key, list(known))
    where = f"{path}.{key}" if path else key
    if hint:
        return f"{where}: unknown {what}; did you mean {hint}?"
    return f"{where}: unknown {what}. Known: {', '.join(sorted(known)) or '(none)'}"


def _raise_problems(problems: list[str], where: str) -> None:
    if not problems:
        return
    if len(problems) == 1:
        raise ConfigError(f"{where}: {problems[0]}. Fix the file or the --set override.")
    listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
    raise ConfigError(f"{where} has {len(problems)} problems: {listed}. Fix the file or the --set overrides.")


def _json_default(value: Any) -> tuple[bool, Any]:
    """(True, JSON form) for a default TOML/JSON can hold, else (False, None)."""
    try:
        return True, json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return False, None


def _check_factory_params(factory, params: dict[str, Any], path: str, reserved: tuple[str, ...],
                          problems: list[str]) -> dict[str, Any]:
    """Unknown/missing/mistyped keys become problems; returns params with the factory's defaults filled in."""
    accepted = {k: p for k, p in accepted_parameters(factory).items() if k not in reserved}
    takes_var_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    ok = True
    for key in params:
        if key in reserved:
            problems.append(f"{path}.{key}: set by the run, not the config (use run.seed for seeds)")
            ok = False
        elif key not in accepted and not takes_var_kwargs:
            problems.append(_unknown(key, accepted, path=path))
            ok = False
    for key, p in accepted.items():
        if p.default is p.empty and key not in params:
            problems.append(f"{path}.{key}: missing; this component requires it")
            ok = False
    if not ok:
        return params
    try:
        check_parameter_types(factory, params, path)
    except DDPluginsError as exc:
        problems.append(str(exc))
    filled = {}
    for key, p in accepted.items():
        if p.default is not p.empty:
            storable, value = _json_default(p.default)
            if storable:
                filled[key] = value
    filled.update(params)
    return filled


def _resolve_component(section: str, table: dict[str, Any], problems: list[str], default_name: str | None,
                       reserved: tuple[str, ...] = ()) -> Component:
    kind = COMPONENTS[section]
    params = dict(table)
    name = params.pop("name", default_name)
    if name is None:
        problems.append(f"{section}.name: missing; name a {kind} (see `dd-distill {kind}s`)")
        return Component("", params)
    if not isinstance(name, str):
        problems.append(f"{section}.name: expected str, got {type(name).__name__} ({name!r})")
        return Component(str(name), params)
    entries = collect(kind)
    if name not in entries:
        hint = closest(name, sorted(entries))
        did_you_mean = f"; did you mean {hint}?" if hint else "."
        problems.append(f"{section}.name: unknown {kind} '{name}'{did_you_mean} "
                        f"Available: {', '.join(sorted(entries)) or '(none)'}")
        return Component(name, params)
    return Component(name, _check_factory_params(entries[name].factory, params, section, reserved, problems))


def _check_plain_section(section: str, table: dict[str, Any], defaults: dict[str, Any],
                         types: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in table.items():
        if key not in defaults:
            problems.append(_unknown(key, defaults, path=section))
            continue
        expected = types.get(key)
        if expected is not None:
            try:
                value = coerce_value(value, expected)
            except ValueError:
                problems.append(f"{section}.{key}: expected {describe_type(expected)}, got "
                                f"{type(value).__name__} ({value!r})")
                continue
        out[key] = value
    return out


def eval_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """([eval] key -> default, key -> type) from evaluate_set's keywords, TrainSchedule and our own keys."""
    from reference_methods.evaluate import evaluate_set  # torch-heavy; only needed once a config resolves
    from reference_methods.trainers.base import TrainSchedule

    defaults: dict[str, Any] = {}
    types: dict[str, Any] = {}
    eval_hints = parameter_types(evaluate_set)
    for key, p in inspect.signature(evaluate_set).parameters.items():
        if key in EVAL_RUN_KEYWORDS or p.default is p.empty:
            continue
        defaults[key] = p.default
        types[key] = eval_hints.get(key)
    schedule_hints = parameter_types(TrainSchedule)
    for f in dataclasses.fields(TrainSchedule):
        defaults[f.name] = f.default
        types[f.name] = schedule_hints.get(f.name)
    defaults.update(copy.deepcopy(EVAL_OWN_DEFAULTS))
    types.update({"trainer": str, "trainer_args": dict, "baselines": list[str], "whole_train_epochs": int,
                  "whole_train_lr": float, "learned_lr": bool})
    return defaults, types


def _check_values(cfg: dict[str, Any], problems: list[str]) -> None:
    for dotted in POSITIVE_INTS:
        section, key = dotted.split(".")
        value = cfg[section].get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            problems.append(f"{dotted}: must be at least 1, got {value}")
    for dotted in POSITIVE_FLOATS:
        section, key = dotted.split(".")
        value = cfg[section].get(key)
        if isinstance(value, float) and not value > 0:
            problems.append(f"{dotted}: must be > 0, got {value}")
    for baseline in cfg["eval"].get("baselines", []):
        if baseline not in BASELINES:
            problems.append(_unknown(str(baseline), BASELINES, "baseline", path="eval.baselines"))
    device = cfg["run"].get("device")
    if isinstance(device, str) and device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            problems.append(f"run.device: '{device}' is not a device; use auto, cpu, cuda or cuda:N")


def _dotted_layer(values: dict[str, Any], what: str) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for dotted, value in values.items():
        if dotted.split(".")[0] not in SECTIONS:
            _raise_problems([_unknown(dotted.split(".")[0], SECTIONS, "section")], f"{what} {dotted}")
        set_dotted(layer, dotted, value)
    return layer


def _chosen(layers: list[dict[str, Any]], section: str, key: str, default: Any) -> Any:
    """The value of a plain ``section.key`` after layering (component names, the preset, the trainer)."""
    value = default
    for layer in layers:
        table = layer.get(section)
        if isinstance(table, dict) and key in table:
            value = table[key]
    return value


def resolve(raw: RawConfig, overrides: dict[str, Any] | None = None, cell: dict[str, Any] | None = None) -> RunConfig:
    """Layer preset, file, grid cell values and overrides (dotted keys), then validate everything at once."""
    where = f"config '{raw.path}'"
    user_layers = [raw.tables, _dotted_layer(cell or {}, "grid key"), _dotted_layer(overrides or {}, "--set")]
    preset_name = _chosen(user_layers, "run", "preset", RUN_DEFAULTS["preset"])
    if not isinstance(preset_name, str):
        _raise_problems([f"run.preset: expected str, got {type(preset_name).__name__}"], where)
    names = {s: _chosen(user_layers, s, "name", None) for s in COMPONENTS}
    preset = preset_layers(load_preset(preset_name), names["data"] if isinstance(names["data"], str) else None)
    for layer in preset:
        chosen = [f"{s}.name" for s in COMPONENTS if isinstance(layer.get(s), dict) and "name" in layer[s]]
        if chosen:
            raise ConfigError(f"preset '{preset_name}' sets {', '.join(chosen)}; presets set parameters, "
                              "never which component runs. Remove it from the preset file.")
    names["weighter"] = names["weighter"] or "uniform"
    trainer = _chosen(user_layers, "eval", "trainer", EVAL_OWN_DEFAULTS["trainer"])
    merged: dict[str, Any] = {}
    for layer in [*preset, *user_layers]:
        merged = _deep_merge(merged, select_components(layer, names, trainer if isinstance(trainer, str) else None))

    problems: list[str] = []
    run = _check_plain_section("run", merged.get("run", {}), RUN_DEFAULTS,
                               {"seed": int, "device": str, "out_dir": str, "preset": str, "cache_dir": str}, problems)
    data = _resolve_component("data", merged.get("data", {}), problems, None, reserved=("seed",))
    weighter = _resolve_component("weighter", merged.get("weighter", {}), problems, "uniform")
    method = _resolve_component("method", merged.get("method", {}), problems, None)
    defaults, types = eval_defaults()
    evaluation = _check_plain_section("eval", merged.get("eval", {}), defaults, types, problems)
    evaluation["trainer_args"] = _resolve_trainer_args(evaluation, problems)
    _check_values({"run": run, "method": method.params, "eval": evaluation}, problems)
    _raise_problems(problems, where)
    return RunConfig(raw.name, run, data, weighter, method, json.loads(json.dumps(evaluation)))


def _resolve_trainer_args(evaluation: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    name, args = evaluation["trainer"], evaluation["trainer_args"]
    if not isinstance(name, str) or not isinstance(args, dict):
        return args if isinstance(args, dict) else {}
    entries = collect("trainer")
    if name not in entries:
        hint = closest(name, sorted(entries))
        did_you_mean = f"; did you mean {hint}?" if hint else "."
        problems.append(f"eval.trainer: unknown trainer '{name}'{did_you_mean} "
                        f"Available: {', '.join(sorted(entries)) or '(none)'}")
        return args
    return _check_factory_params(entries[name].factory, args, "eval.trainer_args", (), problems)


def load_config(source: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load and validate a config without a grid (a grid config: use ``reference_methods.grid``)."""
    raw = load_raw(source)
    if raw.grid:
        axes = [k for k in raw.grid if k not in (overrides or {})]
        if axes:
            raise ConfigError(f"config '{source}' is a grid over {', '.join(axes)}; run it with "
                              "`dd-distill run`, or fix each axis with --set KEY=VALUE.")
    return resolve(raw, overrides)


def component_kwargs(section: str, config: RunConfig) -> dict[str, Any]:
    """The params of a config's component converted to its factory's types (tuples, paths, floats)."""
    component: Component = getattr(config, section)
    factory = collect(COMPONENTS[section])[component.name].factory
    return check_parameter_types(factory, component.params, section)


def trainer_kwargs(config: RunConfig) -> dict[str, Any]:
    """``eval.trainer_args`` converted to the trainer factory's types."""
    factory = collect("trainer")[config.eval["trainer"]].factory
    return check_parameter_types(factory, config.eval["trainer_args"], "eval.trainer_args")
