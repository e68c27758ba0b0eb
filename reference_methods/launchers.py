"""Where a grid's cells run: on this machine (``local``, the ``--jobs N`` processes of ``grid``) or as a
SLURM job array submitted through submitit (``submitit``; ``pip install dd-plugins[slurm]``).

Nothing here schedules: SLURM does, and every cell still runs through ``grid.run_cell`` into its
own folder. So a finished cell (``metrics.json``) is never submitted again, a cell whose Python
code failed has ``error.json``, and ``dd-distill report`` merges the folders whichever machine
wrote them. Each submitted cell also gets ``launch.json`` (job id, executor, log folder), which
``grid_status`` uses to tell queued from running cells and to mark a cell whose job ended without
finishing it (killed, out of memory, node failure) as failed, so ``--only-failed`` resubmits it.
Pre-emption and time limits need no resubmission: the submitted callable is checkpointable, so
submitit requeues the same cell, which resumes from its folder and distillation checkpoint.

Job settings come from a ``[launcher]`` table in the config and ``--set launcher.KEY=VALUE``
(``LAUNCHER_DEFAULTS`` lists the keys).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dd_plugins import get_plugin_manager
from dd_plugins.params import closest
from reference_methods.config import ConfigError, RawConfig, find_config, parse_toml
from reference_methods.grid import (ERROR_FILE, Cell, cell_status, expand_grid, portable_plugins, read_grid_file,
                                    run_cell, write_grid_file)
from reference_methods.io import atomic_write_json

LAUNCHERS = ("local", "submitit")
LAUNCH_FILE = "launch.json"
SUBMITIT_DIR = ".submitit"
STATES = ("done", "running", "failed", "pending")

LAUNCHER_DEFAULTS: dict[str, Any] = {
    "cluster": "slurm",  # submitit executor: "slurm", or "local" (processes on this machine, for trying it out)
    "partition": "",  # SLURM partition; "" = the cluster's default
    "time": 240,  # minutes per cell; a cell cut off by the limit is requeued and resumes
    "gpus": 1,  # GPUs per cell
    "cpus": 8,  # CPU cores per cell
    "mem": 32,  # GB of memory per cell; 0 = the partition's default
    "array_parallelism": 32,  # cells of the array running at once
    "account": "",  # SLURM --account; "" = none
    "qos": "",  # SLURM --qos; "" = none
    "constraint": "",  # SLURM --constraint; "" = none
    "setup": [],  # shell lines run before each cell, e.g. ["module load cuda", "source .venv/bin/activate"]
    "slurm_args": {},  # any other sbatch option, e.g. {exclude = "node12"}
    "name": "",  # job name; "" = dd-<config name>
    "wait": False,  # wait for the jobs and print the final status (handy with cluster = "local")
}
_TYPES = {key: (int, float) if key in ("time", "mem") else type(value) for key, value in LAUNCHER_DEFAULTS.items()}


@dataclass(frozen=True)
class CellState:
    """A cell's state in ``STATES`` and a few words on why (job id, error, ...)."""

    name: str
    state: str
    detail: str = ""


# ---------------------------------------------------------------- settings

