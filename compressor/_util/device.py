"""Where training, fine-tuning and calibration run: `auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""

from __future__ import annotations

import os

import torch

from compressor.errors import CompressorError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def all_cores() -> int:
    """The cores this process may use (affinity-aware where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device named by `spec` (`auto`: the first CUDA GPU, else MPS, else the CPU), checked to exist."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise CompressorError(f"unknown device {spec!r}; choose one of: {DEVICE_CHOICES}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CompressorError(f"device {spec!r} is not available: no CUDA GPU is visible here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise CompressorError(f"device {spec!r} is not available: {count} CUDA GPU(s) visible "
                                  f"(cuda:0..cuda:{count - 1})")
        return device
    if device.type == "mps":
        if not _mps_available():
            raise CompressorError(f"device {spec!r} is not available: this torch has no working MPS backend")
        return device
    raise CompressorError(f"unsupported device {spec!r}; choose one of: {DEVICE_CHOICES}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
