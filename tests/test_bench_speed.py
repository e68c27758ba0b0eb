"""bench-speed end to end at toy sizes: every figure is written, positive and consistent."""

import json

from reference_methods import bench_speed


def test_bench_speed_reports_dm_and_evaluation_and_a_paper_cell_estimate(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert bench_speed.main(["--device", "cpu", "--ipc", "1", "--methods", "dm", "--per-class", "4",
                             "--short", "1", "--long", "2", "--dm-repeats", "1",
                             "--eval-short", "1", "--eval-long", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["ipc"] == 1 and result["dm_embedding"]["one_pass"] > 0 and result["dm_embedding"]["per_class"] > 0
    dm, evaluation = result["methods"]["dm"], result["evaluation"]
    assert dm["iterations_per_s"] > 0 and evaluation["seconds_per_epoch"] > 0
    assert evaluation["paper_eval_s"] == evaluation["seconds_per_epoch"] * 1000 * 5
    assert result["paper_dm_cell_s"] == dm["paper_run_s"] + evaluation["paper_eval_s"]
    assert "one paper-preset DM cell" in capsys.readouterr().out
