"""MobileNetV3-Small trained on digits by the standard recipe, with and without raising its BatchNorm momentum.

torchvision builds it with momentum 0.01; `compressor.models.training.train` raises momenta below
MIN_BN_MOMENTUM (0.1) for the duration of training. `--floor 0` turns that off, which is what training did before.

    .venv/bin/python scripts/batchnorm_momentum_probe.py --epochs 3,15 --floor 0.1,0
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="torchvision:mobilenet_v3_small")
    parser.add_argument("--epochs", default="3,15", help="comma-separated epoch counts")
    parser.add_argument("--floor", default="0.1,0", help="comma-separated momentum floors (0: none raised)")
    args = parser.parse_args()

    import compressor.models.training as training
    from compressor.data import load_dataset
    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.models.checkpoint import dataset_for_arch
    from compressor.models.zoo import build_model

    data, _ = dataset_for_arch(load_dataset("digits"), args.arch)
    for floor in (float(f) for f in args.floor.split(",")):
        training.MIN_BN_MOMENTUM = floor
        for epochs in (int(e) for e in args.epochs.split(",")):
            torch.manual_seed(0)
            model = build_model(args.arch, 10, data.info.channels)
            started = time.perf_counter()
            training.train(model, data.train, 32, training.TrainConfig(epochs=epochs, lr=0.05), show_progress=False)
            accuracy = evaluate(torch_forward(model), data.test, 32)["accuracy"]
            print(f"{args.arch} digits 32 px, {epochs} epochs, momentum floor {floor:g}: test top-1 "
                  f"{100 * accuracy:.2f} % ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
