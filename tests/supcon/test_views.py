"""Views: shape, independence, grayscale safety, the dataset's flip rule, reproducibility under a seed."""

from __future__ import annotations

import pytest
import torch

from compressor.data import DatasetInfo
from supcon.views import ViewConfig, ViewMaker

GRAY = DatasetInfo("gray", tuple("abc"), channels=1, native_size=16, mean=(0.5,), std=(0.25,), hflip=False)
RGB = DatasetInfo("rgb", tuple("abc"), channels=3, native_size=16, mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.2),
                  hflip=True)


def _batch(info: DatasetInfo, n: int = 6) -> torch.Tensor:
    images = torch.rand(n, info.channels, 16, 16, generator=torch.Generator().manual_seed(0))
    return (images - torch.tensor(info.mean).view(-1, 1, 1)) / torch.tensor(info.std).view(-1, 1, 1)


@pytest.mark.parametrize("info", [GRAY, RGB])
@pytest.mark.parametrize("views", [1, 2, 4])
def test_views_have_the_batch_shape_and_differ(info, views):
    torch.manual_seed(0)
    out = ViewMaker(info, 24, ViewConfig(views=views))(_batch(info))
    assert out.shape == (6, views, info.channels, 24, 24) and torch.isfinite(out).all()
    if views > 1:
        assert not torch.allclose(out[:, 0], out[:, 1])


def test_identity_config_returns_the_input():
    config = ViewConfig(crop_scale=(1.0, 1.0), hflip=False, degrees=0, translate=0, brightness=0, contrast=0)
    batch = _batch(GRAY)
    out = ViewMaker(GRAY, 16, config)(batch)
    torch.testing.assert_close(out[:, 0], batch, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 1], batch, atol=1e-5, rtol=0)


def test_flip_follows_the_dataset_unless_overridden():
    assert not any(type(t).__name__ == "RandomHorizontalFlip" for t in ViewMaker(GRAY, 16).transform.transforms)
    assert any(type(t).__name__ == "RandomHorizontalFlip" for t in ViewMaker(RGB, 16).transform.transforms)
    forced = ViewMaker(GRAY, 16, ViewConfig(hflip=True))
    assert any(type(t).__name__ == "RandomHorizontalFlip" for t in forced.transform.transforms)


def test_same_seed_same_views():
    maker, batch = ViewMaker(RGB, 16), _batch(RGB)
    torch.manual_seed(3)
    first = maker(batch)
    torch.manual_seed(3)
    assert torch.equal(first, maker(batch))


@pytest.mark.parametrize("kwargs", [{"views": 0}, {"crop_scale": (0.0, 1.0)}, {"crop_scale": (0.8, 0.5)}])
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ViewConfig(**kwargs)
