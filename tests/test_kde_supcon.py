"""The embedding behind ``kde``: SupCon loss, seeded augmentation and init, every source."""

import math

import pytest
import torch

from dd_plugins.weighters.supcon import (
    EmbeddingSpec,
    classifier_predictions,
    compute_embedding,
    generalized_cross_entropy,
    random_affine,
    supcon_loss,
)

TINY = dict(width=8, depth=2, proj_dim=4, steps=2, batch_size=16, resolution=8)


def tiny_data(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 10, 10, generator=g), torch.arange(n) % 2


def test_supcon_loss_hand_made_case():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # anchors 0 and 1: one positive at similarity 1, the other row at 0; anchor 2 has no positive
    expected = math.log(math.e + 1) - 1
    assert supcon_loss(z, labels, temperature=1.0).item() == pytest.approx(expected)
    # temperature 0.5 doubles every logit
    expected_sharp = math.log(math.e ** 2 + 1) - 2
    assert supcon_loss(z, labels, temperature=0.5).item() == pytest.approx(expected_sharp)


def test_supcon_loss_prefers_class_clusters():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert supcon_loss(clustered, labels, 0.1) < supcon_loss(mixed, labels, 0.1)


def test_supcon_loss_needs_a_positive_pair():
    with pytest.raises(ValueError, match="batch_size"):
        supcon_loss(torch.eye(2), torch.tensor([0, 1]), 0.1)


def test_random_affine_is_seeded_and_keeps_shape():
    x = torch.randn(6, 3, 8, 8)
    a = random_affine(x, torch.Generator().manual_seed(3))
    b = random_affine(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, x)


@pytest.mark.parametrize("source", ["supcon", "ce", "random", "pixels"])
def test_every_source_but_logits_gives_unit_rows(source):
    images, labels = tiny_data()
    emb = compute_embedding(images, labels, 2, EmbeddingSpec(source=source, **TINY),
                            device=torch.device("cpu"), seed=0)
    assert emb.shape[0] == 40 and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(40), atol=1e-5)
    if source == "supcon":
        assert emb.shape[1] == 4  # the projection, proj_dim wide


def test_logits_source_is_the_classifiers_raw_output():
    images, labels = tiny_data()
    spec = EmbeddingSpec(source="logits", **TINY)
    emb = compute_embedding(images, labels, 2, spec, device=torch.device("cpu"), seed=0)
    assert emb.shape == (40, 2) and emb.dtype == torch.float32
    assert not torch.allclose(emb.norm(dim=1), torch.ones(40), atol=1e-3)
    predicted = classifier_predictions(images, labels, 2, spec, device=torch.device("cpu"), seed=0)
    assert torch.equal(emb.argmax(dim=1), predicted)


def test_generalized_cross_entropy_is_cross_entropy_scaled_by_the_fit():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    p_true = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)
    q = 0.7
    assert generalized_cross_entropy(logits, labels, q).item() == pytest.approx(((1 - p_true ** q) / q).mean().item())
    gce_grad, = torch.autograd.grad(generalized_cross_entropy(logits, labels, q), logits)
    per_sample_ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    ce_grads = torch.stack([torch.autograd.grad(per_sample_ce[i], logits, retain_graph=True)[0][i] for i in range(3)])
    expected = ce_grads * (p_true.detach() ** q)[:, None] / 3
    assert torch.allclose(gce_grad, expected, atol=1e-6)


def test_gce_changes_the_classifier_and_needs_a_classifier_source():
    images, labels = tiny_data()
    run = lambda q: compute_embedding(images, labels, 2, EmbeddingSpec(source="logits", gce_q=q, **TINY),
                                      device=torch.device("cpu"), seed=0)
    assert not torch.equal(run(0.0), run(0.7))
    with pytest.raises(ValueError, match="gce_q"):
        EmbeddingSpec(source="supcon", gce_q=0.7).validate()
    with pytest.raises(ValueError, match="gce_q"):
        EmbeddingSpec(source="ce", gce_q=1.5).validate()


def test_embedding_is_deterministic_for_a_seed():
    images, labels = tiny_data()
    spec = EmbeddingSpec(**TINY)
    run = lambda seed: compute_embedding(images, labels, 2, spec, device=torch.device("cpu"), seed=seed)
    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_resnet18_encoder_runs():
    images, labels = tiny_data(n=16)
    spec = EmbeddingSpec(encoder="resnet18", proj_dim=4, steps=1, batch_size=8, resolution=8)
    emb = compute_embedding(images, labels, 2, spec, device=torch.device("cpu"), seed=0)
    assert emb.shape == (16, 4)


@pytest.mark.parametrize("field,value", [("source", "clip"), ("encoder", "vit"), ("steps", -1),
                                         ("temperature", 0.0), ("batch_size", 0)])
def test_invalid_spec_says_what_to_change(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        EmbeddingSpec(**{field: value}).validate()
