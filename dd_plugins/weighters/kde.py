"""The ``kde`` weighter: inverse density in a supervised-contrastive embedding, without bias labels."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor

from dd_plugins.atomic import atomic_write
from dd_plugins.weighters.density import (
    inverse_density_weights,
    log_density,
    select_bandwidth,
    validate_bandwidth,
)
from dd_plugins.weighters.supcon import EmbeddingSpec, compute_embedding, sub_seed
from dd_plugins.weights import WeightContext

SCOPES = ("class",)
CACHE_VERSION = 1  # bump when the embedding code changes what a spec produces


def fingerprint(images: Tensor, labels: Tensor, spec: EmbeddingSpec, seed: int) -> str:
    """Hash of the data, the embedding parameters and the seed: equal only for the same embedding."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy())
    meta = {"spec": dataclasses.asdict(spec), "seed": seed, "version": CACHE_VERSION}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()[:32]


class KDEWeighter:
    """Inverse kernel density per class in a SupCon embedding: up-weights rare (bias-conflicting) samples.

    For sample i of class c with embedding e_i, the raw weight is

        w_i = n_c * softmax_i(-log f_c(e_i) / temperature),   i.e.  w_i ∝ f_c(e_i)^(-1/temperature)

    where f_c is a Gaussian KDE (kernel std = ``bandwidth``: a number, "scott" or "median", the
    median pairwise distance of the class) over all samples of class c, the sample itself included.
    temperature 1 is the paper's normalised inverse density. The embedding (``source`` "supcon",
    "logits", "ce", "random" or "pixels") is cached in ``ctx.cache_dir`` by a fingerprint of data, embedding
    parameters and seed. See docs/weighters.md for the reasoning behind every default.
    """

    requires: frozenset[str] = frozenset()

    def __init__(
        self,
        source: str = "supcon",
        bandwidth: float | str = "median",
        temperature: float = 1.0,
        scope: str = "class",
        chunk_size: int = 1024,
        encoder: str = "convnet",
        width: int = 64,
        depth: int = 3,
        norm: str = "instancenorm",
        proj_dim: int = 128,
        supcon_temperature: float = 0.1,
        steps: int = 25,
        batch_size: int = 256,
        lr: float = 0.05,
        resolution: int = 16,
        augment: bool = True,
        gce_q: float = 0.0,
    ) -> None:
        validate_bandwidth(bandwidth)
        if not temperature > 0:
            raise ValueError(f"kde: temperature must be > 0 (1 = plain inverse density); got {temperature}")
        if scope not in SCOPES:
            raise ValueError(f"kde: unknown scope '{scope}'; only 'class' is offered (see docs/weighters.md)")
        if chunk_size < 1:
            raise ValueError(f"kde: chunk_size must be >= 1; got {chunk_size}")
        self.bandwidth = bandwidth
        self.temperature = temperature
        self.scope = scope
        self.chunk_size = chunk_size
        self.spec = EmbeddingSpec(
            source=source, encoder=encoder, width=width, depth=depth, norm=norm, proj_dim=proj_dim,
            temperature=supcon_temperature, steps=steps, batch_size=batch_size, lr=lr,
            resolution=resolution, augment=augment, gce_q=gce_q,
        )
        self.spec.validate()

    def embedding(self, ctx: WeightContext) -> Tensor:
        """The embedding [N, D] of the context's images, from the cache when one matches."""
        path = None
        if ctx.cache_dir is not None:
            key = fingerprint(ctx.images, ctx.labels, self.spec, ctx.seed)
            path = Path(ctx.cache_dir) / f"kde-embedding-{key}.pt"
            if path.exists():
                try:
                    return torch.load(path, map_location="cpu", weights_only=True)["embedding"]
                except Exception as exc:  # any unreadable file: the embedding can always be recomputed
                    warnings.warn(f"kde: unreadable embedding cache {path} ({type(exc).__name__}: {exc}); "
                                  "recomputing it.", stacklevel=2)
        emb = compute_embedding(ctx.images, ctx.labels.long(), ctx.num_classes, self.spec,
                                device=ctx.device, seed=ctx.seed, progress=ctx.progress)
        if path is not None:
            saved = {"embedding": emb, "spec": dataclasses.asdict(self.spec), "seed": ctx.seed}
            atomic_write(path, lambda f: torch.save(saved, f))
        return emb

    def class_weights(self, emb: Tensor, generator: torch.Generator) -> Tensor:
        """Weights (mean 1) for the samples of one class from their embeddings [n_c, D]."""
        h = select_bandwidth(emb, self.bandwidth, generator)
        return inverse_density_weights(log_density(emb, h, self.chunk_size), self.temperature)

    def weights_from_embedding(self, emb: Tensor, labels: Tensor, num_classes: int, *,
                               device: torch.device, seed: int) -> Tensor:
        """Raw weights [N] (CPU, float64, mean 1 in each class) from an embedding [N, D]."""
        labels = labels.long().cpu()
        generator = torch.Generator().manual_seed(sub_seed(seed, "bandwidth"))
        weights = torch.ones(labels.shape[0], dtype=torch.float64)
        for c in range(num_classes):
            mask = labels == c
            if mask.any():
                weights[mask] = self.class_weights(emb[mask].to(device), generator).cpu()
        return weights

    def weigh(self, ctx: WeightContext) -> Tensor:
        return self.weights_from_embedding(self.embedding(ctx), ctx.labels, ctx.num_classes,
                                           device=ctx.device, seed=ctx.seed)
