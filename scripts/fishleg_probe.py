"""Does FishLeg's learned Q differ from OBD? One pruning step on the same Fisher, masks and held-out fit compared.

Prunes a copy of the model with `obd` and with `fishleg`, both with FishLeg's Fisher (labels sampled from the model)
and damping, one recomputation, same seed: the two differ only in the learned Kronecker factors. Writes a JSON with
the per-layer held-out auxiliary losses (diagonal start vs fitted), how many pruning decisions differ, and the test
accuracy of both after BN recalibration:

    .venv/bin/python scripts/fishleg_probe.py --arch resnet18 --data fashion-mnist --amount 0.95 \\
        --out reports/second-order-fashion-mnist/fishleg-vs-obd.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from compressor._util.environment import environment
from compressor._util.fileio import write_json_atomic
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.strategies.registry import StrategyContext, build_strategy
from compressor.strategies.selection import prunable_layers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from second_order_table import load_model  # noqa: E402  (the same checkpoint-or-cached-baseline rule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a compressor checkpoint (default: the cached baseline)")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--data", help="dataset (default: the checkpoint's, else fashion-mnist)")
    parser.add_argument("--baseline-seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar while a baseline trains")
    parser.add_argument("--amount", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], help="fishleg key=value (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    checkpoint, _, dataset = load_model(args)
    size = checkpoint.spec.input_size
    context = StrategyContext.for_dataset(dataset, input_size=size, seed=args.seed)
    fishleg_params = dict(item.split("=", 1) for item in args.param)
    shared = {"amount": args.amount, "recomputations": 1}
    defaults = build_strategy("fishleg", {**shared, **fishleg_params})
    obd_params = {**shared, "fisher": defaults.fisher, "relative_damping": defaults.relative_damping,
                  "damping": defaults.damping, "gradients": defaults.gradients, "grad_batch": defaults.grad_batch}
    result: dict = {"command": " ".join([".venv/bin/python", *sys.argv]), "amount": args.amount, "seed": args.seed,
                    "fishleg_params": fishleg_params}
    masks, records = {}, {}
    for name, params in (("obd", obd_params), ("fishleg", {**shared, **fishleg_params})):
        model = copy.deepcopy(checkpoint.model).eval()
        start = time.perf_counter()
        records[name] = build_strategy(name, params).apply(model, context).record
        seconds = time.perf_counter() - start
        masks[name] = {n: layer.weight != 0 for n, layer in prunable_layers(model).items()}
        recalibrate_batchnorm(model, dataset.train, size, seed=args.seed)
        result[name] = {"seconds": round(seconds, 1),
                        "test_accuracy_after_bn": evaluate(torch_forward(model), dataset.test, size)["accuracy"],
                        "calibration": records[name]["calibration"],
                        "predicted_loss_increase": records[name]["predicted_loss_increase"]}
    fit = records["fishleg"]["fishleg"]["fits"][0]
    pruned = sum(int((~m).sum()) for m in masks["obd"].values())
    differ = {n: int((~masks["obd"][n] & masks["fishleg"][n]).sum()) for n in masks["obd"]}
    result["fit"] = {key: fit[key] for key in ("steps", "aux_loss_first", "aux_loss_last", "layers_accepted",
                                               "layers")}
    result["layers"] = {n: {**info, "pruned_by_obd_kept_by_fishleg": differ[n],
                            "relative_change": (info["heldout_aux_fitted"] - info["heldout_aux_diagonal"])
                            / abs(info["heldout_aux_diagonal"])}
                        for n, info in fit["per_layer"].items()}
    result["decisions"] = {"pruned": pruned, "different": sum(differ.values()),
                           "different_fraction": sum(differ.values()) / pruned}
    result["environment"] = environment()
    write_json_atomic(result, args.out)
    print(json.dumps({k: result[k] for k in ("fit", "decisions", "obd", "fishleg")}, indent=1))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
