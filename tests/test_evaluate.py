"""Evaluation protocol: fresh nets trained by a trainer, metrics as mean/std/runs; baselines and saved files."""

from __future__ import annotations

import statistics

import pytest
import torch

from reference_methods.evaluate import evaluate_set, export_vico, random_real_subset, save_synthetic
from reference_methods.methods.base import SyntheticSet
from reference_methods.metrics import METRICS
from reference_methods.trainers.base import TrainSchedule
from reference_methods.trainers.erm import ERMTrainer

CPU = torch.device("cpu")
SMALL_NET = dict(net_width=8, net_depth=2)


def test_evaluate_set_reports_every_metric_over_every_net(tiny_biased_dataset):
    data = tiny_biased_dataset
    subset = random_real_subset(data.train, 5, torch.Generator().manual_seed(0))
    schedule = TrainSchedule(epochs=2, batch_size=8)
    result = evaluate_set(subset.images, subset.labels, data, trainer="erm", schedule=schedule, num_eval=2,
                          device=CPU, seed=0, **SMALL_NET)
    assert set(result) == set(METRICS) | {"groups"}
    test = data.test
    populated = {(int(c), int(b)) for c, b in zip(test.labels, test.bias_labels)}
    assert {(g["class"], g["bias"]) for g in result["groups"]} == populated
    assert sum(g["count"] for g in result["groups"]) == len(test.labels)
    for r in range(2):  # each net's worst group is its lowest group accuracy
        assert min(g["runs"][r] for g in result["groups"]) == pytest.approx(result["worst_group"]["runs"][r])
    for m in METRICS:
        assert len(result[m]["runs"]) == 2 and all(0 <= v <= 100 for v in result[m]["runs"])
        assert result[m]["mean"] == pytest.approx(sum(result[m]["runs"]) / 2)
        assert result[m]["std"] == pytest.approx(statistics.pstdev(result[m]["runs"]))
    again = evaluate_set(subset.images, subset.labels, data, trainer=ERMTrainer(), schedule=schedule, num_eval=2,
                         device=CPU, seed=0, **SMALL_NET)
    assert again == result


def test_erm_learns_the_tiny_task(tiny_biased_dataset):
    data = tiny_biased_dataset
    result = evaluate_set(data.train.images, data.train.labels, data, trainer="erm", num_eval=1, device=CPU, seed=1,
                          schedule=TrainSchedule(epochs=20, batch_size=32, lr=0.05), dsa=False, **SMALL_NET)
    assert result["acc"]["mean"] > 70  # chance is 33%


def test_random_real_subset_draws_distinct_images_per_class_in_blocks(tiny_biased_dataset):
    train = tiny_biased_dataset.train
    subset = random_real_subset(train, 4, torch.Generator().manual_seed(0))
    assert torch.equal(subset.labels, torch.tensor([0] * 4 + [1] * 4 + [2] * 4))
    assert len({tuple(x.flatten()[:20].tolist()) for x in subset.images}) == 12
    same = random_real_subset(train, 4, torch.Generator().manual_seed(0))
    assert torch.equal(same.images, subset.images)
    with pytest.raises(ValueError, match="lower ipc"):
        random_real_subset(train, 41, torch.Generator().manual_seed(0))


def test_saved_and_exported_sets_load_back(tmp_path):
    syn = SyntheticSet(torch.randn(4, 3, 8, 8), torch.tensor([0, 0, 1, 1]), {"lr": 0.01})
    save_synthetic(syn, tmp_path / "synthetic.pt", {"method": {"name": "dm"}})
    saved = torch.load(tmp_path / "synthetic.pt", weights_only=False)
    assert torch.equal(saved["images"], syn.images) and torch.equal(saved["labels"], syn.labels)
    assert saved["extras"] == {"lr": 0.01} and saved["config"] == {"method": {"name": "dm"}}
    export_vico(syn, tmp_path / "res_vico.pt")
    (images, labels), = torch.load(tmp_path / "res_vico.pt")["data"]
    assert torch.equal(images, syn.images) and torch.equal(labels, syn.labels)
