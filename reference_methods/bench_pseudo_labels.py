"""pseudo_oracle benchmark (not a test): how well do its pseudo bias labels match the true ones?

``python -m reference_methods.bench_pseudo_labels --dataset bg_fmnist --conflict-ratio 0.05
[--set resolution=4 --set depth=1 --set norm=batchnorm --set steps=100] [--sweep steps=10,100]
[--seed 0] [--device cpu] [--threads 2] [--json out.json] [--by-bias-value]``

``pseudo_oracle`` balances (class, predicted class) groups, so its weights remove the bias only as
far as the classifier predicts an aligned image as its own class and a conflicting image as the
class its bias value belongs to. For every conflict ratio and every point of the sweep grid this
builds the train split (data and weighter seeds derived from ``--seed`` as ``dd-distill run`` does,
so seed 0 reproduces a run folder's ``weight_stats.json``), trains the classifier once and reports
where the conflicting images land (their bias value's class, their own class, a third class), how
many aligned images keep their own class, and the weight diagnostics of the group-balanced weights
(share on the conflicting samples, bias-only accuracy), normalised per class as ``dd-distill run``
normalises them; ``--by-bias-value`` breaks the conflicting images down by their bias value.
docs/results.md ("pseudo_oracle with a shape-blind classifier") reads these figures.
"""

from __future__ import annotations

import itertools
import time

import torch
from torch import Tensor

from dd_plugins.diagnostics import format_diagnostics, weight_diagnostics
from dd_plugins.registry import get_weighter
from dd_plugins.weighters.oracle import group_balanced_weights
from dd_plugins.weights import WeightContext, normalise_weights
from reference_methods.bench_common import build_data, parameter_grid, report_rows, weighter_bench_parser
from reference_methods.datasets.base import BiasedSplit
from reference_methods.seeds import derive_seed


def pseudo_label_agreement(pseudo: Tensor, split: BiasedSplit) -> dict:
    """Shares of conflicting images predicted as the class their bias value is aligned with, as
    their own class or as a third one, and of aligned images predicted as their own class."""
    pseudo, labels = pseudo.long().cpu(), split.labels.long().cpu()
    conflicting = split.conflicting.cpu()
    aligned = ~conflicting

    def share(mask: Tensor, within: Tensor) -> float:
        return (mask & within).sum().item() / max(int(within.sum()), 1)

    as_own = pseudo == labels
    as_bias = split.aligned_bias.long().cpu()[pseudo] == split.bias_labels.long().cpu()
    return {
        "conflicting_as_bias": share(as_bias, conflicting),
        "conflicting_as_own": share(as_own, conflicting),
        "conflicting_as_other": share(~as_bias & ~as_own, conflicting),
        "aligned_as_own": share(as_own, aligned),
    }


def agreement_by_bias_value(pseudo: Tensor, split: BiasedSplit, num_bias: int) -> list[dict]:
    """For each bias value: how many conflicting images carry it, the share predicted as the value's
    class, and the class predicted most often among the rest (neither the value's class nor the
    image's own), with its share. Shows which bias values the classifier sees and which it confuses."""
    pseudo, labels = pseudo.long().cpu(), split.labels.long().cpu()
    bias, aligned_bias = split.bias_labels.long().cpu(), split.aligned_bias.long().cpu()
    conflicting = split.conflicting.cpu()
    rows = []
    for value in range(num_bias):
        members = conflicting & (bias == value)
        n = int(members.sum())
        predicted = pseudo[members]
        as_bias = aligned_bias[predicted] == value
        others = predicted[~as_bias & (predicted != labels[members])]
        counts = torch.bincount(others, minlength=len(aligned_bias))
        top = int(counts.argmax())
        rows.append({"bias_value": value, "n": n, "as_bias": as_bias.sum().item() / max(n, 1),
                     "top_other_class": top if counts[top] > 0 else None, "top_other": counts[top].item() / max(n, 1)})
    return rows


