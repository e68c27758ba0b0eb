"""Distribution matching: the real side of DM's loss is a weighted mean of embeddings per class."""

from __future__ import annotations

from torch import Tensor


def weighted_class_means(embeddings: Tensor, coefficients: Tensor) -> Tensor:
    """Per-class means [K, D] of ``embeddings`` [K, n, D] weighted by ``coefficients`` [K, n] (rows sum to 1).

    With the coefficients 1/n of a uniform batch this is the plain class mean of the unweighted
    method. Coefficients are detached: weights steer the loss but never receive gradients.
    """
    if embeddings.dim() != 3 or coefficients.shape != embeddings.shape[:2]:
        raise ValueError(f"expected embeddings [K, n, D] and coefficients [K, n]; got {tuple(embeddings.shape)} "
                         f"and {tuple(coefficients.shape)}")
    coefficients = coefficients.detach().to(device=embeddings.device, dtype=embeddings.dtype)
    return (coefficients.unsqueeze(-1) * embeddings).sum(dim=1)
