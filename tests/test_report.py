"""Reports on hand-made run folders: pooling over seeds, baselines listed once, columns, --compare, files."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from reference_methods.cli import main
from reference_methods.config import ConfigError
from reference_methods.report import find_runs, summarise, varying_keys, write_report

METRIC_KEYS = ("acc", "aligned_acc", "conflicting_acc", "worst_group", "deo_m", "deo_a")


def metrics_of(acc: float, std: float = 1.0) -> dict:
    return {k: {"mean": acc if k == "acc" else acc / 2, "std": std, "runs": [acc]} for k in METRIC_KEYS}


def make_run(folder, weighter: str, seed: int, acc: float, ratio: float = 0.05) -> None:
    weighter_table = {"name": weighter, **({"bandwidth": "median"} if weighter == "kde" else {})}
    config = {
        "name": "fixture",
        "run": {"seed": seed, "device": "cpu", "out_dir": "runs", "preset": "quick", "cache_dir": ""},
        "data": {"name": "cdigits", "conflict_ratio": ratio},
        "weighter": weighter_table,
        "method": {"name": "dm", "ipc": 10, "iterations": 200},
        "eval": {"epochs": 300, "baselines": ["random_real", "whole_train"]},
    }
    metrics = {
        "synthetic": metrics_of(acc),
        "baselines": {"random_real": metrics_of(40.0 + seed), "whole_train": metrics_of(75.0)},
        "weights": {"count_share": 0.05, "weight_share": 0.05, "auc": 0.5},
        "time": {"weights": 1.0, "distill": 9.0, "eval": 5.0},
    }
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def grid_dir(tmp_path):
    root = tmp_path / "grid"
    for seed, (uniform, kde) in enumerate([(40.0, 84.0), (44.0, 88.0)]):
        make_run(root / f"weighter=uniform,seed={seed}", "uniform", seed, uniform)
        make_run(root / f"weighter=kde,seed={seed}", "kde", seed, kde)
    make_run(root / ".cache" / "ignored", "uniform", 9, 0.0)  # caches are not runs
    return root


def test_rows_pool_seeds_and_list_each_baseline_once(grid_dir):
    records = find_runs([grid_dir])
    assert len(records) == 4
    rows, columns = summarise(records)
    assert [h for _, h in columns] == ["dataset", "method", "ipc", "weighter"]  # kde's bandwidth is not a setting
    labels = [(r.setting["weighter.name"], r.kind) for r in rows]
    assert labels == [("uniform", "distilled"), ("kde", "distilled"), ("", "random_real"), ("", "whole_train")]
    uniform, kde, random_real, whole = rows
    assert kde.seeds == [0, 1] and kde.stat("acc") == pytest.approx((86.0, 2.8284), abs=1e-3)
    assert random_real.stat("acc") == pytest.approx((40.5, 0.7071), abs=1e-3)
    assert random_real.setting["method.ipc"] == 10 and whole.setting["method.ipc"] == "all"
    assert uniform.times == [10.0, 10.0]  # weights + distillation


def test_a_single_seed_shows_the_spread_over_evaluation_nets(tmp_path):
    make_run(tmp_path / "one", "uniform", 0, 50.0)
    rows, _ = summarise(find_runs([tmp_path]))
    assert rows[0].stat("acc") == (50.0, 1.0)


def test_a_varying_parameter_becomes_a_column(tmp_path):
    make_run(tmp_path / "a", "uniform", 0, 50.0, ratio=0.05)
    make_run(tmp_path / "b", "uniform", 0, 60.0, ratio=0.01)
    records = find_runs([tmp_path])
    assert varying_keys(records) == ["data.conflict_ratio"]
    rows, columns = summarise(records)
    assert columns[-1] == ("data.conflict_ratio", "conflict_ratio")
    assert len([r for r in rows if r.kind == "whole_train"]) == 2  # baselines depend on the data


def test_write_report_makes_markdown_csv_and_png_with_gains_over_uniform(grid_dir, tmp_path):
    markdown, paths = write_report([grid_dir], tmp_path / "out", compare="weighter")
    assert "| cdigits | dm | 10 | kde | 2 | 86.0 ± 2.8 |" in markdown
    assert "| +44.0 |" in markdown  # kde over uniform, accuracy
    assert "| cdigits | whole train split | all | — | 2 | 75.0 ± 0.0 |" in markdown
    rows = list(csv.DictReader(io.StringIO(paths[1].read_text())))
    assert len(rows) == 4 and float(rows[1]["acc_mean"]) == pytest.approx(86.0)
    assert float(rows[1]["gain_acc"]) == pytest.approx(44.0) and float(rows[0]["gain_acc"]) == 0.0
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_report_and_an_empty_folder(grid_dir, tmp_path, capsys):
    assert main(["report", str(grid_dir), "--out", str(tmp_path / "r")]) == 0
    assert "random real subset" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no finished runs"):
        write_report([tmp_path / "empty"], tmp_path / "empty")
    assert main(["report", str(tmp_path / "empty")]) == 2


def test_report_of_several_folders_leaves_each_folders_own_report(grid_dir, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other"
    shutil.copytree(grid_dir / "weighter=kde,seed=0", other / "weighter=kde,seed=0")
    assert main(["report", str(grid_dir)]) == 0
    own = (grid_dir / "report.md").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(grid_dir), str(other)]) == 0
    assert (grid_dir / "report.md").read_text() == own
    combined = (tmp_path / "report" / "report.md").read_text()
    assert "Runs: " in combined and str(other) in combined


def test_groups_lists_each_rows_weakest_groups_averaged_over_seeds(grid_dir, capsys):
    for seed, (weak, other) in enumerate([(10.0, 60.0), (30.0, 40.0)]):
        path = grid_dir / f"weighter=kde,seed={seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["synthetic"]["groups"] = [
            {"class": 0, "bias": 1, "count": 5, "mean": weak, "runs": [weak]},
            {"class": 1, "bias": 0, "count": 5, "mean": other, "runs": [other]},
            {"class": 1, "bias": 1, "count": 50, "mean": 99.0, "runs": [99.0]},
        ]
        path.write_text(json.dumps(metrics))
    assert main(["report", str(grid_dir), "--groups", "2"]) == 0
    out = capsys.readouterr().out
    assert "## Weakest groups" in out
    kde_line = next(line for line in out.splitlines() if line.startswith("| cdigits | dm | 10 | kde | distilled"))
    assert kde_line.endswith("| 0/1 20.0, 1/0 50.0 |")
    uniform_line = next(line for line in out.splitlines() if "| uniform | distilled" in line)
    assert uniform_line.endswith("| — |")  # runs without per-group metrics


def test_no_groups_section_by_default(grid_dir, capsys):
    assert main(["report", str(grid_dir)]) == 0
    assert "Weakest groups" not in capsys.readouterr().out