def run_point(split: BiasedSplit, num_classes: int, params: dict, seed: int, device: torch.device) -> dict:
    """Train one classifier on ``split`` and score its pseudo labels and the weights they give."""
    weighter = get_weighter("pseudo_oracle", **params)
    ctx = WeightContext(images=split.images, labels=split.labels, num_classes=num_classes,
                        device=device, seed=seed, progress=False)
    start = time.perf_counter()
    pseudo = weighter.pseudo_bias_labels(ctx).cpu()
    seconds = time.perf_counter() - start
    weights = normalise_weights(group_balanced_weights(split.labels, pseudo), split.labels, num_classes)
    stats = weight_diagnostics(weights, split.labels, split.conflicting, num_classes, bias_labels=split.bias_labels)
    num_bias = int(split.bias_labels.max()) + 1
    return {"params": params, "seconds": seconds, **pseudo_label_agreement(pseudo, split),
            "by_bias_value": agreement_by_bias_value(pseudo, split, num_bias),
            "count_share": stats["count_share"], "weight_share": stats["weight_share"], "auc": stats["auc"],
            "bias_only_acc_before": stats["bias_only_acc_before"], "bias_only_acc": stats["bias_only_acc"]}


def format_params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| data | ratio | seed | params | conflicting → bias class | → own class | → third class "
             "| aligned → own class | weight share | bias-only acc | seconds |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        params = format_params(r["params"])
        lines.append(f"| {r['dataset']} | {r['conflict_ratio']} | {r['seed']} | {params} | "
                     f"{r['conflicting_as_bias']:.3f} | {r['conflicting_as_own']:.3f} | "
                     f"{r['conflicting_as_other']:.3f} | {r['aligned_as_own']:.3f} | {r['weight_share']:.3f} | "
                     f"{r['bias_only_acc']:.3f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def by_bias_value_table(rows: list[dict]) -> str:
    """One row per run point, one column per bias value: "share as its class (→ most frequent other
    class: share)" over the conflicting images that carry the value."""
    values = [v["bias_value"] for v in rows[0]["by_bias_value"]] if rows else []
    lines = ["| data | seed | params | " + " | ".join(f"bias {v}" for v in values) + " |",
             "| --- | ---: | --- |" + " --- |" * len(values)]
    for r in rows:
        params = format_params(r["params"])
        cells = [f"{v['as_bias']:.2f}" if v["top_other_class"] is None
                 else f"{v['as_bias']:.2f} (→{v['top_other_class']}: {v['top_other']:.2f})" for v in r["by_bias_value"]]
        lines.append(f"| {r['dataset']} {r['conflict_ratio']} | {r['seed']} | {params} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = weighter_bench_parser("python -m reference_methods.bench_pseudo_labels", __doc__.splitlines()[0],
                                   "pseudo_oracle", "bg_fmnist", [0.05])
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="run seeds (data and weighter seeds derive "
                        "from each as in dd-distill run)")
    parser.add_argument("--by-bias-value", action="store_true", help="also print, per bias value, the share of its "
                        "conflicting images predicted as its class and the most frequent other prediction")
    args = parser.parse_args(argv)

    grid = parameter_grid(args)
    device = torch.device(args.device)
    rows = []
    for ratio, seed in itertools.product(args.conflict_ratio, args.seed):
        data = build_data(args.dataset, derive_seed(seed, "data"), ratio)
        for params in grid:
            row = run_point(data.train, data.num_classes, params, derive_seed(seed, "weighter"), device)
            row.update(dataset=args.dataset, conflict_ratio=ratio, seed=seed, n=len(data.train))
            print(f"{args.dataset} {ratio} seed {seed} {params or 'defaults'}: conflicting → bias class "
                  f"{row['conflicting_as_bias']:.3f}, own {row['conflicting_as_own']:.3f}, third "
                  f"{row['conflicting_as_other']:.3f}; aligned → own {row['aligned_as_own']:.3f}; "
                  f"{format_diagnostics(row)}; {row['seconds']:.1f}s", flush=True)
            rows.append(row)
    report_rows(rows, markdown_table(rows), args, argv)
    if args.by_bias_value:
        print("\nconflicting images by bias value: share predicted as its class (→ most frequent other class: share)")
        print(by_bias_value_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
