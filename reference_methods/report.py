"""Reports: run folders gathered into a Markdown and a CSV table (mean ± std over seeds) and a PNG chart.

A row is one setting (dataset, method, IPC, weighter and whatever else differs between the runs);
its seeds are pooled: mean ± standard deviation of the per-seed means (with a single seed, the
standard deviation over that run's evaluation nets). Baseline rows (a random real subset of the
same IPC, a net trained on the whole biased train split) come from the runs' ``metrics.json`` and
are listed once per setting of data and evaluation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reference_methods.config import ConfigError  # noqa: E402
from reference_methods.io import atomic_write_text  # noqa: E402
from reference_methods.pictures import save_figure  # noqa: E402

METRICS = (("acc", "acc"), ("conflicting_acc", "conflicting"), ("worst_group", "worst group"),
           ("deo_m", "DEO-M"), ("deo_a", "DEO-A"))
BASELINE_LABELS = {"random_real": "random real subset", "whole_train": "whole train split"}
COMPONENT_SECTIONS = ("data", "weighter", "method")
# Keys that never make two runs different settings (seeds are pooled; paths are where, not what).
IGNORED_KEYS = ("name", "run.seed", "run.out_dir", "run.cache_dir", "run.device", "run.preset")
IDENTITY = (("data.name", "dataset"), ("method.name", "method"), ("method.ipc", "ipc"), ("weighter.name", "weighter"))
COMPARE_REFERENCE = {"weighter": ("weighter.name", "uniform")}


@dataclass(frozen=True)
class RunRecord:
    """A finished run folder: its resolved config (flattened to dotted keys) and its metrics."""

    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class Row:
    """One line of the table: the setting, the seeds pooled in it and the pooled metrics."""

    setting: dict[str, Any]
    kind: str  # "distilled" or a baseline name
    seeds: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> per-seed means
    single_std: dict[str, float] = field(default_factory=dict)  # metric -> std over nets (one seed)
    times: list[float] = field(default_factory=list)
    groups: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # (class, bias) -> per-seed means

    def stat(self, metric: str) -> tuple[float, float]:
        values = self.values.get(metric, [])
        if not values:
            return math.nan, math.nan
        if len(values) == 1:
            return values[0], self.single_std.get(metric, 0.0)
        return statistics.fmean(values), statistics.stdev(values)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become JSON text so they can be compared and shown."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def find_runs(folders: list[Path]) -> list[RunRecord]:
    """Every finished run (a folder with ``metrics.json`` and ``config.json``) under ``folders``."""
    records, seen = [], set()
    for folder in folders:
        for metrics_path in sorted(Path(folder).rglob("metrics.json")):
            run_dir = metrics_path.parent
            if any(part.startswith(".") for part in run_dir.relative_to(folder).parts):
                continue  # caches
            config_path = run_dir / "config.json"
            if not config_path.exists() or run_dir.resolve() in seen:
                continue
            seen.add(run_dir.resolve())
            records.append(RunRecord(run_dir, flatten(json.loads(config_path.read_text())),
                                     json.loads(metrics_path.read_text())))
    return records


def _owner(key: str) -> str | None:
    """The name key that decides whether ``key`` exists: ``method.lr_img`` belongs to ``method.name``."""
    section = key.split(".")[0]
    if section in COMPONENT_SECTIONS and not key.endswith(".name"):
        return f"{section}.name"
    if key.startswith("eval.trainer_args."):
        return "eval.trainer"
    return None


def varying_keys(records: list[RunRecord]) -> list[str]:
    """Config keys whose values differ between runs of the same components (seeds and paths excluded)."""
    keys: list[str] = []
    for record in records:
        keys += [k for k in record.config if k not in keys and k not in IGNORED_KEYS]
    out = []
    for key in keys:
        owner = _owner(key)
        groups: dict[Any, set[str]] = {}
        for record in records:
            if key in record.config:
                group = record.config.get(owner) if owner else None
                groups.setdefault(group, set()).add(json.dumps(record.config[key]))
        if any(len(values) > 1 for values in groups.values()):
            out.append(key)
    return out


def _label(key: str, keys: list[str]) -> str:
    short = key.split(".")[-1]
    return short if sum(k.split(".")[-1] == short for k in keys) == 1 else key


def summarise(records: list[RunRecord]) -> tuple[list[Row], list[tuple[str, str]]]:
    """Rows pooled over seeds, and the columns that define a setting as (config key, header)."""
    varying = varying_keys(records)
    identity_keys = [k for k, _ in IDENTITY]
    extra = [k for k in varying if k not in identity_keys]
    columns = list(IDENTITY) + [(k, _label(k, extra)) for k in extra]
    rows: dict[str, Row] = {}
    baseline_seen: set[tuple[str, str, int]] = set()
    for record in records:
        seed = record.config.get("run.seed", 0)
        setting = {key: record.config.get(key, "") for key, _ in columns}
        _add(rows, setting, "distilled", seed, record.metrics.get("synthetic", {}),
             _set_time(record.metrics.get("time", {})))
        for baseline, metrics in record.metrics.get("baselines", {}).items():
            base_setting = baseline_setting(setting, baseline)
            marker = (baseline, json.dumps(base_setting, sort_keys=True), seed)
            if marker in baseline_seen:
                continue
            baseline_seen.add(marker)
            _add(rows, base_setting, baseline, seed, metrics, None)
    others = [k for k, _ in columns if k != "weighter.name"]
    ordered = sorted(rows.values(), key=lambda r: (r.kind != "distilled", r.kind, [str(r.setting[k]) for k in others],
                                                   _weighter_order(str(r.setting["weighter.name"]))))
    return ordered, columns


def _weighter_order(name: str) -> tuple[int, str]:
    """``uniform`` (the plain method) first, then the others by name."""
    return (name != "uniform", name)


def baseline_setting(setting: dict[str, Any], baseline: str) -> dict[str, Any]:
    """The setting of a distilled row's baseline: only data, evaluation and (random subset) IPC are kept."""
    out = {key: value if key.startswith(("data.", "eval.")) else "" for key, value in setting.items()}
    out["method.name"] = BASELINE_LABELS.get(baseline, baseline)
    out["method.ipc"] = setting["method.ipc"] if baseline == "random_real" else "all"
    return out


