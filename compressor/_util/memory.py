"""Peak memory of this process so far: what a run records after its strategies and recovery, so a report can say
what a method needs (its resident set, and on CUDA the peak of allocated GPU memory)."""

from __future__ import annotations

import sys
from typing import Any

import torch


def peak_memory() -> dict[str, Any]:
    """{"peak_rss_bytes": the process's peak resident set (where the OS reports it), "cuda_peak_allocated_bytes":
    torch's peak on the current CUDA device, when CUDA was used}."""
    peak: dict[str, Any] = {}
    try:
        import resource  # POSIX only
    except ImportError:
        pass
    else:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak["peak_rss_bytes"] = int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # macOS bytes, Linux KiB
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["cuda_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
    return peak
