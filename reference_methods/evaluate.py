"""The evaluation protocol: train fresh nets on a (synthetic) set, score them on the unbiased test split.

VICO protocol (``evaluate_synset`` in VICO-UoE/DatasetCondensation utils.py): ``num_eval`` nets,
each trained from a fresh initialisation with the trainer (``erm`` = plain SGD) and DSA
augmentation with per-sample parameters; the final-epoch net is scored. Each metric of
``reference_methods.metrics`` is reported as mean and (population, like VICO's ``np.std``)
standard deviation over the nets, with the per-net values. Also here: the random-real-subset
baseline and the files a synthetic set is saved as.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch
from torch import Tensor

from dd_plugins.progress import progress_bar
from dd_plugins.registry import get_trainer
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset, BiasedSplit
from reference_methods.io import atomic_torch_save
from reference_methods.methods.base import SyntheticSet
from reference_methods.methods.loop import draw_per_class, net_kwargs, seeded_net
from reference_methods.metrics import METRICS, group_accuracies, group_metrics
from reference_methods.seeds import derive_seed, generator
from reference_methods.trainers.base import Trainer, TrainSchedule


@torch.no_grad()
def predict(net: torch.nn.Module, images: Tensor, device: torch.device, batch_size: int = 1024) -> Tensor:
    """Predicted classes [N] (CPU) of ``net`` in eval mode, in batches."""
    net.eval()
    return torch.cat([net(images[i:i + batch_size].to(device)).argmax(dim=1).cpu()
                      for i in range(0, images.shape[0], batch_size)])


def evaluate_set(images: Tensor, labels: Tensor, data: BiasedDataset, *, trainer: Trainer | str,
                 schedule: TrainSchedule, num_eval: int = 5, net: str = "convnet", net_width: int = 128,
                 net_depth: int = 3, net_norm: str = "instancenorm", dsa: bool = True, device: torch.device,
                 seed: int, progress: bool = False) -> dict:
    """Train ``num_eval`` fresh nets on (images, labels) and score each on ``data.test``.

    Returns ``{metric: {"mean", "std", "runs"}}`` for every metric of ``METRICS`` (percent), and under
    ``"groups"`` each (class, bias value) test group's ``{"class", "bias", "count", "mean", "runs"}``
    accuracy, which shows which group a worst-group figure comes from. Net
    ``r`` draws its initialisation, batch order and augmentation from ``derive_seed(seed, "net/r")``,
    so any one net can be reproduced on its own. ``trainer`` is a trainer or its registered name.
    """
    device = torch.device(device)
    if isinstance(trainer, str):
        trainer = get_trainer(trainer)
    augmenter = DSAugment(flip=data.flip) if dsa else None
    kwargs = net_kwargs(net, net_width, net_depth, net_norm)
    test = data.test
    runs: dict[str, list[float]] = {m: [] for m in METRICS}
    group_runs: dict[tuple[int, int], dict] = {}
    for r in progress_bar(range(num_eval), desc="evaluate", disable=not progress):
        run_seed = derive_seed(seed, f"net/{r}")
        init_generator = generator(derive_seed(run_seed, "init"))
        augment_generator = generator(derive_seed(run_seed, "augment"))
        trained = trainer.fit(
            lambda: seeded_net(net, data, init_generator, device, **kwargs),
            images.detach().float(), labels,
            schedule=schedule,
            augment=(lambda x: augmenter(x, augment_generator)) if augmenter is not None else None,
            device=device, generator=generator(derive_seed(run_seed, "order")), progress=progress,
        )
        predictions = predict(trained, test.images, device)
        groups = group_accuracies(predictions, test.labels, test.bias_labels, data.num_classes)
        scores = group_metrics(predictions, test.labels, test.bias_labels, test.aligned_bias, data.num_classes, groups)
        for m in METRICS:
            runs[m].append(scores[m])
        for group in groups:
            key = (group["class"], group["bias"])
            group_runs.setdefault(key, {"class": key[0], "bias": key[1], "count": group["count"], "runs": []})
            group_runs[key]["runs"].append(group["acc"])
    result: dict = {m: {"mean": statistics.fmean(v), "std": statistics.pstdev(v), "runs": v} for m, v in runs.items()}
    result["groups"] = [{**g, "mean": statistics.fmean(g["runs"])} for g in group_runs.values()]
    return result


def random_real_subset(split: BiasedSplit, ipc: int, generator: torch.Generator) -> BiasedSplit:
    """``ipc`` distinct images per class drawn uniformly, in class blocks (the random-real baseline, and DM's init)."""
    return split.subset(draw_per_class(split.labels, int(split.aligned_bias.shape[0]), ipc, generator))


def save_synthetic(syn: SyntheticSet, path: Path, config: dict) -> None:
    """``synthetic.pt``: {images, labels, extras, config} on the CPU, written atomically."""
    atomic_torch_save({"images": syn.images.detach().cpu(), "labels": syn.labels.detach().cpu(),
                       "extras": syn.extras, "config": config}, path)


def export_vico(syn: SyntheticSet, path: Path) -> None:
    """The VICO / DC-BENCH layout ``{"data": [[images, labels]]}`` (one experiment), so their evaluators load our sets."""
    atomic_torch_save({"data": [[syn.images.detach().cpu(), syn.labels.detach().cpu()]]}, path)
