"""The environment a measurement ran in, so two reports can be compared."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "torch-pruning", "onnx", "onnxruntime", "numpy", "scikit-learn")


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo, falling back to platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """stdout of a git command run in this package's source tree; None when git fails or it is not a checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, when it is a git checkout."""
    out = _git("rev-parse", "--short", "HEAD")
    return out.strip() or None if out is not None else None


# Folders of a checkout that hold what runs write (committed reports, run outputs), not the code that ran: a report
# script rewriting its own report must not mark the runs that make it as run from changed code.
OUTPUT_FOLDERS = ("reports", "runs")


def git_dirty() -> bool | None:
    """Whether the checkout this package runs from has uncommitted changes to tracked files outside its output folders
    (None: not a checkout)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None:
        return None
    excluded = [f":(exclude,top){folder}" for folder in OUTPUT_FOLDERS]
    out = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excluded)
    return None if out is None else bool(out.strip())


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
             "amx_bf16")
# How compressor.measure.latency.onnxruntime_session configures every ONNX Runtime timing (threads vary per run).
ONNXRUNTIME_SESSION = {"graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "ORT_SEQUENTIAL",
                       "inter_op_num_threads": 1, "intra_op_num_threads": "the run's thread count",
                       "allow_spinning": True, "provider": "CPUExecutionProvider"}


def cpu_isa() -> list[str]:
    """The vector and matrix instruction sets int8 and bf16 kernels depend on (VNNI, AMX, ...), from /proc/cpuinfo."""
    try:
        flags = next(line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [flag for flag in ISA_FLAGS if flag in flags]


def environment() -> dict[str, object]:
    """Library versions, Python, CPU, core and thread counts, CUDA device, git commit and whether the tree was dirty.

    Call it when a run starts: the commit and dirty flag then name the code that ran, not the code at its end."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": {name: _package_version(name) for name in PACKAGES},
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "isa": cpu_isa(),
        "onnxruntime_session": ONNXRUNTIME_SESSION,
    }
