"""Which kernels ONNX Runtime runs for the int8 export of each architecture family, and what share of the profiled
time the integer kernels take (random weights, batch 1, one thread; 32 px inputs, ViT-Tiny at its 224 px).

    .venv/bin/python scripts/int8_kernel_share.py -o reports/architectures/int8-kernels.json

Run it alone: the shares come from a profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ARCHS = {"resnet18": 32, "torchvision:mobilenet_v3_small": 32, "torchvision:efficientnet_b0": 32,
         "torchvision:regnet_y_400mf": 32, "timm:convnext_atto": 32, "timm:vit_tiny_patch16_224": 224}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    from compressor._util.environment import environment
    from compressor.measure.export import export_onnx, quantize_onnx_int8
    from compressor.measure.int8_kernels import int8_kernel_report
    from compressor.models.zoo import build_model

    rows = []
    for arch, size in ARCHS.items():
        torch.manual_seed(0)
        model = build_model(arch, 10, 3).eval()
        with tempfile.TemporaryDirectory() as scratch:
            export_onnx(model, Path(scratch) / "model.onnx", 3, size)
            calibration = [np.random.default_rng(i).random((1, 3, size, size), dtype=np.float32) for i in range(8)]
            quantize_onnx_int8(Path(scratch) / "model.onnx", Path(scratch) / "int8.onnx", calibration)
            report = int8_kernel_report(Path(scratch) / "int8.onnx", (1, 3, size, size), profile_runs=20)
        rows.append({"arch": arch, "input_size": size, "runs_int8": report["runs_int8"],
                     "int8_compute_ops": report["int8_compute_ops"], "float_compute_ops": report["float_compute_ops"],
                     "profile_int8_share": report["profile_int8_share"],
                     "profile_ms_per_run_by_op": report["profile_ms_per_run_by_op"]})
        print(f"{arch:32s} runs int8: {report['runs_int8']!s:5s} integer kernels' share of the profile: "
              f"{100 * report['profile_int8_share']:.0f} %", flush=True)
    document = {"command": " ".join(["python", *sys.argv]), "rows": rows, "environment": environment()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
