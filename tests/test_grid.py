"""Grids: expansion, a failing cell that does not stop the grid, restart, shards, parallel jobs, the CLI."""

from __future__ import annotations

import json

import pytest

import pipeline_fakes
from pipeline_fakes import BASE, registered, write_config
from reference_methods.cli import main
from reference_methods.config import ConfigError, load_raw
from reference_methods.grid import cell_status, expand_grid, parse_shard, run_grid, select_shard

GRID = BASE + '\n[grid]\n"method.fail" = [false, true]\n"run.seed" = [0, 1]\n'


@pytest.fixture(autouse=True)
def fakes():
    with registered():
        yield


def test_cells_are_the_product_of_the_axes_in_order(tmp_path):
    raw = load_raw(write_config(tmp_path, GRID))
    cells = expand_grid(raw)
    assert [c.name for c in cells] == ["fail=false,seed=0", "fail=false,seed=1", "fail=true,seed=0", "fail=true,seed=1"]
    assert cells[3].config.method.params["fail"] is True and cells[3].config.seed == 1


def test_a_set_on_a_grid_key_replaces_that_axis(tmp_path):
    raw = load_raw(write_config(tmp_path, GRID))
    cells = expand_grid(raw, {"run.seed": 5})
    assert [c.name for c in cells] == ["fail=false", "fail=true"]
    assert {c.config.seed for c in cells} == {5}


def test_invalid_cells_are_reported_before_anything_runs(tmp_path):
    raw = load_raw(write_config(tmp_path, BASE + '\n[grid]\n"method.ipc" = [1, 0, -1]\n'))
    with pytest.raises(ConfigError, match=r"2 of 3 grid cells are invalid.*ipc=0.*must be at least 1"):
        expand_grid(raw)


def test_a_failed_cell_is_recorded_and_the_grid_goes_on_then_restart_skips_finished_cells(tmp_path):
    raw = load_raw(write_config(tmp_path, GRID))
    cells = expand_grid(raw)
    grid_dir = tmp_path / "grid"
    outcomes = run_grid(raw, cells, grid_dir, progress=False)
    assert [o.status for o in outcomes] == ["done", "done", "failed", "failed"]
    error = json.loads((grid_dir / "fail=true,seed=0" / "error.json").read_text())
    assert "deliberate failure" in error["error"] and "Traceback" in error["traceback"]
    assert cell_status(grid_dir / "fail=false,seed=0") == "done"
    assert cell_status(grid_dir / "fail=true,seed=0") == "failed"
    assert json.loads((grid_dir / "grid.json").read_text())["cells"][2]["values"] == {"method.fail": True, "run.seed": 0}

    pipeline_fakes.CALLS.clear()
    again = run_grid(raw, cells, grid_dir, progress=False)
    assert [o.status for o in again] == ["skipped", "skipped", "failed", "failed"]
    assert [c for c, _ in pipeline_fakes.CALLS].count("distiller") == 2  # only the failed cells ran again


def test_shards_split_the_cells_without_overlap():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "-1/2", "a/b"):
        with pytest.raises(ConfigError, match="expected i/n"):
            parse_shard(bad)
    cells = list(range(10))
    shards = [select_shard(cells, (i, 3)) for i in range(3)]
    assert sorted(sum(shards, [])) == cells
    assert shards[1] == [1, 4, 7]


def test_a_shard_runs_only_its_cells(tmp_path):
    raw = load_raw(write_config(tmp_path, GRID))
    outcomes = run_grid(raw, expand_grid(raw), tmp_path / "grid", shard=(0, 2), progress=False)
    assert [o.name for o in outcomes] == ["fail=false,seed=0", "fail=true,seed=0"]
    assert cell_status(tmp_path / "grid" / "fail=false,seed=1") == "pending"


def test_parallel_jobs_run_cells_in_worker_processes(tmp_path):
    raw = load_raw(write_config(tmp_path, GRID))
    outcomes = run_grid(raw, expand_grid(raw, {"run.seed": 0}), tmp_path / "grid", jobs=2, progress=False)
    assert sorted((o.name, o.status) for o in outcomes) == [("fail=false", "done"), ("fail=true", "failed")]
    assert pipeline_fakes.CALLS == []  # the cells ran in the workers, with the fakes registered there
    assert (tmp_path / "grid" / "fail=false" / "metrics.json").exists()


def test_cli_run_prints_the_table_and_exits_nonzero_when_a_cell_failed(tmp_path, capsys):
    path = write_config(tmp_path, GRID)
    code = main(["run", str(path), "--out", str(tmp_path / "grid"), "--quiet", "--set", "run.seed=0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "(--set run.seed=0): 2 cells into" in out  # the banner shows what --set changed in the grid
    assert "2 cells: 1 run, 0 finished earlier, 1 failed (fail=true" in out
    assert "| dataset | method | ipc | weighter |" in out and "random real subset" in out
    assert (tmp_path / "grid" / "report.md").exists()


def test_a_single_run_into_a_grid_folder_goes_into_the_cell_it_picks(tmp_path, capsys):
    path, grid_dir = str(write_config(tmp_path, GRID)), tmp_path / "grid"
    assert main(["run", path, "--out", str(grid_dir), "--quiet", "--set", "method.fail=false", "--shard", "0/2"]) == 0
    assert cell_status(grid_dir / "seed=1") == "pending"

    assert main(["run", path, "--out", str(grid_dir), "--quiet", "--set", "method.fail=false", "--set", "run.seed=1"]) == 0
    assert cell_status(grid_dir / "seed=1") == "done"
    assert json.loads((grid_dir / "seed=1" / "config.json").read_text())["run"]["seed"] == 1
    assert not (grid_dir / "config.json").exists()  # nothing at the grid's top level
    capsys.readouterr()

    for other in (["--set", "run.seed=7"], ["--set", "run.seed=1", "--set", "method.ipc=3"], []):
        assert main(["run", path, "--out", str(grid_dir), "--quiet", "--set", "method.fail=false", *other]) == (2 if other else 0)
    errors = capsys.readouterr().err
    assert errors.count("this run is not one of its cells") == 2 and "run.seed in [0, 1]" in errors
    assert not (grid_dir / "config.json").exists()
