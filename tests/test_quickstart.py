"""The README's main job, end to end with the real pieces (cdigits, dm, uniform/kde/oracle, erm) at a tiny budget."""

from __future__ import annotations

import json

from reference_methods.cli import main

TINY_BUDGET = [
    "method.iterations=5", "method.batch_real=16", "method.net_width=16",
    "weighter.kde.steps=5", "weighter.kde.width=16", "weighter.kde.batch_size=128",
    "eval.num_eval=1", "eval.epochs=5", "eval.net_width=16", "eval.whole_train_epochs=1",
]


def test_quickstart_runs_every_weighter_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "quickstart"
    args = ["run", "quickstart", "--out", str(out), "--quiet"] + [a for s in TINY_BUDGET for a in ("--set", s)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 cells: 3 run, 0 finished earlier, 0 failed" in printed
    for weighter in ("uniform", "kde", "oracle"):
        assert f"| cdigits | dm | 10 | {weighter} | 1 |" in printed
        cell = out / f"weighter={weighter}"
        for name in ("config.json", "weights.pt", "weight_stats.json", "synthetic.pt", "synthetic.png", "metrics.json"):
            assert (cell / name).exists(), (weighter, name)
    assert "| cdigits | random real subset | 10 | — | 1 |" in printed
    assert "| cdigits | whole train split | all | — | 1 |" in printed

    stats = {w: json.loads((out / f"weighter={w}" / "weight_stats.json").read_text()) for w in ("uniform", "oracle")}
    assert abs(stats["uniform"]["count_share"] - 0.05) < 0.01
    assert stats["oracle"]["weight_share"] > 0.4  # oracle balances aligned and conflicting groups
    assert json.loads((out / "weighter=kde" / "config.json").read_text())["weighter"]["steps"] == 5

    assert main(args) == 0  # a second run finds every cell finished
    assert "3 cells: 0 run, 3 finished earlier, 0 failed" in capsys.readouterr().out
