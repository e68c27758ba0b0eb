"""Per-class Gaussian KDE: bandwidth rules, chunking, and the inverse-density weight rule."""

import math

import pytest
import torch

from dd_plugins.weighters.density import (
    inverse_density_weights,
    log_density,
    median_distance,
    scott_bandwidth,
    select_bandwidth,
)


def two_clusters(n_major: int = 40, n_minor: int = 4, dim: int = 5, seed: int = 0) -> torch.Tensor:
    """A dense majority around the origin and a sparse minority far away (minority rows last)."""
    g = torch.Generator().manual_seed(seed)
    major = 0.05 * torch.randn(n_major, dim, generator=g)
    minor = 3.0 + 0.5 * torch.randn(n_minor, dim, generator=g)
    return torch.cat([major, minor])


def direct_log_density(x: torch.Tensor, h: float) -> torch.Tensor:
    """The textbook formula in float64, one explicit kernel per pair."""
    x = x.double()
    n, d = x.shape
    kernel = torch.exp(-torch.cdist(x, x) ** 2 / (2 * h * h)) / (2 * math.pi * h * h) ** (d / 2)
    return torch.log(kernel.mean(dim=1))


def test_log_density_matches_direct_formula():
    x = two_clusters()
    assert torch.allclose(log_density(x, 0.7).double(), direct_log_density(x, 0.7), atol=1e-4)


def test_chunked_equals_unchunked():
    x = two_clusters(n_major=37, n_minor=6)
    whole = log_density(x, 0.3, chunk_size=x.shape[0])
    for chunk in (1, 5, 16):  # float32 matmuls of different shapes round differently
        assert torch.allclose(log_density(x, 0.3, chunk_size=chunk), whole, atol=1e-4)


def test_log_density_survives_high_dimension():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(50, 128, generator=g), dim=1)
    assert torch.isfinite(log_density(x, 0.05)).all()


def test_median_rule_is_median_pairwise_distance():
    x = torch.tensor([[0.0], [1.0], [3.0]])  # distances 1, 2, 3
    assert median_distance(x) == pytest.approx(2.0)
    assert select_bandwidth(x, "median") == pytest.approx(2.0)


def test_median_rule_subsample_is_seeded():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(1))
    a = median_distance(x, torch.Generator().manual_seed(5), max_points=50)
    b = median_distance(x, torch.Generator().manual_seed(5), max_points=50)
    assert a == b
    assert a == pytest.approx(median_distance(x), rel=0.2)


def test_scott_rule():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(2))
    expected = 200 ** (-1 / 7) * x.var(dim=0).mean().sqrt().item()
    assert scott_bandwidth(x) == pytest.approx(expected)
    assert select_bandwidth(x, "scott") == pytest.approx(expected)


def test_number_bandwidth_and_degenerate_class():
    x = torch.zeros(5, 2)
    assert select_bandwidth(x, 0.25) == 0.25
    assert select_bandwidth(x, "median") == 1.0  # identical samples: any bandwidth gives equal weights


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "silverman", True])
def test_invalid_bandwidth_is_rejected(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        select_bandwidth(torch.randn(4, 2), bad)


def test_inverse_density_weights_follow_formula():
    log_f = torch.tensor([0.0, -1.0, -3.0])
    w = inverse_density_weights(log_f, temperature=1.0)
    assert w.mean().item() == pytest.approx(1.0)
    assert torch.allclose(w * torch.exp(log_f).double(), (w * torch.exp(log_f).double())[0].expand(3))
    sharp, flat = inverse_density_weights(log_f, 0.5), inverse_density_weights(log_f, 4.0)
    assert sharp.max() / sharp.min() > w.max() / w.min() > flat.max() / flat.min() > 1


def test_sparse_minority_gets_higher_weight_for_every_rule():
    x = two_clusters()
    for rule in ("median", "scott", 0.5):
        w = inverse_density_weights(log_density(x, select_bandwidth(x, rule)))
        assert w[-4:].min() > w[:-4].max(), rule
