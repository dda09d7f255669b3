"""Encoder + head shapes, and the classifier built from encoder + linear head predicts linear(encoder(x))."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from supcon.model import SupConModel, to_classifier


@pytest.mark.parametrize("arch, width", [("resnet18", 512), ("densenet201", 1920)])
def test_projection_is_normalized_and_classifier_composes(arch, width, tmp_path):
    torch.manual_seed(0)
    model = SupConModel(arch, in_channels=1, projection_dim=16).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        z, features = model(x), model.features(x)
    assert model.width == width and features.shape == (3, width) and z.shape == (3, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    linear = nn.Linear(width, 4)
    classifier = to_classifier(arch, model.encoder, linear, in_channels=1)
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), linear(features), rtol=1e-4, atol=1e-5)
    spec = ModelSpec(arch, 4, 1, 32, "digits", tuple("abcd"), (0.5,), (0.2,))
    save_checkpoint(Checkpoint(spec, classifier), tmp_path / "c.pt")
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "c.pt").model(x), linear(features),
                                   rtol=1e-4, atol=1e-5)


def test_inception_v3_encoder_at_its_minimum_size():
    model = SupConModel("inception_v3", in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 75, 75)).shape == (2, 128)
    assert model.width == 2048
