"""Multi-view augmentation for contrastive pre-training: random crops, flips, small affine, brightness/contrast.

Works on the normalized batches any `compressor` split yields, so it is the same for in-memory tensors and
ImageFolders, and it never assumes three channels (grayscale-safe: no hue, saturation or grayscale conversion).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from compressor.data import DatasetInfo


@dataclass(frozen=True)
class ViewConfig:
    """How each view is drawn; `hflip=None` follows the dataset (no flips for digits, flips for clothes)."""

    views: int = 2
    crop_scale: tuple[float, float] = (0.5, 1.0)
    hflip: bool | None = None
    degrees: float = 10.0
    translate: float = 0.1
    brightness: float = 0.4
    contrast: float = 0.4
    jitter_p: float = 0.8

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"views must be at least 1; got {self.views}")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1; got {self.crop_scale}")


class ViewMaker:
    """Turn a normalized batch [B, C, S, S] into `views` independently augmented copies [B, V, C, S, S]."""

    def __init__(self, info: DatasetInfo, input_size: int, config: ViewConfig | None = None) -> None:
        self.config = config or ViewConfig()
        self.mean = torch.tensor(info.mean).view(-1, 1, 1)
        self.std = torch.tensor(info.std).view(-1, 1, 1)
        flip = info.hflip if self.config.hflip is None else self.config.hflip
        steps: list[v2.Transform] = [v2.RandomResizedCrop(input_size, scale=self.config.crop_scale, antialias=True)]
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        if self.config.degrees or self.config.translate:
            steps.append(v2.RandomAffine(degrees=self.config.degrees,
                                         translate=(self.config.translate, self.config.translate)))
        if self.config.brightness or self.config.contrast:
            jitter = v2.ColorJitter(brightness=self.config.brightness, contrast=self.config.contrast)
            steps.append(v2.RandomApply([jitter], p=self.config.jitter_p))
        self.transform = v2.Compose(steps)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Views of every image (each view with its own random parameters); uses torch's global RNG."""
        images = (batch * self.std + self.mean).clamp(0, 1)
        views = [torch.stack([self.transform(image) for image in images]) for _ in range(self.config.views)]
        return (torch.stack(views, dim=1) - self.mean) / self.std
