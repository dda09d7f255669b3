"""On-disk size: the byte count of a real file, never a formula."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn


def state_dict_file_size(model: nn.Module, directory: str | Path | None = None) -> int:
    """Bytes of `torch.save(model.state_dict())` written to a temporary `model.pt` and measured.

    The name is fixed because torch's zip format stores the file stem in every entry, so it changes the size.
    """
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)
