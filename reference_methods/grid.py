"""Comparison grids: a config's ``[grid]`` table expanded into cells, each run into its own folder.

``[grid]`` maps dotted keys to lists of values; the cells are their Cartesian product (first key
varies slowest). Every cell is validated before anything runs. A finished cell (``metrics.json``)
is skipped on restart; a failed cell writes ``error.json`` (its error and traceback) and the grid
goes on. ``jobs`` runs cells in parallel processes; ``shard=(i, n)`` runs every n-th cell from
the i-th, so n machines (a SLURM array) can split a grid and ``dd-distill report`` merges it.
"""

from __future__ import annotations

import concurrent.futures as futures
import itertools
import json
import multiprocessing
import os
import pickle
import re
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_plugins import get_plugin_manager
from reference_methods.config import ConfigError, RawConfig, RunConfig, resolve
from reference_methods.io import atomic_write_json
from reference_methods.pipeline import RunResult, comparable, ensure_writable, run_experiment, summary_line

ERROR_FILE = "error.json"
GRID_FILE = "grid.json"
CACHE_DIR = ".cache"


@dataclass(frozen=True)
class Cell:
    """One point of a grid: its folder name, the axis values that define it, and its resolved config."""

    index: int
    name: str
    values: dict[str, Any]
    config: RunConfig


@dataclass(frozen=True)
class CellOutcome:
    """How running a cell went: ``done``, ``skipped`` (finished earlier) or ``failed`` (with the error)."""

    name: str
    status: str
    seconds: float = 0.0
    error: str = ""
    summary: str = ""


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(_format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"  # as TOML writes it
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))


def cell_name(values: dict[str, Any]) -> str:
    """Folder name of a cell, e.g. ``weighter=kde,seed=1`` (``X.name`` shortens to ``X``)."""
    shorts = {key: key.split(".")[0] if key.endswith(".name") else key.split(".")[-1] for key in values}
    ambiguous = {s for s in shorts.values() if list(shorts.values()).count(s) > 1}
    parts = [f"{key if shorts[key] in ambiguous else shorts[key]}={_format_value(v)}" for key, v in values.items()]
    return ",".join(parts) or "run"


def grid_axes(raw: RawConfig, overrides: dict[str, Any]) -> dict[str, list[Any]]:
    """The grid's axes, less those that ``--set`` fixes to a single value."""
    return {key: values for key, values in raw.grid.items() if key not in overrides}