def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` items as (config overrides, launcher overrides without the ``launcher.`` prefix)."""
    config = {k: v for k, v in overrides.items() if not k.startswith("launcher.")}
    launcher = {k.removeprefix("launcher."): v for k, v in overrides.items() if k.startswith("launcher.")}
    return config, launcher


def launcher_settings(source: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config file's ``[launcher]`` table over ``LAUNCHER_DEFAULTS``, then ``overrides``; checked."""
    name, text = find_config(source)
    table = parse_toml(text, f"config '{source}'").get("launcher", {})
    if not isinstance(table, dict):
        raise ConfigError(f"config '{source}': launcher must be a table [launcher] of key = value.")
    settings = dict(LAUNCHER_DEFAULTS)
    problems = []
    for key, value in {**table, **(overrides or {})}.items():
        if key not in LAUNCHER_DEFAULTS:
            hint = closest(key, list(LAUNCHER_DEFAULTS))
            problems.append(f"launcher.{key}: unknown key" + (f"; did you mean {hint}?" if hint else
                                                              f". Known: {', '.join(LAUNCHER_DEFAULTS)}"))
        elif not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and _TYPES[key] is not bool):
            problems.append(f"launcher.{key}: expected {type(LAUNCHER_DEFAULTS[key]).__name__}, got {value!r}")
        else:
            settings[key] = value
    if settings["cluster"] not in ("slurm", "local"):
        problems.append(f"launcher.cluster: expected 'slurm' or 'local', got {settings['cluster']!r}")
    if problems:
        raise ConfigError(f"config '{source}': {'; '.join(problems)}. Fix the [launcher] table or --set launcher.KEY.")
    settings["name"] = settings["name"] or f"dd-{name}"
    return settings


def make_executor(settings: dict[str, Any], folder: Path):
    """A submitit ``AutoExecutor`` for ``settings``: one job-array task per cell."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("--launcher submitit needs the submitit package: pip install 'dd-plugins[slurm]' "
                          "(or pip install submitit).") from None
    if settings["cluster"] == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError("--launcher submitit: sbatch is not on PATH, so this is not a SLURM login node. Submit "
                          "from one, or try the grid here with --set launcher.cluster=local.")
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=settings["cluster"])
    parameters: dict[str, Any] = {"name": settings["name"], "timeout_min": int(settings["time"]),
                                  "gpus_per_node": settings["gpus"], "cpus_per_task": settings["cpus"],
                                  "tasks_per_node": 1, "nodes": 1, "slurm_array_parallelism": settings["array_parallelism"]}
    if settings["mem"]:
        parameters["mem_gb"] = settings["mem"]
    for key in ("partition", "account", "qos", "constraint"):
        if settings[key]:
            parameters[f"slurm_{key}"] = settings[key]
    if settings["setup"]:
        parameters[f"{settings['cluster']}_setup"] = list(settings["setup"])
    if settings["slurm_args"]:
        parameters["slurm_additional_parameters"] = dict(settings["slurm_args"])
    executor.update_parameters(**parameters)
    return executor


# ---------------------------------------------------------------- submission

class CellTask:
    """What one array task runs: ``run_cell`` into the grid folder. Having ``checkpoint`` makes submitit
    requeue it on pre-emption or at the time limit; the requeued task resumes the cell from its folder.

    ``plugins`` (``grid.portable_plugins()``) are registered in the job first, so plugins registered
    in the submitting process (not through entry points) work there as they do with ``--jobs``.
    """

    def __init__(self, plugins: list[tuple[str, str, Any]]) -> None:
        self.plugins = plugins

    def __call__(self, cell: Cell, grid_dir: str) -> dict[str, Any]:
        pm = get_plugin_manager()
        for kind, name, value in self.plugins:
            if not pm.has_plugin(name):
                pm.register(importlib.import_module(value) if kind == "module" else value, name=name)
        outcome = run_cell(cell, Path(grid_dir), progress=False, echo=True)
        return {"name": outcome.name, "status": outcome.status, "error": outcome.error, "summary": outcome.summary}

    def checkpoint(self, cell: Cell, grid_dir: str):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, cell, grid_dir)


@dataclass(frozen=True)
class Submission:
    """What ``submit_grid`` did: the job per submitted cell, and the cells it left alone and why."""

    jobs: list[tuple[Cell, Any]]
    skipped: dict[str, list[str]]


def submit_grid(raw: RawConfig, cells: list[Cell], grid_dir: Path, settings: dict[str, Any], *,
                overrides: dict[str, Any] | None = None, only_failed: bool = False, force: bool = False,
                executor=None) -> Submission:
    """Submit the grid's unfinished cells (only the failed ones with ``only_failed``) as one job array.

    Finished cells and cells whose job is still queued or running are left alone; ``force`` deletes
    every selected cell's folder first (a requeued task must resume, never start over, so the
    clearing happens here rather than in the job). ``executor`` defaults to ``make_executor(settings)``.
    """
    grid_dir = Path(grid_dir)
    grid_dir.mkdir(parents=True, exist_ok=True)
    write_grid_file(raw, overrides or {}, cells, grid_dir)
    states = {s.name: s for s in grid_status(grid_dir)}
    chosen, skipped = [], {"done": [], "running": [], "not failed": []}
    for cell in cells:
        state = states[cell.name].state
        if state in ("running", "pending") and (grid_dir / cell.name / LAUNCH_FILE).exists():
            skipped["running"].append(cell.name)  # its job is queued or running: a second one would race it
        elif only_failed and state != "failed":
            skipped["not failed"].append(cell.name)
        elif state == "done" and not force:
            skipped["done"].append(cell.name)
        else:
            chosen.append(cell)
    if not chosen:
        return Submission([], skipped)
    executor = executor or make_executor(settings, grid_dir / SUBMITIT_DIR)
    for cell in chosen:
        cell_dir = grid_dir / cell.name
        if force:
            shutil.rmtree(cell_dir, ignore_errors=True)
        (cell_dir / ERROR_FILE).unlink(missing_ok=True)  # a resubmitted failure is pending again
    jobs = executor.map_array(CellTask(portable_plugins()), chosen, [str(grid_dir)] * len(chosen))
    for cell, job in zip(chosen, jobs):
        atomic_write_json({"job_id": str(job.job_id), "cluster": settings["cluster"], "host": socket.gethostname(),
                           "folder": str(grid_dir / SUBMITIT_DIR / "%j"), "submitted": time.time()},
                          grid_dir / cell.name / LAUNCH_FILE)
    return Submission(list(zip(chosen, jobs)), skipped)


def describe_submission(submission: Submission) -> str:
    """Lines for the console: each submitted cell with its job id, then what was left alone."""
    lines = [f"{cell.name}: job {job.job_id}" for cell, job in submission.jobs]
    ids = [str(job.job_id) for _, job in submission.jobs]
    arrays = sorted({job_id.split("_")[0] for job_id in ids if "_" in job_id})  # SLURM array tasks: ARRAY_TASK
    if arrays:
        lines.append(f"submitted {len(ids)} cells as job array {', '.join(arrays)}")
    elif ids:
        lines.append(f"submitted {len(ids)} cells as jobs {', '.join(ids)}")
    else:
        lines.append("nothing to submit")
    reasons = {"done": "finished earlier", "running": "queued or running already", "not failed": "not failed"}
    for key, names in submission.skipped.items():
        if names:
            lines.append(f"left alone, {reasons[key]}: {len(names)} cells")
    return "\n".join(lines)


# ---------------------------------------------------------------- status

def _job_paths(launch: dict[str, Any]):
    """submitit's file names (log, result) of the job recorded in ``launch.json``."""
    from submitit.core.utils import JobPaths

    return JobPaths(Path(launch["folder"]), launch["job_id"])


def _job_state(launch: dict[str, Any]) -> str:
    """``pending``, ``running``, ``ended`` or ``unknown`` for the job recorded in ``launch.json``."""
    job_id = launch["job_id"]
    if launch["cluster"] == "local":
        if _job_paths(launch).result_pickle.exists():
            return "ended"
        if launch.get("host") != socket.gethostname():
            return "unknown"
        try:
            os.kill(int(job_id), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return "ended"
        except PermissionError:  # exists, owned by someone else
            return "running"
        return "running"
    from submitit.slurm.slurm import SlurmJob

    state = SlurmJob(Path(launch["folder"]), job_id).state.split()[0].upper()
    if state in ("PENDING", "REQUEUED", "CONFIGURING", "SUSPENDED", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED"):
        return "pending"
    if state in ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"):
        return "running"
    if state == "UNKNOWN":
        return "unknown"
    return "ended"


def cell_state(cell_dir: Path) -> CellState:
    """A cell folder's state; a job that ended without a result is recorded in ``error.json`` (failed)."""
    launch_path = cell_dir / LAUNCH_FILE
    launch = json.loads(launch_path.read_text()) if launch_path.exists() else None
    job = _job_state(launch) if launch is not None else None  # asked before reading the folder: no race with the job
    files = cell_status(cell_dir)
    if files == "done":
        return CellState(cell_dir.name, "done")
    if files == "failed":
        error = json.loads((cell_dir / ERROR_FILE).read_text()).get("error", "")
        return CellState(cell_dir.name, "failed", error.splitlines()[0] if error else "")
    if job is None:
        if files == "partial":
            return CellState(cell_dir.name, "running", "started here, unfinished (running, or interrupted: "
                                                       "the same command resumes it)")
        return CellState(cell_dir.name, "pending")
    if job == "ended":
        message = (f"job {launch['job_id']} ended without finishing the cell (killed, out of memory, node failure "
                   f"or cancelled); see {_job_paths(launch).stdout}")
        atomic_write_json({"error": message, "traceback": "", "time": time.time()}, cell_dir / ERROR_FILE)
        return CellState(cell_dir.name, "failed", message)
    if job == "pending":
        return CellState(cell_dir.name, "pending", f"job {launch['job_id']} queued")
    return CellState(cell_dir.name, "running", f"job {launch['job_id']}" + (" (state unknown)" if job == "unknown" else ""))


def grid_status(grid_dir: Path) -> list[CellState]:
    """The state of every cell that ``grid.json`` lists (or, for a single run folder, of the folder itself)."""
    grid_dir = Path(grid_dir)
    described = read_grid_file(grid_dir)
    if described is None:
        if not (grid_dir / "config.json").exists():
            raise ConfigError(f"{grid_dir} is neither a grid folder (grid.json) nor a run folder (config.json); "
                              "give the folder that `dd-distill run` wrote.")
        return [cell_state(grid_dir)]
    return [cell_state(grid_dir / cell["name"]) for cell in described["cells"]]


def status_line(states: list[CellState]) -> str:
    """One line: ``N cells: a done, b running, c failed, d pending``."""
    counts = {state: sum(s.state == state for s in states) for state in STATES}
    return f"{len(states)} cells: " + ", ".join(f"{counts[state]} {state}" for state in STATES)


def format_status(states: list[CellState]) -> str:
    """A line per cell that is not done (state and why), then ``status_line``."""
    lines = [f"{s.name}: {s.state}" + (f", {s.detail}" if s.detail else "") for s in states if s.state != "done"]
    return "\n".join([*lines, status_line(states)])


def run_submitit(source: str, raw: RawConfig, overrides: dict[str, Any], launcher_overrides: dict[str, Any], *,
                 out: str | None, only_failed: bool, force: bool) -> int:
    """``dd-distill run CONFIG --launcher submitit``: submit the cells, print job ids and the status line.

    A config without a grid is one cell (folder ``<out>/run``). Returns 1 when ``launcher.wait`` is
    set and a cell failed, else 0 (the jobs may still be running).
    """
    settings = launcher_settings(source, launcher_overrides)
    cells = expand_grid(raw, overrides)
    grid_dir = Path(out) if out else Path(cells[0].config.run["out_dir"]) / raw.name
    print(f"grid {raw.name}: {len(cells)} cells into {grid_dir}, through submitit ({settings['cluster']})", flush=True)
    submission = submit_grid(raw, cells, grid_dir, settings, overrides=overrides, only_failed=only_failed, force=force)
    print(describe_submission(submission), flush=True)
    if settings["wait"]:
        wait_for(submission)
    states = grid_status(grid_dir)
    print(status_line(states))
    return 1 if settings["wait"] and any(s.state == "failed" for s in states) else 0


def wait_for(submission: Submission) -> None:
    """Block until every submitted job has ended (its cell's outcome is in its folder either way)."""
    for _, job in submission.jobs:
        job.wait()
