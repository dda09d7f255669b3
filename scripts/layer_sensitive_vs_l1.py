"""One-shot test accuracy of global `l1` vs `layer-sensitive` (auto allocation), both with BatchNorm recalibration.

Usage: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python scripts/layer_sensitive_vs_l1.py \\
           runs/recovery-fashion-mnist/baseline-s0.pt --amounts 0.9,0.95,0.98 --seeds 0,1

The seed is the BatchNorm recalibration seed (and the strategy context's). Both methods recalibrate on the same
training batches; layer-sensitive picks its allocation on the calibration split, never the test split. Prints one
JSON line per cell and a table at the end. With --finetune-epochs, each pruned model is then fine-tuned (pruned
weights held at zero, peak LR 0.01, the seed's shuffle) and measured again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from compressor.measure.accuracy import evaluate, torch_forward
from compressor.models.checkpoint import load_checkpoint, load_dataset_for
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.recover import recover
from compressor.strategies.registry import StrategyContext, build_strategy


def main() -> None:
    """Run every (seed, amount) cell for both methods and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--amounts", default="0.9,0.95,0.98")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--finetune-epochs", type=float, default=0.0)
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/layer-sensitive-vs-l1/cache"))
    args = parser.parse_args()
    spec = load_checkpoint(args.checkpoint).spec
    dataset = load_dataset_for(spec)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        context = StrategyContext.for_dataset(dataset, input_size=spec.input_size, seed=seed, cache_dir=args.cache_dir)
        for amount in (float(a) for a in args.amounts.split(",")):
            row: dict[str, object] = {"seed": seed, "amount": amount}
            for method, params in (("l1", {"amount": amount, "scope": "global"}),
                                   ("layer-sensitive", {"amount": amount})):
                model = load_checkpoint(args.checkpoint).model.eval()
                start = time.perf_counter()
                record = build_strategy(method, params).apply(model, context).record
                recalibrate_batchnorm(model, dataset.train, spec.input_size, seed=seed)  # the same help for both
                if method != "l1":
                    allocation = record["allocation"]
                    row["chosen"] = allocation["chosen"]
                    row["calib_loss"] = {n: round(c["calib_loss"], 4) for n, c in allocation["candidates"].items()}
                row[f"{method}_seconds"] = round(time.perf_counter() - start, 1)
                row[method] = evaluate(torch_forward(model), dataset.test, spec.input_size)["accuracy"]
                if args.finetune_epochs > 0:
                    recover(model, dataset.train, spec.input_size,
                            RecoveryConfig(args.finetune_epochs, bn_recalibrate=False, seed=seed,
                                           precision="fp32").resolved([]))
                    row[f"{method}_finetuned"] = evaluate(torch_forward(model), dataset.test,
                                                          spec.input_size)["accuracy"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    tuned = args.finetune_epochs > 0
    print("\n| amount | seed | l1 global + BN | layer-sensitive + BN | chosen |"
          + (f" l1 +{args.finetune_epochs:g} ep | layer-sensitive +{args.finetune_epochs:g} ep |" if tuned else "")
          + "\n|---|---|---|---|---|" + ("---|---|" if tuned else ""))
    for row in rows:
        print(f"| {row['amount']} | {row['seed']} | {100 * row['l1']:.2f} | {100 * row['layer-sensitive']:.2f} "
              f"| {row['chosen']} |" + (f" {100 * row['l1_finetuned']:.2f} | "
                                        f"{100 * row['layer-sensitive_finetuned']:.2f} |" if tuned else ""))


if __name__ == "__main__":
    main()
