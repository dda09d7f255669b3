"""Seconds per SGD training step of ResNet18 (7x7 stride-2 stem) and the small-input 3x3 stride-1 stem, in fp32,
fp32 channels_last, bf16 autocast and bf16 + channels_last: median of 4 steps after 2 warm-ups, batch 128.

Run alone on a quiet machine (`.venv/bin/python scripts/training_step_probe.py -o FILE.json`): it prints one line
per case and, with -o, writes them to a JSON file with the environment (CPU model, its bf16/VNNI/AMX flags, core and
thread count, torch version), so that a figure quoted from it has a file to cite. No output of it is committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torch import nn


def make(stem: str) -> nn.Module:
    """ResNet18 for 1-channel input with torchvision's stem ("tv") or a 3x3 stride-1 one ("s1")."""
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = (nn.Conv2d(1, 64, 3, 1, 1, bias=False) if stem == "s1" else nn.Conv2d(1, 64, 7, 2, 3, bias=False))
    return model


def seconds_per_step(stem: str, size: int, batch: int, mode: str) -> float:
    """Median seconds of one forward + backward + SGD step."""
    model = make(stem)
    channels_last = "cl" in mode
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 1, size, size), torch.randint(0, 10, (batch,))
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in mode):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("-o", "--output", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for stem, size in (("tv", 32), ("s1", 28), ("s1", 32)):
        for mode in ("fp32", "fp32-cl", "bf16", "bf16-cl"):
            seconds = seconds_per_step(stem, size, 128, mode)
            rows.append({"stem": stem, "input_size": size, "mode": mode, "seconds_per_step": round(seconds, 4)})
            print(stem, size, mode, round(seconds, 3), flush=True)
    if args.output:
        from compressor._util.environment import environment

        report = {"script": "scripts/training_step_probe.py", "batch_size": 128, "warmups": 2, "timed_steps": 4,
                  "statistic": "median", "rows": rows, "environment": environment()}
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.output}")
