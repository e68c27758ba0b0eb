"""Grids through submitit: settings, cell states, and a real job array on submitit's local executor
with a cell that fails and is resubmitted alone with --only-failed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline_fakes
from reference_methods.cli import main
from reference_methods.config import ConfigError, load_raw
from reference_methods.grid import expand_grid
from reference_methods.launchers import (LAUNCH_FILE, grid_status, launcher_settings, split_overrides,
                                         status_line, submit_grid, wait_for)

LAUNCHED_GRID = pipeline_fakes.BASE + """
[launcher]
cluster = "local"
gpus = 0
cpus = 1
mem = 0
time = 10

[grid]
"run.seed" = [0, 1]
"""


@pytest.fixture
def tiny_grid(tmp_path) -> Path:
    """Two cells of the instant fake components (no baselines); the jobs import them from tests/ (PYTHONPATH)."""
    path = tmp_path / "tiny.toml"
    path.write_text(LAUNCHED_GRID + pipeline_fakes.TINY_EVAL + "baselines = []\n")
    return path


def test_launcher_table_then_overrides_and_unknown_keys_are_errors(tiny_grid):
    config, launcher = split_overrides({"method.ipc": 2, "launcher.partition": "gpu", "launcher.time": 30})
    assert config == {"method.ipc": 2} and launcher == {"partition": "gpu", "time": 30}
    settings = launcher_settings(tiny_grid, launcher)
    assert (settings["cluster"], settings["partition"], settings["time"], settings["gpus"]) == ("local", "gpu", 30, 0)
    assert settings["name"] == "dd-tiny"
    with pytest.raises(ConfigError, match="launcher.partiton: unknown key; did you mean partition"):
        launcher_settings(tiny_grid, {"partiton": "gpu"})
    with pytest.raises(ConfigError, match="launcher.gpus: expected int"):
        launcher_settings(tiny_grid, {"gpus": "two"})


def _cell(grid_dir: Path, name: str, files: dict[str, object]) -> None:
    folder = grid_dir / name
    folder.mkdir(parents=True)
    for file, content in files.items():
        (folder / file).write_text(json.dumps(content))


def test_status_tells_done_running_failed_pending_and_records_a_lost_job(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = finished.stdout.strip()  # a job whose process is gone and left no result
    cells = {"done": {"config.json": {}, "metrics.json": {}},
             "failed": {"config.json": {}, "error.json": {"error": "ValueError: boom\nmore"}},
             "started": {"config.json": {}},
             "lost": {"config.json": {}, LAUNCH_FILE: {"job_id": dead_pid, "cluster": "local", "host": socket.gethostname(),
                                                       "folder": str(tmp_path / ".submitit" / "%j")}},
             "pending": {}}
    for name, files in cells.items():
        _cell(tmp_path, name, files)
    (tmp_path / "grid.json").write_text(json.dumps({"cells": [{"name": name} for name in cells]}))
    states = {s.name: s for s in grid_status(tmp_path)}
    assert {name: s.state for name, s in states.items()} == {
        "done": "done", "failed": "failed", "started": "running", "lost": "failed", "pending": "pending"}
    assert states["failed"].detail == "ValueError: boom"
    assert "ended without finishing" in json.loads((tmp_path / "lost" / "error.json").read_text())["error"]
    assert status_line(list(states.values())) == "5 cells: 1 done, 1 running, 2 failed, 1 pending"


def test_job_array_on_the_local_executor_with_a_failing_cell_resubmitted_alone(tiny_grid, tmp_path, capsys,
                                                                             monkeypatch):
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with pipeline_fakes.registered():
        _submit_fail_and_resubmit(tiny_grid, tmp_path, capsys)


def _submit_fail_and_resubmit(tiny_grid: Path, tmp_path: Path, capsys) -> None:
    raw = load_raw(tiny_grid)
    cells = expand_grid(raw, {})
    grid_dir = tmp_path / "grid"
    broken = grid_dir / "seed=1"
    broken.mkdir(parents=True)
    (broken / "weights.pt").write_text("not a tensor file")  # a corrupt file makes this cell's run raise
    (broken / "weight_stats.json").write_text("{}")

    submission = submit_grid(raw, cells, grid_dir, launcher_settings(tiny_grid))
    assert [cell.name for cell, _ in submission.jobs] == ["seed=0", "seed=1"]
    wait_for(submission)
    states = {s.name: s.state for s in grid_status(grid_dir)}
    assert states == {"seed=0": "done", "seed=1": "failed"}

    (broken / "weights.pt").unlink()
    (broken / "weight_stats.json").unlink()
    capsys.readouterr()
    code = main(["run", str(tiny_grid), "--out", str(grid_dir), "--launcher", "submitit", "--only-failed",
                 "--set", "launcher.wait=true", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "seed=1: job " in printed and "seed=0: job" not in printed
    assert "left alone, not failed: 1 cells" in printed
    assert printed.strip().splitlines()[-1] == "2 cells: 2 done, 0 running, 0 failed, 0 pending"

    assert main(["status", str(grid_dir)]) == 0
    assert capsys.readouterr().out.strip() == "2 cells: 2 done, 0 running, 0 failed, 0 pending"


def test_slurm_settings_reach_the_sbatch_script(tiny_grid, tmp_path, monkeypatch):
    """No SLURM here: pretend sbatch/srun exist and read the script submitit would submit."""
    import shutil

    from submitit.slurm.slurm import _make_sbatch_string

    from reference_methods.launchers import make_executor

    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    settings = launcher_settings(tiny_grid, {"cluster": "slurm", "partition": "gpu", "time": 90, "gpus": 2, "cpus": 6,
                                             "mem": 40, "array_parallelism": 4, "qos": "high",
                                             "setup": ["module load cuda"], "slurm_args": {"exclude": "node12"}})
    executor = make_executor(settings, tmp_path / ".submitit")
    script = _make_sbatch_string(command="python -m submitit.core._submit", folder=tmp_path,
                                 map_count=10, **executor._executor.parameters)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --mem=40GB", "#SBATCH --array=0-9%4", "#SBATCH --qos=high",
                 "#SBATCH --exclude=node12", "#SBATCH --job-name=dd-tiny", "module load cuda"):
        assert line in script


def test_local_only_failed_reruns_just_the_failed_cell(tiny_grid, tmp_path, capsys):
    grid_dir = tmp_path / "grid"
    broken = grid_dir / "seed=1"
    broken.mkdir(parents=True)
    (broken / "weights.pt").write_text("not a tensor file")
    (broken / "weight_stats.json").write_text("{}")
    with pipeline_fakes.registered():
        assert main(["run", str(tiny_grid), "--out", str(grid_dir), "--quiet"]) == 1
        (broken / "weights.pt").unlink()
        (broken / "weight_stats.json").unlink()
        capsys.readouterr()
        assert main(["run", str(tiny_grid), "--out", str(grid_dir), "--quiet", "--only-failed"]) == 0
    printed = capsys.readouterr().out
    assert "[1/1] seed=1: done" in printed and "[seed=0]" not in printed
    assert "1 cells: 1 run, 0 finished earlier, 0 failed" in printed
    assert main(["status", str(grid_dir)]) == 0
    assert capsys.readouterr().out.strip() == "2 cells: 2 done, 0 running, 0 failed, 0 pending"