def _set_time(time_record: dict[str, float]) -> float | None:
    """Seconds to produce the set: weights + distillation."""
    if "distill" not in time_record:
        return None
    return time_record.get("weights", 0.0) + time_record["distill"]


def _add(rows: dict[str, Row], setting: dict[str, Any], kind: str, seed: int, metrics: dict, seconds: float | None) -> None:
    key = json.dumps([kind, setting], sort_keys=True)
    row = rows.setdefault(key, Row(setting, kind))
    if seed in row.seeds:
        return
    row.seeds.append(seed)
    for metric, _ in METRICS:
        if metric in metrics:
            row.values.setdefault(metric, []).append(metrics[metric]["mean"])
            row.single_std[metric] = metrics[metric].get("std", 0.0)
    for group in metrics.get("groups", []):
        row.groups.setdefault((group["class"], group["bias"]), []).append(group["mean"])
    if seconds is not None:
        row.times.append(seconds)


def compare_rows(rows: list[Row], compare: str) -> dict[int, dict[str, float]]:
    """Per row index, the gain of each metric's mean over the reference row (same setting, weighter uniform)."""
    key, reference = COMPARE_REFERENCE[compare]
    references = {}
    for row in rows:
        if row.kind == "distilled" and row.setting.get(key) == reference:
            references[json.dumps({k: v for k, v in row.setting.items() if k != key}, sort_keys=True)] = row
    gains = {}
    for i, row in enumerate(rows):
        if row.kind != "distilled":
            continue
        ref = references.get(json.dumps({k: v for k, v in row.setting.items() if k != key}, sort_keys=True))
        if ref is not None:
            gains[i] = {m: row.stat(m)[0] - ref.stat(m)[0] for m, _ in METRICS}
    return gains


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _pm(mean: float, std: float) -> str:
    return "—" if math.isnan(mean) else f"{mean:.1f} ± {std:.1f}"


