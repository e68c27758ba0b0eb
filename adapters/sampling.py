"""Class-batch sampling: the one place where sample weights decide which real images a distiller sees.

Every distiller draws its real batches class by class through a ``ClassSampler``. A batch is a
pair (indices into the split, coefficients summing to 1); a loss averages per-sample terms with
the coefficients instead of a plain mean, so the same distiller code serves both modes:

``resample``
    indices drawn with probability proportional to the weight within the class, coefficients
    1/n (a plain mean). Weighted classes draw **with replacement**, so a sample holding a large
    share of its class's weight is seen that often; drawing without replacement would cap every
    sample at one appearance per batch and quietly undo the weighting when a few samples carry
    most of the weight (oracle weights on a 0.5%-conflicting class do exactly that).
``reweight``
    indices drawn uniformly without replacement, exactly as the unweighted method draws them,
    coefficients w_i / sum of the batch's weights (a self-normalised estimate of the weighted mean,
    biased by O(1/n); a batch whose weights are all 0 is an error, so sparse weights want ``resample``).

A class whose weights are all equal (every class under ``uniform``) is drawn uniformly without
replacement with coefficients exactly 1/n in both modes: the unweighted methods' draw
(``randperm(class)[:n]``, as VICO's ``get_images``), so uniform weights reproduce them exactly.
Without replacement a batch cannot exceed its class; ``max_batch`` says how large it may be.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("resample", "reweight")


class ClassSampler:
    """Draws per-class real batches from ``labels`` according to per-sample ``weights``.

    Indices and coefficients are CPU tensors (index the images on whatever device they live).
    All randomness comes from ``generator`` (a CPU ``torch.Generator``); its state is part of
    ``state_dict`` so a resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, labels: Tensor, weights: Tensor, num_classes: int, *, mode: str = "resample",
                 generator: torch.Generator | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown sampling mode '{mode}'; expected one of {', '.join(MODES)}")
        labels = labels.detach().cpu()
        weights = weights.detach().cpu().to(torch.float64)
        if weights.shape != labels.shape:
            raise ValueError(f"weights have shape {tuple(weights.shape)} but labels have {tuple(labels.shape)}; "
                             "pass one weight per training sample")
        self.mode = mode
        self.num_classes = num_classes
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.class_indices: list[Tensor] = []
        self.class_weights: list[Tensor] = []
        self.class_uniform: list[bool] = []
        for c in range(num_classes):
            idx = torch.nonzero(labels == c, as_tuple=True)[0]
            if idx.numel() == 0:
                raise ValueError(f"class {c} has no training samples; every class needs real data to distil from")
            w = weights[idx]
            if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weights of class {c} must be finite, >= 0 and not all zero; "
                                 "normalise them with dd_plugins.weights.normalise_weights")
            self.class_indices.append(idx)
            self.class_weights.append(w)
            self.class_uniform.append(bool((w == w[0]).all()))

    def class_size(self, c: int) -> int:
        return self.class_indices[c].numel()

    @property
    def max_batch(self) -> int:
        """The largest n that ``sample_all`` accepts: the smallest class, since uniform draws never repeat."""
        return min(idx.numel() for idx in self.class_indices)

    def sample(self, c: int, n: int) -> tuple[Tensor, Tensor]:
        """``n`` indices into the split from class ``c`` and their coefficients (float32, sum 1)."""
        idx, w = self.class_indices[c], self.class_weights[c]
        weighted = not self.class_uniform[c]
        if weighted and self.mode == "resample":
            pos = torch.multinomial(w, n, replacement=True, generator=self.generator)
            return idx[pos], torch.full((n,), 1.0 / n)
        if n > idx.numel():
            raise ValueError(f"class {c} has {idx.numel()} samples but a batch of {n} was asked for without "
                             f"replacement; ask for at most {idx.numel()} (see ClassSampler.max_batch)")
        pos = torch.randperm(idx.numel(), generator=self.generator)[:n]
        if weighted:  # reweight
            batch_w = w[pos]
            if batch_w.sum() == 0:
                raise ValueError(f"every sample drawn from class {c} has weight 0, so 'reweight' has nothing to "
                                 "average; use mode 'resample' for sparse weights or draw larger batches")
            return idx[pos], (batch_w / batch_w.sum()).to(torch.float32)
        return idx[pos], torch.full((n,), 1.0 / n)

    def sample_all(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` indices and coefficients for every class in order: two [K, n] tensors."""
        batches = [self.sample(c, n) for c in range(self.num_classes)]
        return torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])

    def state_dict(self) -> dict:
        return {"mode": self.mode, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state["mode"] != self.mode:
            raise ValueError(f"checkpoint was drawn in mode '{state['mode']}' but this sampler uses '{self.mode}'; "
                             "resume with the same sampling mode or start a fresh run")
        self.generator.set_state(state["generator"])
