"""KDE weighter benchmark (not a test): does ``kde`` find the bias-conflicting samples, and at what cost?

``python -m reference_methods.bench_kde --dataset cmnist --conflict-ratio 0.05 0.01
[--sweep steps=25,50,100] [--sweep bandwidth=median,0.1] [--set source=ce] [--batch-scope 256]
[--device cpu] [--threads 2] [--json out.json]``

For every conflict ratio and every point of the sweep grid it builds the dataset's train split,
runs the weighter with the given parameters (defaults otherwise) and reports the host-side weight
diagnostics (``dd_plugins.diagnostics.weight_diagnostics``: conflicting samples' share of count
and of weight, ROC-AUC of weight as a conflicting-sample detector) plus the seconds spent on the
embedding and on density + weights. Points that differ only in weight parameters (bandwidth,
temperature, chunk_size) reuse the embedding in memory and report no embedding time.
``--batch-scope B`` also scores the paper's per-batch KDE: each class is cut into random batches
of B samples and the weights are computed within each batch, as a distiller drawing that batch
would; this tells whether the default per-class scope loses anything.
"""

from __future__ import annotations

import json
import time

import torch

from dd_plugins.diagnostics import format_diagnostics, weight_diagnostics
from dd_plugins.registry import get_weighter
from dd_plugins.weighters.supcon import sub_seed
from dd_plugins.weights import WeightContext
from reference_methods.bench_common import build_data, parameter_grid, report_rows, weighter_bench_parser
from reference_methods.seeds import derive_seed

WEIGHT_ONLY = {"bandwidth", "temperature", "chunk_size"}


def batch_scope_weights(weighter, emb: torch.Tensor, labels: torch.Tensor, batch_size: int,
                        generator: torch.Generator) -> torch.Tensor:
    """Weights as the paper's per-batch KDE gives them: within random class batches of ``batch_size``."""
    weights = torch.ones(labels.shape[0], dtype=torch.float64)
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(members.numel(), generator=generator)]
        for start in range(0, members.numel(), batch_size):
            batch = members[start:start + batch_size]
            weights[batch] = weighter.class_weights(emb[batch], generator).cpu()
    return weights


def run_point(split, num_classes: int, params: dict, seed: int, device: torch.device,
              embeddings: dict) -> tuple[dict, object, torch.Tensor]:
    """Weigh one split with one parameter set; returns the result row, the weighter and its embedding."""
    weighter = get_weighter("kde", **params)
    ctx = WeightContext(images=split.images, labels=split.labels, num_classes=num_classes,
                        device=device, seed=seed, progress=False)
    key = json.dumps({k: v for k, v in params.items() if k not in WEIGHT_ONLY}, sort_keys=True)
    embed_seconds = None
    if key not in embeddings:
        start = time.perf_counter()
        embeddings[key] = weighter.embedding(ctx)
        embed_seconds = time.perf_counter() - start
    emb = embeddings[key]
    start = time.perf_counter()
    weights = weighter.weights_from_embedding(emb, split.labels, num_classes, device=device, seed=seed)
    density_seconds = time.perf_counter() - start
    stats = weight_diagnostics(weights, split.labels, split.conflicting, num_classes, bias_labels=split.bias_labels)
    row = {"params": params, "embed_s": embed_seconds, "density_s": density_seconds,
           "count_share": stats["count_share"], "weight_share": stats["weight_share"], "auc": stats["auc"],
           "bias_only_acc_before": stats["bias_only_acc_before"], "bias_only_acc": stats["bias_only_acc"],
           "per_class": stats["per_class"]}
    return row, weighter, emb


def markdown_table(rows: list[dict]) -> str:
    lines = ["| data | ratio | params | conflicting count share | weight share | AUC | bias-only acc | embed s "
             "| density s |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "defaults"
        embed = "reused" if r["embed_s"] is None else f"{r['embed_s']:.1f}"
        lines.append(f"| {r['dataset']} | {r['conflict_ratio']} | {params} | {r['count_share']:.3f} | "
                     f"{r['weight_share']:.3f} | {r['auc']:.3f} | {r['bias_only_acc']:.3f} | {embed} | "
                     f"{r['density_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = weighter_bench_parser("python -m reference_methods.bench_kde", __doc__.splitlines()[0], "kde",
                                   "cmnist", [0.05, 0.01])
    parser.add_argument("--batch-scope", type=int, default=0, metavar="B", help="also score per-batch KDE with batches of B")
    parser.add_argument("--seed", type=int, default=0, help="run seed (data and weighter seeds derive from it)")
    args = parser.parse_args(argv)

    grid = parameter_grid(args)
    device = torch.device(args.device)
    weighter_seed = derive_seed(args.seed, "weighter")
    rows = []
    for ratio in args.conflict_ratio:
        data = build_data(args.dataset, derive_seed(args.seed, "data"), ratio)
        embeddings: dict = {}
        for params in grid:
            row, weighter, emb = run_point(data.train, data.num_classes, params, weighter_seed, device, embeddings)
            row.update(dataset=args.dataset, conflict_ratio=ratio, n=len(data.train))
            embed = "reused" if row["embed_s"] is None else f"{row['embed_s']:.1f}s"
            print(f"{args.dataset} {ratio} {params or 'defaults'}: {format_diagnostics(row)}; "
                  f"embed {embed}, density {row['density_s']:.1f}s", flush=True)
            rows.append(row)
            if args.batch_scope:
                generator = torch.Generator().manual_seed(sub_seed(weighter_seed, "batch-scope"))
                weights = batch_scope_weights(weighter, emb, data.train.labels, args.batch_scope, generator)
                stats = weight_diagnostics(weights, data.train.labels, data.train.conflicting, data.num_classes,
                                           bias_labels=data.train.bias_labels)
                batch_row = dict(row, params=dict(params, scope=f"batch{args.batch_scope}"), embed_s=None,
                                 density_s=float("nan"), weight_share=stats["weight_share"], auc=stats["auc"],
                                 bias_only_acc=stats["bias_only_acc"], per_class=stats["per_class"])
                print(f"  per-batch KDE (B={args.batch_scope}): {format_diagnostics(batch_row)}", flush=True)
                rows.append(batch_row)
    report_rows(rows, markdown_table(rows), args, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
