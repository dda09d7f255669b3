"""Encoder from `compressor`'s zoo + MLP projection head for SupCon; a linear head folded into a classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compressor.errors import CompressorError
from compressor.models.zoo import build_model, get_arch, set_submodule


def remove_classifier(model: nn.Module, arch: str) -> int:
    """Replace the zoo classifier of `model` (an `arch`) by Identity in place; return the feature width."""
    classifier_path = get_arch(arch).classifier
    if classifier_path is None:
        raise CompressorError(f"SupCon encoders are built from the zoo architectures; {arch} is not one of them")
    width = model.get_submodule(classifier_path).in_features
    set_submodule(model, classifier_path, nn.Identity())
    return width


def build_encoder(arch: str, in_channels: int, num_classes: int = 2) -> tuple[nn.Module, int]:
    """The zoo's `arch` with its classifier replaced by Identity, and the width of the features it returns.

    Keeping the zoo's module names means the encoder's state_dict drops straight into a classifier of the same
    architecture (see `to_classifier`).
    """
    model = build_model(arch, num_classes, in_channels)
    return model, remove_classifier(model, arch)


class ProjectionHead(nn.Module):
    """Two-layer MLP (width -> width -> dim) whose output is L2-normalized, as in SupCon."""

    def __init__(self, width: int, dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(features), dim=-1)


class SupConModel(nn.Module):
    """Encoder + projection head; `forward` gives normalized projections, `features` the encoder output."""

    def __init__(self, arch: str, in_channels: int, projection_dim: int = 128) -> None:
        super().__init__()
        self.arch = arch
        self.encoder, self.width = build_encoder(arch, in_channels)
        self.head = ProjectionHead(self.width, projection_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features [B, width] (what the linear evaluation reads)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def to_classifier(arch: str, encoder: nn.Module, linear: nn.Linear, in_channels: int) -> nn.Module:
    """An ordinary zoo classifier: the encoder's weights plus `linear` as its classification layer."""
    classifier = build_model(arch, linear.out_features, in_channels)
    classifier_path = get_arch(arch).classifier
    state = {name: value for name, value in encoder.state_dict().items()}
    state.update({f"{classifier_path}.weight": linear.weight.detach().clone(),
                  f"{classifier_path}.bias": linear.bias.detach().clone()})
    classifier.load_state_dict(state)
    return classifier.eval()
