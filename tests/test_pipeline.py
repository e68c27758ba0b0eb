"""One run: the run folder's files, derived seeds, resume, --force, and errors that say what to do."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch

import pipeline_fakes
import reference_methods.pipeline
from pipeline_fakes import BASE, registered, write_config
from reference_methods.cli import main
from reference_methods.config import ConfigError, load_config
from reference_methods.pipeline import RUN_FILES, RunError, run_experiment, run_weighing
from reference_methods.seeds import derive_seed


@pytest.fixture(autouse=True)
def fakes():
    with registered():
        yield


@pytest.fixture
def config(tmp_path):
    return load_config(write_config(tmp_path, BASE))


def test_a_run_writes_every_file_and_the_metrics(tmp_path, config):
    run_dir = tmp_path / "run"
    result = run_experiment(config, run_dir, progress=False, echo=False)
    assert not result.finished_before
    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "config.json").read_text()) == config.to_dict()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"synthetic", "baselines", "weights", "time"}
    for key in ("acc", "aligned_acc", "conflicting_acc", "worst_group", "deo_m", "deo_a"):
        assert 0 <= metrics["synthetic"][key]["mean"] <= 100
    assert set(metrics["baselines"]) == {"random_real", "whole_train"}
    assert metrics["weights"]["weight_share"] == pytest.approx(metrics["weights"]["count_share"])  # uniform
    assert set(metrics["time"]) == {"weights", "distill", "eval"}
    synthetic = torch.load(run_dir / "synthetic.pt", weights_only=False)
    assert synthetic["images"].shape == (6, 3, 16, 16) and synthetic["config"] == config.to_dict()
    assert torch.load(run_dir / "weights.pt", weights_only=True)["weights"].shape == (60,)
    assert not (run_dir / "checkpoint").exists()


def test_each_component_gets_its_own_derived_seed(tmp_path):
    config = load_config(write_config(tmp_path, BASE.replace('name = "uniform"', 'name = "recording"')),
                         {"run.seed": 7})
    run_experiment(config, tmp_path / "run", progress=False, echo=False)
    seeds = dict(pipeline_fakes.CALLS)
    assert seeds == {"data": derive_seed(7, "data"), "weighter": derive_seed(7, "weighter"),
                     "distiller": derive_seed(7, "distiller")}
    assert len(set(seeds.values())) == 3


def test_rerun_skips_a_finished_run_and_resume_repeats_only_missing_steps(tmp_path):
    config = load_config(write_config(tmp_path, BASE.replace('name = "uniform"', 'name = "recording"')))
    run_dir = tmp_path / "run"
    first = run_experiment(config, run_dir, progress=False, echo=False)
    pipeline_fakes.CALLS.clear()
    again = run_experiment(config, run_dir, progress=False, echo=False)
    assert again.finished_before and again.metrics == first.metrics and pipeline_fakes.CALLS == []

    (run_dir / "metrics.json").unlink()
    (run_dir / "synthetic.pt").unlink()  # as if killed during distillation: nothing saved or shared yet
    shutil.rmtree(run_dir / ".cache" / "synthetic")
    resumed = run_experiment(config, run_dir, progress=False, echo=False)
    assert [c for c, _ in pipeline_fakes.CALLS] == ["data", "distiller"]  # weights were reused
    assert resumed.metrics["synthetic"] == first.metrics["synthetic"]  # same seeds, same numbers
    assert "weights: reused" in (run_dir / "run.log").read_text()


def test_another_config_in_the_same_folder_needs_force(tmp_path, config):
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir, progress=False, echo=False)
    other = load_config(write_config(tmp_path, BASE), {"method.ipc": 3})
    with pytest.raises(RunError, match=r"method.ipc: 2 -> 3.*--force"):
        run_experiment(other, run_dir, progress=False, echo=False)
    result = run_experiment(other, run_dir, force=True, progress=False, echo=False)
    assert not result.finished_before
    assert torch.load(run_dir / "synthetic.pt", weights_only=False)["images"].shape[0] == 9


def test_baselines_are_shared_between_runs_through_the_cache(tmp_path, config):
    cache = tmp_path / "cache"
    run_experiment(config, tmp_path / "a", progress=False, echo=False, cache_dir=cache)
    oracle = load_config(write_config(tmp_path, BASE), {"weighter.name": "oracle"})
    b = run_experiment(oracle, tmp_path / "b", progress=False, echo=False, cache_dir=cache)
    log = (tmp_path / "b" / "run.log").read_text()
    assert "baseline random_real: reused" in log and "baseline whole_train: reused" in log
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert b.metrics["baselines"] == a["baselines"]
    assert b.metrics["weights"]["weight_share"] > 0.3  # oracle: half of each class's weight on its 10% conflicting


def test_runs_that_differ_only_in_eval_share_one_synthetic_set(tmp_path):
    cache = tmp_path / "cache"
    recording = write_config(tmp_path, BASE.replace('name = "uniform"', 'name = "recording"'))
    erm = load_config(recording)
    run_experiment(erm, tmp_path / "erm", progress=False, echo=False, cache_dir=cache)
    pipeline_fakes.CALLS.clear()
    other_eval = load_config(recording, {"eval.epochs": 3})
    run_experiment(other_eval, tmp_path / "other_eval", progress=False, echo=False, cache_dir=cache)
    assert "distiller" not in dict(pipeline_fakes.CALLS)
    assert "reused the set shared" in (tmp_path / "other_eval" / "run.log").read_text()
    first, second = (torch.load(tmp_path / d / "synthetic.pt", weights_only=False) for d in ("erm", "other_eval"))
    assert torch.equal(first["images"], second["images"])
    assert second["config"] == other_eval.to_dict() and second["distilled_by"] == erm.to_dict()

    pipeline_fakes.CALLS.clear()
    other_seed = load_config(recording, {"run.seed": 1})
    run_experiment(other_seed, tmp_path / "other_seed", progress=False, echo=False, cache_dir=cache)
    assert "distiller" in dict(pipeline_fakes.CALLS)


def test_a_learned_lr_trains_the_evaluation_nets_unless_switched_off(tmp_path):
    config = load_config(write_config(tmp_path, BASE), {"method.syn_lr": 0.05})
    run_experiment(config, tmp_path / "a", progress=False, echo=False)
    assert "lr 0.05 (learned by the method)" in (tmp_path / "a" / "run.log").read_text()
    plain = load_config(write_config(tmp_path, BASE), {"method.syn_lr": 0.05, "eval.learned_lr": False})
    run_experiment(plain, tmp_path / "b", progress=False, echo=False)
    assert "lr 0.01, trainer erm" in (tmp_path / "b" / "run.log").read_text()


def test_a_factory_value_error_becomes_a_config_error(tmp_path):
    config = load_config(write_config(tmp_path, BASE), {"weighter.name": "kde", "weighter.temperature": 0.0})
    with pytest.raises(ConfigError, match=r"weighter 'kde': .*temperature.*Fix weighter\.\*"):
        run_experiment(config, tmp_path / "run", progress=False, echo=False)


def test_an_unwritable_output_folder_says_what_to_do(tmp_path, config):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="cannot write to the output folder.*--out"):
        run_experiment(config, blocker / "run", progress=False, echo=False)


def test_weigh_only_writes_weights_that_a_later_run_reuses(tmp_path):
    config = load_config(write_config(tmp_path, BASE), {"weighter.name": "oracle"})
    stats = run_weighing(config, tmp_path / "run", progress=False, echo=False)
    assert stats["auc"] > 0.9 and (tmp_path / "run" / "weights.png").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()
    run_experiment(config, tmp_path / "run", progress=False, echo=False)
    assert "weights: reused" in (tmp_path / "run" / "run.log").read_text()


def test_cli_weigh_prints_diagnostics_once_per_weighter_of_a_grid(tmp_path, capsys):
    path = write_config(tmp_path, BASE + '\n[grid]\n"weighter.name" = ["uniform", "oracle"]\n"method.ipc" = [1, 2]\n')
    assert main(["weigh", str(path), "--out", str(tmp_path / "grid"), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "conflicting samples" in line]
    assert len(lines) == 2 and lines[0].startswith("uniform on tiny") and lines[1].startswith("oracle on tiny")
    assert (tmp_path / "grid" / "weighter=oracle,ipc=1" / "weights.png").exists()


def test_an_interrupted_run_says_how_to_resume(tmp_path, capsys):
    path = write_config(tmp_path, BASE)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet", "--set", "method.interrupt=true"]) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    assert (tmp_path / "run" / "weights.pt").exists()


def test_a_full_disk_keeps_finished_steps_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    path = write_config(tmp_path, BASE)
    save = reference_methods.pipeline.save_synthetic

    def full_disk(syn, target, config):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(reference_methods.pipeline, "save_synthetic", full_disk)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert "The disk is full: free space" in capsys.readouterr().err
    assert (tmp_path / "run" / "weights.pt").exists() and not (tmp_path / "run" / "synthetic.pt").exists()
    monkeypatch.setattr(reference_methods.pipeline, "save_synthetic", save)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "weights: reused" in (tmp_path / "run" / "run.log").read_text()


def test_a_run_into_a_log_file_shows_progress(tmp_path, capsys):
    path = write_config(tmp_path, BASE)
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    assert "evaluate" in capsys.readouterr().err  # captured stderr is not a terminal


def test_quiet_runs_show_no_progress(tmp_path, capsys):
    path = write_config(tmp_path, BASE)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "evaluate" not in capsys.readouterr().err