def markdown_table(rows: list[Row], columns: list[tuple[str, str]], compare: str | None = None) -> str:
    """The table as Markdown: setting columns, seeds, metrics (mean ± std), time, and gains with ``compare``."""
    gains = compare_rows(rows, compare) if compare else {}
    header = [h for _, h in columns] + ["seeds"] + [h for _, h in METRICS] + ["time (s)"]
    if compare:
        header += ["Δ acc", "Δ conflicting", "Δ worst group"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for i, row in enumerate(rows):
        cells = [_fmt(row.setting[k]) or "—" for k, _ in columns] + [str(len(row.seeds))]
        cells += [_pm(*row.stat(m)) for m, _ in METRICS]
        cells.append(f"{statistics.fmean(row.times):.0f}" if row.times else "—")
        if compare:
            gain = gains.get(i)
            cells += [f"{gain[m]:+.1f}" if gain else "—" for m in ("acc", "conflicting_acc", "worst_group")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def weakest_groups(row: Row, count: int) -> list[tuple[int, int, float]]:
    """The ``count`` (class, bias) test groups with the lowest accuracy averaged over the row's seeds,
    as (class, bias, mean accuracy)."""
    means = [(c, b, statistics.fmean(v)) for (c, b), v in row.groups.items()]
    return sorted(means, key=lambda g: (g[2], g[0], g[1]))[:count]


def weakest_groups_markdown(rows: list[Row], columns: list[tuple[str, str]], count: int) -> str:
    """Per row, its ``count`` weakest test groups: which (class, bias value) a worst-group figure comes from."""
    lines = [f"## Weakest groups\n\nPer row, the {count} (class, bias value) test groups with the lowest accuracy "
             "(mean over the row's seeds; runs from before per-group metrics have none).\n",
             "| " + " | ".join([h for _, h in columns] + ["kind", "weakest groups: class/bias accuracy"]) + " |",
             "|" + "|".join("---" for _ in range(len(columns) + 2)) + "|"]
    for row in rows:
        groups = ", ".join(f"{c}/{b} {acc:.1f}" for c, b, acc in weakest_groups(row, count)) or "—"
        lines.append("| " + " | ".join([_fmt(row.setting[k]) or "—" for k, _ in columns] + [row.kind, groups]) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[Row], columns: list[tuple[str, str]], compare: str | None = None) -> str:
    """The table as CSV: one column per setting key, ``<metric>_mean``/``<metric>_std``, seeds, time."""
    gains = compare_rows(rows, compare) if compare else {}
    header = [k for k, _ in columns] + ["kind", "seeds"]
    for metric, _ in METRICS:
        header += [f"{metric}_mean", f"{metric}_std"]
    header.append("time_s")
    if compare:
        header += [f"gain_{metric}" for metric, _ in METRICS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for i, row in enumerate(rows):
        line = [row.setting[k] for k, _ in columns] + [row.kind, " ".join(map(str, row.seeds))]
        for metric, _ in METRICS:
            mean, std = row.stat(metric)
            line += [f"{mean:.4f}", f"{std:.4f}"]
        line.append(f"{statistics.fmean(row.times):.2f}" if row.times else "")
        if compare:
            gain = gains.get(i)
            line += [f"{gain[m]:.4f}" if gain else "" for m, _ in METRICS]
        writer.writerow(line)
    return buffer.getvalue()


def accuracy_chart(rows: list[Row], columns: list[tuple[str, str]], path: Path) -> None:
    """Bars of unbiased test accuracy (± std) per weighter, one group per setting other than the weighter;
    the baselines of each group's data and IPC drawn as grey bars beside it."""
    weighters = sorted({str(r.setting["weighter.name"]) for r in rows if r.kind == "distilled"}, key=_weighter_order)
    groups: dict[str, dict[str, Row]] = {}
    for row in rows:
        if row.kind == "distilled":
            groups.setdefault(_group_label(row, columns), {})[str(row.setting["weighter.name"])] = row
    baselines = sorted({r.kind for r in rows if r.kind != "distilled"})
    by_setting = {(r.kind, json.dumps(r.setting, sort_keys=True)): r for r in rows if r.kind != "distilled"}
    series = weighters + [BASELINE_LABELS.get(b, b) for b in baselines]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 0.45 * len(series) * max(1, len(groups))), 4))
    colours = plt.get_cmap("tab10")
    handles: dict[str, Any] = {}
    for g, (label, by_weighter) in enumerate(groups.items()):
        sample = next(iter(by_weighter.values()))
        for i, name in enumerate(series):
            if i < len(weighters):
                row, colour = by_weighter.get(name), colours(i % 10)
            else:
                kind = baselines[i - len(weighters)]
                row = by_setting.get((kind, json.dumps(baseline_setting(sample.setting, kind), sort_keys=True)))
                colour = str(0.45 + 0.25 * (i - len(weighters)))
            if row is None:
                continue
            mean, std = row.stat("acc")
            handles[name] = ax.bar(g + (i - (len(series) - 1) / 2) * width, mean, width, yerr=std, capsize=2,
                                   color=colour)
    tilt = len(groups) > 3
    ax.set_xticks(range(len(groups)), list(groups), rotation=20 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylabel("unbiased test accuracy (%)")
    ax.set_ylim(0, 100)
    shown = [name for name in series if name in handles]
    ax.legend([handles[n] for n in shown], shown, fontsize="small", ncol=min(3, len(shown)), loc="upper center",
              bbox_to_anchor=(0.5, -0.18 - 0.1 * tilt))
    save_figure(fig, path)


def _group_label(row: Row, columns: list[tuple[str, str]]) -> str:
    head = f"{_fmt(row.setting['data.name'])} {_fmt(row.setting['method.name'])} IPC {_fmt(row.setting['method.ipc'])}"
    return "\n".join([head] + [f"{header}={_fmt(row.setting[key])}" for key, header in columns[len(IDENTITY):]])


def write_report(folders: list[Path], out_dir: Path, compare: str | None = None,
                 groups: int = 0) -> tuple[str, list[Path]]:
    """Gather runs under ``folders`` into ``out_dir``/report.{md,csv,png}; returns the Markdown and the paths.
    ``groups`` > 0 adds each row's weakest test groups after the table."""
    records = find_runs(folders)
    if not records:
        raise ConfigError(f"no finished runs (folders with metrics.json) under {', '.join(map(str, folders))}. "
                          "Give the folders that `dd-distill run` wrote (default runs/<config name>).")
    rows, columns = summarise(records)
    markdown = markdown_table(rows, columns, compare)
    if groups > 0:
        markdown += "\n" + weakest_groups_markdown(rows, columns, groups)
    out_dir = Path(out_dir)
    paths = [out_dir / "report.md", out_dir / "report.csv", out_dir / "report.png"]
    atomic_write_text(f"# Report\n\nRuns: {len(records)} from {', '.join(map(str, folders))}. Metrics in %, "
                      "mean ± std over seeds; time = seconds to weigh and distil.\n\n" + markdown, paths[0])
    atomic_write_text(csv_table(rows, columns, compare), paths[1])
    accuracy_chart(rows, columns, paths[2])
    return markdown, paths
