"""SupCon loss: equals a loop transcription of eq. 2, invariances, SimCLR case, edge cases."""

import math

import pytest
import torch

from supcon.loss import SupConLoss, supcon_loss


def reference_loss(features: torch.Tensor, labels: torch.Tensor | None, temperature: float) -> float:
    """Eq. 2 of Khosla et al. written out with Python loops in float64; anchors without positives are skipped."""
    batch, views, _ = features.shape
    z = torch.nn.functional.normalize(features.double(), dim=-1)
    rows = [(z[b, v], int(labels[b]) if labels is not None else b) for v in range(views) for b in range(batch)]
    terms = []
    for i, (anchor, label) in enumerate(rows):
        others = [a for a in range(len(rows)) if a != i]
        denominator = sum(math.exp(float(anchor @ rows[a][0]) / temperature) for a in others)
        positives = [p for p in others if rows[p][1] == label]
        if not positives:
            continue
        terms.append(-sum(float(anchor @ rows[p][0]) / temperature - math.log(denominator)
                          for p in positives) / len(positives))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_equals_loop_transcription(views, temperature):
    generator = torch.Generator().manual_seed(views)
    features = torch.randn(12, views, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 0, 3, 3, 2, 4, 1, 0])  # label 4 has one sample: no positive at V=1
    expected = reference_loss(features, labels, temperature)
    assert supcon_loss(features, labels, temperature=temperature).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("views", [2, 4])
def test_simclr_case_equals_transcription(views):
    features = torch.randn(7, views, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = reference_loss(features, None, 0.2)
    assert supcon_loss(features, None, temperature=0.2).item() == pytest.approx(expected, abs=1e-6)


def test_invariant_to_batch_permutation_and_scale():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(32, 2, 16, generator=generator)
    labels = torch.randint(0, 4, (32,), generator=generator)
    base = supcon_loss(features, labels)
    order = torch.randperm(32, generator=generator)
    assert supcon_loss(features[order], labels[order]).item() == pytest.approx(base.item(), rel=1e-5)
    scales = torch.rand(32, 2, 1, generator=generator) * 100 + 0.01
    assert supcon_loss(features * scales, labels).item() == pytest.approx(base.item(), rel=1e-5)


def test_finite_on_unnormalized_and_half_inputs():
    features = torch.randn(16, 2, 8) * 1e4
    labels = torch.arange(16) % 3
    assert torch.isfinite(supcon_loss(features, labels, temperature=0.01))
    loss = supcon_loss(features.half(), labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_anchors_without_positive_do_not_count():
    features = torch.randn(4, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 0, 1, 2])
    only_pair = supcon_loss(features[:2], labels[:2]).item()
    # Anchors 2 and 3 have no positive; they only add negatives to the pair's denominators.
    assert supcon_loss(features, labels).item() == pytest.approx(reference_loss(features, labels, 0.1), abs=1e-9)
    assert supcon_loss(features, labels).item() != pytest.approx(only_pair)
    lonely = supcon_loss(features[2:], labels[2:])
    assert lonely.item() == 0.0


def test_gradients_flow_and_perfect_clusters_score_lower():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]).unsqueeze(1).repeat(1, 2, 1)
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]).unsqueeze(1).repeat(1, 2, 1)
    assert supcon_loss(clustered, labels) < supcon_loss(mixed, labels)
    features = torch.randn(8, 2, 4, requires_grad=True)
    SupConLoss(temperature=0.1)(features, torch.arange(8) % 2).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_bad_shapes_and_temperature_are_rejected():
    with pytest.raises(ValueError, match="batch, views, dim"):
        supcon_loss(torch.randn(4, 8))
    with pytest.raises(ValueError, match="labels must have shape"):
        supcon_loss(torch.randn(4, 2, 8), torch.arange(3))
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0)


def test_matches_pytorch_metric_learning_when_installed():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(64, 2, 32, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    flat = torch.nn.functional.normalize(features, dim=-1).transpose(0, 1).reshape(128, 32)
    theirs = losses.SupConLoss(temperature=0.1)(flat, labels.repeat(2))
    assert supcon_loss(features, labels, temperature=0.1).item() == pytest.approx(theirs.item(), rel=1e-5)