def expand_grid(raw: RawConfig, overrides: dict[str, Any] | None = None) -> list[Cell]:
    """Every cell of the grid, resolved and validated; all invalid cells are reported at once."""
    overrides = overrides or {}
    axes = grid_axes(raw, overrides)
    cells, problems = [], {}
    for index, combination in enumerate(itertools.product(*axes.values())):
        values = dict(zip(axes, combination))
        name = cell_name(values)
        try:
            config = resolve(raw, overrides, cell=values)
        except ConfigError as exc:
            problems.setdefault(str(exc), []).append(name)
            continue
        cells.append(Cell(index, name, values, config))
    if problems:
        count = sum(len(names) for names in problems.values())
        shown = " | ".join(f"cell{'s' if len(names) > 1 else ''} {', '.join(names)}: {message}"
                           for message, names in list(problems.items())[:3])
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise ConfigError(f"{count} of {count + len(cells)} grid cells are invalid. {shown}{more}")
    return cells


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` -> (i, n) with 0 <= i < n (SLURM array task ids count from 0)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or int(match[2]) < 1 or int(match[1]) >= int(match[2]):
        raise ConfigError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. --shard 0/4 "
                          "(--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-(n-1)).")
    return int(match[1]), int(match[2])


def select_shard(cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """The cells of shard (i, n): every n-th cell from the i-th, so slow axes spread over shards."""
    if shard is None:
        return cells
    i, n = shard
    return cells[i::n]


def cell_status(cell_dir: Path) -> str:
    """``done`` (metrics.json), ``failed`` (error.json), ``partial`` (started, unfinished) or ``pending``."""
    if (cell_dir / "metrics.json").exists():
        return "done"
    if (cell_dir / ERROR_FILE).exists():
        return "failed"
    if (cell_dir / "config.json").exists():
        return "partial"
    return "pending"


def write_grid_file(raw: RawConfig, overrides: dict[str, Any], cells: list[Cell], grid_dir: Path) -> None:
    """``grid.json``: the config, overrides and every cell's name and axis values (for status and reports)."""
    atomic_write_json({
        "config": raw.path,
        "overrides": overrides,
        "axes": grid_axes(raw, overrides),
        "cells": [{"index": c.index, "name": c.name, "values": c.values} for c in cells],
    }, grid_dir / GRID_FILE)


def run_cell(cell: Cell, grid_dir: Path, *, force: bool = False, progress: bool = True,
             echo: bool = True) -> CellOutcome:
    """Run one cell into ``grid_dir/<cell name>``; an exception is recorded in ``error.json``, not raised."""
    cell_dir = Path(grid_dir) / cell.name
    start = time.perf_counter()
    try:
        result: RunResult = run_experiment(cell.config, cell_dir, force=force, progress=progress, echo=echo,
                                           cache_dir=Path(grid_dir) / CACHE_DIR, log_prefix=f"[{cell.name}] ")
    except Exception as exc:  # a failing cell must not stop the grid; the error is kept in its folder
        message = f"{type(exc).__name__}: {exc}"
        cell_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json({"error": message, "traceback": traceback.format_exc(), "time": time.time()},
                          cell_dir / ERROR_FILE)
        return CellOutcome(cell.name, "failed", time.perf_counter() - start, error=message)
    (cell_dir / ERROR_FILE).unlink(missing_ok=True)
    status = "skipped" if result.finished_before else "done"
    return CellOutcome(cell.name, status, time.perf_counter() - start,
                       summary=summary_line(result.metrics.get("synthetic", {})))


def portable_plugins() -> list[tuple[str, str, Any]]:
    """Plugins registered in-process (not built in, not entry points), in a form a spawned worker can
    register again: ("module", name, module name) or ("object", name, the picklable plugin object)."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        if name in pm.distributions or plugin is None:
            continue
        if isinstance(plugin, types.ModuleType):
            out.append(("module", name, plugin.__name__))
            continue
        try:
            pickle.dumps(plugin)
        except Exception:
            warnings.warn(f"plugin '{name}' was registered in-process and cannot be sent to worker processes; "
                          "cells that need it will fail with --jobs > 1 (use --jobs 1 or an entry point)", stacklevel=2)
            continue
        out.append(("object", name, plugin))
    return out


def _init_worker(threads: int, plugins: list[tuple[str, str, Any]]) -> None:
    torch.set_num_threads(threads)
    pm = get_plugin_manager()
    for kind, name, value in plugins:
        if pm.has_plugin(name):
            continue
        pm.register(__import__(value, fromlist=["_"]) if kind == "module" else value, name=name)


def _announce(outcome: CellOutcome, position: int, total: int) -> None:
    if outcome.status == "failed":
        print(f"[{position}/{total}] {outcome.name}: FAILED after {outcome.seconds:.0f} s: {outcome.error}", flush=True)
    elif outcome.status == "skipped":
        print(f"[{position}/{total}] {outcome.name}: finished earlier, skipped", flush=True)
    else:
        print(f"[{position}/{total}] {outcome.name}: done in {outcome.seconds:.0f} s; {outcome.summary}", flush=True)


def run_grid(raw: RawConfig, cells: list[Cell], grid_dir: Path, *, overrides: dict[str, Any] | None = None,
             jobs: int = 1, shard: tuple[int, int] | None = None, force: bool = False,
             progress: bool = True, only_failed: bool = False, echo: bool = True) -> list[CellOutcome]:
    """Run the cells of this shard into ``grid_dir``, ``jobs`` at a time; returns one outcome per cell.
    ``only_failed`` runs only the cells whose last attempt failed (``error.json``); ``echo`` prints
    each cell's log lines (one line per cell is printed either way)."""
    grid_dir = Path(grid_dir)
    ensure_writable(grid_dir)
    write_grid_file(raw, overrides or {}, cells, grid_dir)
    selected = select_shard(cells, shard)
    if only_failed:
        selected = [cell for cell in selected if cell_status(grid_dir / cell.name) == "failed"]
    outcomes: list[CellOutcome] = []
    if jobs <= 1:
        for position, cell in enumerate(selected, 1):
            if echo:
                print(f"[{position}/{len(selected)}] {cell.name}", flush=True)
            outcome = run_cell(cell, grid_dir, force=force, progress=progress, echo=echo)
            _announce(outcome, position, len(selected))
            outcomes.append(outcome)
        return outcomes
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_init_worker, initargs=(threads, portable_plugins())) as pool:
        pending = {pool.submit(run_cell, cell, grid_dir, force=force, progress=False, echo=False): cell
                   for cell in selected}
        for position, future in enumerate(futures.as_completed(pending), 1):
            cell = pending[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                outcome = CellOutcome(cell.name, "failed", error=f"worker process failed: {type(exc).__name__}: {exc}")
                atomic_write_json({"error": outcome.error, "traceback": "", "time": time.time()},
                                  grid_dir / cell.name / ERROR_FILE)
            _announce(outcome, position, len(selected))
            outcomes.append(outcome)
    return outcomes


def grid_summary(outcomes: list[CellOutcome]) -> str:
    """One line: how many cells ran, were skipped, failed (and where to read why)."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    line = f"{len(outcomes)} cells: {counts['done']} run, {counts['skipped']} finished earlier, {counts['failed']} failed"
    failed = [o.name for o in outcomes if o.status == "failed"]
    if failed:
        line += f" ({', '.join(failed)}: see {ERROR_FILE} in each; re-run the same command to retry them)"
    return line


def read_grid_file(grid_dir: Path) -> dict[str, Any] | None:
    """The ``grid.json`` of a grid folder, or None for a plain run folder."""
    path = Path(grid_dir) / GRID_FILE
    return json.loads(path.read_text()) if path.exists() else None


def grid_cell_folder(folder: Path, raw: RawConfig, config: RunConfig) -> Path | None:
    """Where a single run goes when ``--out`` is a grid folder: the cell that ``--set`` picks.

    ``--set run.seed=1`` on a grid whose only axis is the seed is one cell of it; that run belongs in
    the cell's folder (with the grid's cache), not at the grid's top level. None for a folder that
    holds no grid; a run that is not one of its cells is refused, so it cannot mix into the grid.
    """
    grid = read_grid_file(folder)
    if grid is None:
        return None
    if Path(grid["config"]).stem == raw.name:  # another config's grid may not even resolve with this one
        wanted = comparable(config.to_dict())
        for cell in expand_grid(raw, grid["overrides"]):
            if comparable(cell.config.to_dict()) == wanted:
                return Path(folder) / cell.name
    shown = ", ".join(f"{key} in {json.dumps(values)}" for key, values in grid["axes"].items())
    raise ConfigError(
        f"{folder} holds a grid of config '{grid['config']}' (--set {json.dumps(grid['overrides'])}, axes {shown}) "
        "and this run is not one of its cells. Choose another folder with --out, or repeat the grid's command "
        "with a --set for each axis to run one of its cells into it.")
