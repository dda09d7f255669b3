"""On-disk size: the byte count of a real file, never a formula."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn


def state_dict_file_size(model: nn.Module, directory: str | Path | None = None) -> int:
    """Bytes of the fp32 state_dict as `torch.save` writes it (written to a temporary file and measured)."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "state_dict.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
        return os.path.getsize(path)
