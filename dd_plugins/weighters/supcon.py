"""The embedding the ``kde`` weighter measures density in, trained with class labels only.

Default source ``supcon``: a small ConvNet with an MLP projection head trained for a few dozen
steps with the supervised contrastive loss (Khosla et al., 2020). Same-class samples are pulled
together, and the easiest feature that separates classes in a biased training set is the bias
(colour, background), so early in training the aligned majority of a class collapses into one
tight cluster while the bias-conflicting samples, whose bias value belongs to other classes, sit
apart. Other sources: ``logits`` (the output logits of a cross-entropy classifier trained the
same way: a briefly trained classifier predicts by the bias, so every bias group of a class sits
near one point of its 10-dimensional output, whatever the shapes in it), ``ce`` (that classifier's
penultimate features), ``random`` (features of the untrained, seeded encoder) and ``pixels``.
Every source but ``logits`` returns L2-normalised rows; the median bandwidth rule is scale-free, so
it fits them all.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dd_plugins.progress import progress_bar
from reference_methods.nets import build_net

SOURCES = ("supcon", "logits", "ce", "random", "pixels")
CLASSIFIER_SOURCES = ("ce", "logits")  # trained with cross-entropy, the bare encoder with its linear classifier
ENCODERS = ("convnet", "resnet18")
HEAD_HIDDEN = 256  # width of the projection head's hidden layer
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
EMBED_BATCH = 1024  # images per forward pass when embedding (no gradients)
# Random affine augmentation of the prototype: shape jitter only. Colour augmentation would
# teach the encoder to ignore colour, the very bias it has to expose.
MAX_SHIFT_PX = 2.0
MAX_ROTATE_DEG = 10.0
MAX_SCALE = 0.1


@dataclass(frozen=True)
class EmbeddingSpec:
    """Everything that determines the embedding (and so its cache fingerprint), besides data and seed."""

    source: str = "supcon"
    encoder: str = "convnet"
    width: int = 64
    depth: int = 3
    norm: str = "instancenorm"
    proj_dim: int = 128
    temperature: float = 0.1
    steps: int = 25
    batch_size: int = 256
    lr: float = 0.05
    resolution: int = 16
    augment: bool = True
    gce_q: float = 0.0  # classifier sources: 0 = cross-entropy, q in (0, 1] = generalized cross-entropy

    def validate(self) -> None:
        """Raise ValueError, saying which value to change, for a spec that cannot train."""
        if self.source not in SOURCES:
            raise ValueError(f"unknown embedding source '{self.source}'; expected one of {', '.join(SOURCES)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder '{self.encoder}'; expected one of {', '.join(ENCODERS)}")
        positive = {"width": self.width, "depth": self.depth, "proj_dim": self.proj_dim,
                    "batch_size": self.batch_size}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if self.steps < 0 or self.resolution < 0:
            raise ValueError("steps and resolution must be >= 0 (resolution 0 keeps the input size)")
        if not (self.temperature > 0 and self.lr > 0):
            raise ValueError(f"temperature and lr must be > 0; got {self.temperature} and {self.lr}")
        if not 0 <= self.gce_q <= 1:
            raise ValueError(f"gce_q must be in [0, 1] (0 = cross-entropy); got {self.gce_q}")
        if self.gce_q > 0 and self.source not in CLASSIFIER_SOURCES:
            raise ValueError(f"gce_q trains a classifier: it needs source 'ce' or 'logits', not '{self.source}'")


def sub_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one use of randomness inside the embedding."""
    digest = hashlib.sha256(f"{seed}:kde-embedding:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def supcon_loss(z: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Supervised contrastive loss (the L_out form of Khosla et al.) of L2-normalised rows ``z`` [M, D].

    For anchor i with positives P(i) (other rows of the same label) and all other rows A(i):
    loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a in A(i)} exp(z_i.z_a / T) ),
    averaged over anchors that have at least one positive. Two augmented views of a batch are
    passed as one stacked batch with the labels repeated.
    """
    m = z.shape[0]
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positives.sum(dim=1)
    has_pos = n_pos > 0
    if not has_pos.any():
        raise ValueError("supcon_loss needs at least two rows of one label; use a larger batch_size")
    pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()


def generalized_cross_entropy(logits: Tensor, labels: Tensor, q: float) -> Tensor:
    """Mean of (1 - p_y^q) / q (Zhang & Sabuncu, 2018), the loss of LfF's bias-capturing model.

    Its gradient is cross-entropy's scaled by p_y^q: samples the model already fits (the aligned
    majority) keep driving it, hard ones (the conflicting samples) barely do, so the classifier
    stays with the bias for longer than under cross-entropy.
    """
    p_true = logits.softmax(dim=1).gather(1, labels[:, None]).squeeze(1)
    return ((1 - p_true.clamp_min(1e-12) ** q) / q).mean()


def random_affine(x: Tensor, generator: torch.Generator) -> Tensor:
    """Per-image random shift (±2 px), rotation (±10°) and scale (±10%), edges replicated."""
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator, device=generator.device).to(x.device) * 2 - 1
    angle = u[:, 0] * math.radians(MAX_ROTATE_DEG)
    inv_scale = 1.0 / (1.0 + u[:, 1] * MAX_SCALE)
    cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
    shift_x = u[:, 2] * MAX_SHIFT_PX * 2.0 / w
    shift_y = u[:, 3] * MAX_SHIFT_PX * 2.0 / h
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def prepare_images(images: Tensor, resolution: int, device: torch.device) -> Tensor:
    """Images moved to ``device`` in chunks and resized to resolution x resolution (0: unchanged).

    The bias features (colour, background) are coarse: 16x16 keeps them and costs a third of 28x28.
    """
    chunks = []
    for start in range(0, images.shape[0], EMBED_BATCH * 4):
        chunk = images[start:start + EMBED_BATCH * 4].to(device=device, dtype=torch.float32)
        if resolution and tuple(chunk.shape[-2:]) != (resolution, resolution):
            chunk = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear",
                                  antialias=True, align_corners=False)
        chunks.append(chunk)
    return torch.cat(chunks)


def reset_parameters_(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default init for convs and linears, drawn from ``generator`` (not the global RNG)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


class ProjectionModel(nn.Module):
    """Encoder plus MLP head; ``forward`` returns the L2-normalised projection."""

    def __init__(self, encoder: nn.Module, proj_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(encoder.feature_dim, HEAD_HIDDEN), nn.ReLU(inplace=True),
                                  nn.Linear(HEAD_HIDDEN, proj_dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.head(self.encoder.embed(x)), dim=1)


def build_model(spec: EmbeddingSpec, channels: int, num_classes: int, size: tuple[int, int],
                generator: torch.Generator) -> nn.Module:
    """The seeded, untrained model of ``spec``: ProjectionModel for supcon, the bare encoder otherwise."""
    kwargs = {"norm": spec.norm}
    if spec.encoder == "convnet":
        kwargs.update(width=spec.width, depth=spec.depth)
    model = build_net(spec.encoder, channels, num_classes, size, **kwargs)
    if spec.source == "supcon":
        model = ProjectionModel(model, spec.proj_dim)
    reset_parameters_(model, generator)
    return model


def train(model: nn.Module, x: Tensor, labels: Tensor, spec: EmbeddingSpec, *,
          generator: torch.Generator, progress: bool) -> None:
    """``spec.steps`` SGD steps of SupCon (two augmented views) or (generalized) cross-entropy, in place."""
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    n = x.shape[0]
    batch_size = min(spec.batch_size, n)
    order, position = torch.randperm(n, generator=generator, device=generator.device).to(x.device), 0
    view = (lambda t: random_affine(t, generator)) if spec.augment else (lambda t: t)
    model.train()
    for _ in progress_bar(range(spec.steps), desc=f"kde: {spec.source} embedding", disable=not progress):
        if position + batch_size > n:
            order, position = torch.randperm(n, generator=generator, device=generator.device).to(x.device), 0
        index = order[position:position + batch_size]
        position += batch_size
        xb, yb = x[index], labels[index]
        if spec.source == "supcon":
            z = model(torch.cat([view(xb), view(xb)]))
            loss = supcon_loss(z, torch.cat([yb, yb]), spec.temperature)
        elif spec.gce_q > 0:
            loss = generalized_cross_entropy(model(view(xb)), yb, spec.gce_q)
        else:
            loss = F.cross_entropy(model(view(xb)), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def embed(model: nn.Module, x: Tensor, source: str, progress: bool) -> Tensor:
    """Embedding of every row of ``x``, on the CPU: L2-normalised, except raw ``logits``."""
    model.eval()
    out = []
    for start in progress_bar(range(0, x.shape[0], EMBED_BATCH), desc="kde: embedding", disable=not progress):
        batch = x[start:start + EMBED_BATCH]
        features = model(batch) if source in ("supcon", "logits") else F.normalize(model.embed(batch), dim=1)
        out.append(features.float().cpu())
    return torch.cat(out)


def trained_model(images: Tensor, labels: Tensor, num_classes: int, spec: EmbeddingSpec, *,
                  device: torch.device, seed: int, progress: bool = False) -> tuple[nn.Module, Tensor]:
    """The model of ``spec`` after its training steps (untrained for ``random``), and the prepared images."""
    spec.validate()
    x = prepare_images(images, spec.resolution, device)
    init_generator = torch.Generator().manual_seed(sub_seed(seed, "init"))
    model = build_model(spec, x.shape[1], num_classes, tuple(x.shape[-2:]), init_generator).to(device)
    if spec.source != "random":  # random: the untrained encoder
        data_generator = torch.Generator(device=device).manual_seed(sub_seed(seed, "data"))
        train(model, x, labels.to(device), spec, generator=data_generator, progress=progress)
    return model, x


def compute_embedding(images: Tensor, labels: Tensor, num_classes: int, spec: EmbeddingSpec, *,
                      device: torch.device, seed: int, progress: bool = False) -> Tensor:
    """The embedding [N, D] (CPU, float32; rows of norm 1 except for ``logits``) of a training split."""
    if spec.source == "pixels":
        spec.validate()
        return F.normalize(prepare_images(images, spec.resolution, device).flatten(1), dim=1).cpu()
    model, x = trained_model(images, labels, num_classes, spec, device=device, seed=seed, progress=progress)
    return embed(model, x, spec.source, progress)


def classifier_predictions(images: Tensor, labels: Tensor, num_classes: int, spec: EmbeddingSpec, *,
                           device: torch.device, seed: int, progress: bool = False) -> Tensor:
    """The class [N] (CPU) that the cross-entropy classifier of ``spec`` (``ce`` or ``logits``) predicts for
    each training image after its ``spec.steps`` steps."""
    if spec.source not in CLASSIFIER_SOURCES:
        raise ValueError(f"classifier predictions need source 'ce' or 'logits'; got '{spec.source}'")
    model, x = trained_model(images, labels, num_classes, spec, device=device, seed=seed, progress=progress)
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[start:start + EMBED_BATCH]).argmax(dim=1).cpu()
                          for start in range(0, x.shape[0], EMBED_BATCH)])
