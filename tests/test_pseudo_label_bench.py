"""bench_pseudo_labels: where pseudo_oracle's classifier puts aligned and conflicting images."""

import json

import pytest
import torch

from dd_plugins import compute_weights, get_weighter
from dd_plugins.diagnostics import weight_diagnostics
from reference_methods import bench_pseudo_labels
from reference_methods.datasets.base import BiasedSplit
from reference_methods.datasets.cdigits import build_cdigits


@pytest.fixture(scope="module")
def cdigits_train():
    data = build_cdigits(seed=0, conflict_ratio=0.05)
    return data.train, data.num_classes


def test_agreement_counts_each_kind_of_prediction():
    # aligned_bias maps class c to bias value (c + 1) % 3, so bias value b is aligned with class (b - 1) % 3
    labels = torch.tensor([0, 0, 1, 1, 2, 0, 1, 2])
    bias = torch.tensor([1, 1, 2, 2, 0, 0, 0, 1])  # the last three are conflicting
    split = BiasedSplit(torch.zeros(8, 1, 2, 2), labels, bias, aligned_bias=torch.tensor([1, 2, 0]))
    pseudo = torch.tensor([0, 1, 1, 0, 2, 2, 1, 1])
    # conflicting: (0, bias 0) -> 2 is bias 0's class; (1, bias 0) -> 1 is its own; (2, bias 1) -> 1 a third
    # aligned: 3 of 5 keep their class
    assert bench_pseudo_labels.pseudo_label_agreement(pseudo, split) == pytest.approx({
        "conflicting_as_bias": 1 / 3, "conflicting_as_own": 1 / 3, "conflicting_as_other": 1 / 3,
        "aligned_as_own": 3 / 5})


def test_agreement_by_bias_value_names_the_confused_class():
    # aligned_bias = identity; conflicting images: three with bias 2 (classes 0, 0, 1), one with bias 0 (class 1)
    labels = torch.tensor([0, 0, 1, 2, 0, 0, 1, 1])
    bias = torch.tensor([0, 0, 1, 2, 2, 2, 2, 0])
    split = BiasedSplit(torch.zeros(8, 1, 2, 2), labels, bias, aligned_bias=torch.arange(3))
    pseudo = torch.tensor([0, 0, 1, 2, 2, 1, 1, 1])
    # bias 2: class 0 -> 2 (as bias), class 0 -> 1 (a third class), class 1 -> 1 (own); bias 0: class 1 -> 1 (own)
    rows = bench_pseudo_labels.agreement_by_bias_value(pseudo, split, 3)
    assert [r["n"] for r in rows] == [1, 0, 3]
    assert rows[2]["as_bias"] == pytest.approx(1 / 3)
    assert rows[2]["top_other_class"] == 1 and rows[2]["top_other"] == pytest.approx(1 / 3)
    assert rows[0]["as_bias"] == 0.0 and rows[0]["top_other_class"] is None
    assert rows[1] == {"bias_value": 1, "n": 0, "as_bias": 0.0, "top_other_class": None, "top_other": 0.0}


def test_bench_rows_on_cdigits(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--dataset", "cdigits", "--conflict-ratio", "0.05", "--set", "width=16", "--set", "batch_size=64",
            "--sweep", "steps=1,20", "--json", str(out), "--by-bias-value"]
    assert bench_pseudo_labels.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["params"] for r in rows] == [{"width": 16, "batch_size": 64, "steps": 1},
                                           {"width": 16, "batch_size": 64, "steps": 20}]
    for row in rows:
        shares = row["conflicting_as_bias"] + row["conflicting_as_own"] + row["conflicting_as_other"]
        assert shares == pytest.approx(1.0)
        assert 0.0 < row["count_share"] < 0.1 and 0.0 <= row["bias_only_acc"] <= 1.0
    trained = rows[1]
    # cdigits' colour is the easiest feature: 20 steps send most conflicting images to their colour's class
    assert trained["conflicting_as_bias"] > 0.5 and trained["aligned_as_own"] > 0.9
    assert trained["weight_share"] > trained["count_share"]
    printed = capsys.readouterr().out
    assert "| cdigits | 0.05 | 0 | width=16, batch_size=64, steps=20 |" in printed
    assert "| cdigits 0.05 | 0 | width=16, batch_size=64, steps=20 | " in printed and "| bias 9 |" in printed
    by_value = trained["by_bias_value"]
    assert sum(v["n"] for v in by_value) == round(trained["count_share"] * trained["n"])
    conflicting_as_bias = sum(v["as_bias"] * v["n"] for v in by_value) / sum(v["n"] for v in by_value)
    assert conflicting_as_bias == pytest.approx(trained["conflicting_as_bias"])


def test_bench_weights_are_the_ones_a_run_gets(cdigits_train):
    train, num_classes = cdigits_train
    params = {"width": 16, "batch_size": 64, "steps": 20}
    row = bench_pseudo_labels.run_point(train, num_classes, params, seed=7, device=torch.device("cpu"))
    weights = compute_weights(get_weighter("pseudo_oracle", **params), "pseudo_oracle", train.images, train.labels,
                              num_classes, seed=7)
    stats = weight_diagnostics(weights, train.labels, train.conflicting, num_classes, bias_labels=train.bias_labels)
    assert row["weight_share"] == pytest.approx(stats["weight_share"])
    assert row["bias_only_acc"] == pytest.approx(stats["bias_only_acc"])
