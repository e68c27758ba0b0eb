"""bench_kde on the offline cdigits set: rows, embedding reuse across weight-only sweeps, batch scope."""

import json

from reference_methods import bench_kde


def test_bench_rows_and_embedding_reuse(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--dataset", "cdigits", "--conflict-ratio", "0.05", "--set", "steps=2", "--set", "width=8",
            "--sweep", "bandwidth=median,0.1", "--batch-scope", "64", "--json", str(out)]
    assert bench_kde.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["params"] for r in rows] == [
        {"steps": 2, "width": 8, "bandwidth": "median"},
        {"steps": 2, "width": 8, "bandwidth": "median", "scope": "batch64"},
        {"steps": 2, "width": 8, "bandwidth": 0.1},
        {"steps": 2, "width": 8, "bandwidth": 0.1, "scope": "batch64"},
    ]
    assert rows[0]["embed_s"] > 0 and rows[2]["embed_s"] is None  # bandwidth alone reuses the embedding
    for row in rows:
        assert 0.0 < row["count_share"] < 0.1
        assert 0.0 <= row["weight_share"] <= 1.0 and 0.0 <= row["auc"] <= 1.0
    assert "| cdigits | 0.05 | steps=2, width=8, bandwidth=median |" in capsys.readouterr().out
