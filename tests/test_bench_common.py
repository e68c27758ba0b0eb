"""bench_common: the command-line values and dataset building the weighter benchmarks share."""

import pytest

from reference_methods import bench_common


def test_parse_assignments():
    assert bench_common.parse_assignments(["steps=10,25", "bandwidth=median,0.1"], sweep=True) == {
        "steps": [10, 25], "bandwidth": ["median", 0.1]}
    assert bench_common.parse_assignments(["augment=False"], sweep=False) == {"augment": False}


def test_fairdd_style_sets_take_the_ratio_as_bias_ratio(monkeypatch):
    calls = []

    def build_fairdd_like(*, seed: int = 0, bias_ratio: float = 0.9):
        calls.append((seed, bias_ratio))
        return "data"

    def build_other(*, seed: int = 0):
        return "data"

    builders = {"fairdd_like": build_fairdd_like, "other": build_other}
    monkeypatch.setattr(bench_common, "get_dataset_builder", builders.__getitem__)
    assert bench_common.build_data("fairdd_like", 3, 0.1) == "data"
    assert calls == [(3, 0.9)]
    with pytest.raises(SystemExit, match="neither conflict_ratio nor bias_ratio"):
        bench_common.build_data("other", 3, 0.1)
