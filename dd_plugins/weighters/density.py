"""Gaussian kernel density at each sample of one class, chunked so memory stays O(chunk * n).

The density of sample i among the n samples x_1..x_n of its class, with an isotropic Gaussian
kernel of standard deviation h in d dimensions, is

    f(x_i) = 1/n * sum_j (2 pi h^2)^(-d/2) * exp(-||x_i - x_j||^2 / (2 h^2))

The sum includes j = i (the sample's own kernel): it bounds every density below by
(2 pi h^2)^(-d/2) / n, so an isolated sample gets a large but finite inverse-density weight.
Everything is computed in log space: in a 128-dimensional embedding the normalising constant
alone under- or overflows float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BANDWIDTH_RULES = ("scott", "median")
MEDIAN_SAMPLE = 2048  # points used by the median rule; the median of 2 million distances is stable


def validate_bandwidth(rule: float | str) -> None:
    """Raise ValueError unless ``rule`` is a positive finite number, 'scott' or 'median'."""
    if isinstance(rule, str):
        if rule not in BANDWIDTH_RULES:
            raise ValueError(f"unknown bandwidth rule '{rule}'; use a positive number, 'scott' or 'median'")
    elif isinstance(rule, bool) or not isinstance(rule, (int, float)) or not rule > 0 or not math.isfinite(rule):
        raise ValueError(f"bandwidth must be a positive number, 'scott' or 'median'; got {rule!r}")


def median_distance(x: Tensor, generator: torch.Generator | None = None, max_points: int = MEDIAN_SAMPLE) -> float:
    """Median Euclidean distance between distinct samples (on a random subset when n > max_points)."""
    if x.shape[0] > max_points:
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        keep = torch.randperm(x.shape[0], generator=generator, device=generator.device)
        x = x[keep[:max_points].to(x.device)]
    n = x.shape[0]
    if n < 2:
        return 1.0
    distances = torch.cdist(x.float(), x.float())
    upper = torch.triu_indices(n, n, offset=1, device=x.device)
    return distances[upper[0], upper[1]].median().item()


def scott_bandwidth(x: Tensor) -> float:
    """Scott's rule, isotropic: n^(-1/(d+4)) times the root mean per-dimension variance."""
    n, d = x.shape
    if n < 2:
        return 1.0
    sigma = x.float().var(dim=0).mean().sqrt().item()
    return n ** (-1.0 / (d + 4)) * sigma


def select_bandwidth(x: Tensor, rule: float | str, generator: torch.Generator | None = None) -> float:
    """Kernel standard deviation h for samples ``x`` [n, d]: a number as given, or 'scott' / 'median'.

    A degenerate class (all samples identical) would give h = 0; it falls back to h = 1, where
    every sample then gets the same density anyway.
    """
    validate_bandwidth(rule)
    if not isinstance(rule, str):
        return float(rule)
    h = median_distance(x, generator) if rule == "median" else scott_bandwidth(x)
    return h if h > 0 else 1.0


def log_density(x: Tensor, bandwidth: float, chunk_size: int = 1024) -> Tensor:
    """log f(x_i) for every row of ``x`` [n, d] over all rows of ``x``; O(chunk_size * n) memory."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    x = x.float()
    x = x - x.mean(dim=0)  # smaller norms, less cancellation in |a|^2 + |b|^2 - 2ab
    n, d = x.shape
    sq_norms = (x * x).sum(dim=1)
    scale = 1.0 / (2.0 * bandwidth * bandwidth)
    out = torch.empty(n, dtype=torch.float32, device=x.device)
    for start in range(0, n, chunk_size):
        query = x[start:start + chunk_size]
        sq_dist = (sq_norms[start:start + chunk_size, None] + sq_norms[None, :] - 2.0 * query @ x.T).clamp_min_(0)
        out[start:start + chunk_size] = torch.logsumexp(-scale * sq_dist, dim=1)
    return out - math.log(n) - 0.5 * d * math.log(2.0 * math.pi * bandwidth * bandwidth)


def inverse_density_weights(log_f: Tensor, temperature: float = 1.0) -> Tensor:
    """w_i proportional to f(x_i)^(-1/temperature), scaled to mean 1: n * softmax(-log f / temperature).

    temperature 1 is the paper's normalised inverse density; larger flattens towards uniform,
    smaller concentrates the weight on the rarest samples.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    return log_f.numel() * torch.softmax(-log_f.double() / temperature, dim=0)
