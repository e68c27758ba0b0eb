"""The ``kde`` weighter end to end: registration, weights, cache, determinism, no bias labels."""

import inspect

import pytest
import torch

from dd_plugins import ParameterError, WeightContext, compute_weights, get_weighter, list_weighters
from dd_plugins.weighters import kde as kde_module
from dd_plugins.weighters.kde import KDEWeighter

TINY = dict(width=8, depth=2, proj_dim=4, steps=2, batch_size=16, resolution=8)


def toy_images(n_major: int = 30, n_minor: int = 3, num_classes: int = 2, seed: int = 0):
    """Per class: a dense majority of near-copies of one pattern and a sparse minority of others."""
    g = torch.Generator().manual_seed(seed)
    images, labels, minority = [], [], []
    for c in range(num_classes):
        pattern = torch.randn(1, 1, 4, 4, generator=g)
        images.append(pattern + 0.01 * torch.randn(n_major, 1, 4, 4, generator=g))
        images.append(torch.randn(n_minor, 1, 4, 4, generator=g))
        labels += [c] * (n_major + n_minor)
        minority += [False] * n_major + [True] * n_minor
    return torch.cat(images), torch.tensor(labels), torch.tensor(minority)


def context(images, labels, **kwargs) -> WeightContext:
    return WeightContext(images=images, labels=labels, num_classes=int(labels.max()) + 1, **kwargs)


def test_registered_with_checked_parameters():
    assert "kde" in list_weighters()
    assert isinstance(get_weighter("kde", bandwidth=0.1), KDEWeighter)
    with pytest.raises(ParameterError, match="bandwidth"):
        get_weighter("kde", bandwith=0.1)


def test_every_parameter_has_default_and_type_hint():
    for name, p in inspect.signature(KDEWeighter).parameters.items():
        assert p.default is not p.empty, name
        assert p.annotation is not p.empty, name


@pytest.mark.parametrize("kwargs", [dict(bandwidth="silverman"), dict(temperature=0), dict(scope="batch"),
                                    dict(source="clip"), dict(chunk_size=0)])
def test_invalid_parameters_fail_at_construction(kwargs):
    with pytest.raises(ValueError):
        KDEWeighter(**kwargs)


@pytest.mark.parametrize("bandwidth", ["median", "scott", 1.0])
def test_sparse_minority_gets_higher_weight(bandwidth):
    images, labels, minority = toy_images()
    w = KDEWeighter(source="pixels", resolution=0, bandwidth=bandwidth).weigh(context(images, labels))
    for c in (0, 1):
        in_class = labels == c
        assert w[in_class & minority].min() > w[in_class & ~minority].max()
        assert w[in_class].mean().item() == pytest.approx(1.0)


def test_temperature_flattens_weights():
    images, labels, _ = toy_images()
    spread = lambda t: (lambda w: (w.max() / w.min()).item())(
        KDEWeighter(source="pixels", resolution=0, temperature=t).weigh(context(images, labels)))
    assert spread(0.5) > spread(1.0) > spread(3.0) > 1.0


def test_kde_never_receives_bias_labels(monkeypatch):
    images, labels, minority = toy_images()
    seen = []
    weighter = KDEWeighter(source="pixels", resolution=0)
    original = weighter.weigh
    monkeypatch.setattr(weighter, "weigh", lambda ctx: seen.append(ctx) or original(ctx))
    assert weighter.requires == frozenset()
    weights = compute_weights(weighter, "kde", images, labels, 2, bias_labels=minority.long())
    assert seen[0].bias_labels is None
    assert weights.shape == labels.shape


def test_deterministic_for_a_fixed_seed():
    images, labels, _ = toy_images()
    images = images.expand(-1, 3, -1, -1)
    weighter = KDEWeighter(**TINY)
    first = weighter.weigh(context(images, labels, seed=11))
    assert torch.equal(first, weighter.weigh(context(images, labels, seed=11)))
    assert not torch.equal(first, weighter.weigh(context(images, labels, seed=12)))


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    images, labels, _ = toy_images()
    images = images.expand(-1, 3, -1, -1)
    calls = []
    compute = kde_module.compute_embedding
    monkeypatch.setattr(kde_module, "compute_embedding", lambda *a, **k: calls.append(1) or compute(*a, **k))
    weigh = lambda weighter, imgs: weighter.weigh(context(imgs, labels, cache_dir=tmp_path, seed=3))

    first = weigh(KDEWeighter(**TINY), images)
    assert len(calls) == 1 and len(list(tmp_path.glob("kde-embedding-*.pt"))) == 1
    assert torch.equal(weigh(KDEWeighter(**TINY), images), first)  # hit: nothing recomputed
    assert len(calls) == 1
    weigh(KDEWeighter(**TINY, temperature=2.0, bandwidth=0.5), images)  # weight rule only: still a hit
    assert len(calls) == 1
    weigh(KDEWeighter(**{**TINY, "steps": 3}), images)  # embedding parameter changed
    assert len(calls) == 2
    changed = images.clone()
    changed[0, 0, 0, 0] += 1.0
    weigh(KDEWeighter(**TINY), changed)  # data changed
    assert len(calls) == 3
    assert len(list(tmp_path.glob("kde-embedding-*.pt"))) == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreadable_cache_is_recomputed_with_a_warning(tmp_path):
    images, labels, _ = toy_images()
    images = images.expand(-1, 3, -1, -1)
    ctx = context(images, labels, cache_dir=tmp_path, seed=3)
    first = KDEWeighter(**TINY).weigh(ctx)
    (cache_file,) = tmp_path.glob("kde-embedding-*.pt")
    cache_file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable embedding cache"):
        assert torch.equal(KDEWeighter(**TINY).weigh(ctx), first)
    assert torch.load(cache_file, weights_only=True)["embedding"].shape[0] == labels.shape[0]
