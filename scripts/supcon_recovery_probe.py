"""Which recovery settings leave an *uncompressed* frozen-encoder SupCon classifier where it was? Each setting
fine-tunes a fresh copy of the dense model and the test accuracy is compared with the untouched model's: a recovery
recipe that costs the dense model accuracy cannot be trusted to recover a pruned one.

    python scripts/supcon_recovery_probe.py runs/supcon-fashion-mnist/supcon-classifier.pt \
        -o reports/recovery-fashion-mnist/supcon-dense-probe.json [--epochs 0.25] [--only NAME ...]

Results are written after every setting, so a killed run keeps what it finished (and resumes past it).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

from compressor._util.environment import environment
from compressor._util.fileio import write_json_atomic
from compressor.errors import RuntimeFailure
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.models.checkpoint import load_checkpoint, load_dataset_for
from compressor.models.training import TrainConfig, train, zero_masks
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.recovery.head import refit_classifier

# name -> fine-tuning settings (TrainConfig fields); "bn_recalibrate" re-estimates BatchNorm statistics first,
# "refit_head" fits the final linear layer again on the penultimate features afterwards (compressor.recovery.head).
SETTINGS: dict[str, dict[str, Any]] = {
    "bn-recalibrate-only": {"bn_recalibrate": True, "epochs": 0},
    "ce-lr0.01": {"lr": 0.01},
    "ce-lr0.001": {"lr": 0.001},
    "ce-lr0.01-frozen-bn": {"lr": 0.01, "freeze_batchnorm": True},
    "kd0.5-lr0.01": {"lr": 0.01, "teacher": True, "distill_alpha": 0.5},
    "kd1-lr0.01": {"lr": 0.01, "teacher": True, "distill_alpha": 1.0},
    "kd1-lr0.01-frozen-bn": {"lr": 0.01, "teacher": True, "distill_alpha": 1.0, "freeze_batchnorm": True},
    "refit-head-only": {"refit_head": True, "epochs": 0},
    "bn-recalibrate+refit-head": {"bn_recalibrate": True, "refit_head": True, "epochs": 0},
    "ce-lr0.01+refit-head": {"lr": 0.01, "refit_head": True},
    "kd0.5-lr0.01+refit-head": {"lr": 0.01, "teacher": True, "distill_alpha": 0.5, "refit_head": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=0.25)
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(SETTINGS))
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    dataset = load_dataset_for(checkpoint.spec)
    size = checkpoint.spec.input_size
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.setdefault("command", "python scripts/supcon_recovery_probe.py " + " ".join(
        [str(args.checkpoint), "-o", str(args.out), "--epochs", str(args.epochs)]))
    results["environment"] = environment()
    rows = results.setdefault("settings", {})
    if "dense" not in rows:
        rows["dense"] = {"accuracy": evaluate(torch_forward(checkpoint.model.eval()), dataset.test, size)["accuracy"]}
        write_json_atomic(results, args.out)
    print(f"dense: {rows['dense']['accuracy']:.4f}", flush=True)
    for name in args.only or SETTINGS:
        if name in rows:
            continue
        setting = dict(SETTINGS[name])
        model = copy.deepcopy(checkpoint.model)
        started = time.perf_counter()
        if setting.pop("bn_recalibrate", False):
            recalibrate_batchnorm(model, dataset.train, size)
        teacher = checkpoint.model.eval() if setting.pop("teacher", False) else None
        epochs = setting.pop("epochs", args.epochs)
        refit = setting.pop("refit_head", False)
        record: dict[str, Any] = {}
        try:
            if epochs:
                record = train(model, dataset.train, size, TrainConfig(epochs=epochs, precision=args.precision,
                                                                       **setting),
                               masks=zero_masks(model), teacher=teacher, show_progress=False)
        except RuntimeFailure as exc:  # a setting that diverges is a result too
            rows[name] = {"diverged": str(exc), "epochs": epochs, "setting": SETTINGS[name]}
            write_json_atomic(results, args.out)
            print(f"{name}: {exc}", flush=True)
            continue
        if refit:
            record["refit_head"] = refit_classifier(model, dataset.train, size)
        accuracy = evaluate(torch_forward(model.eval()), dataset.test, size)["accuracy"]
        rows[name] = {"accuracy": accuracy, "change_points": round(100 * (accuracy - rows["dense"]["accuracy"]), 2),
                      "seconds": round(time.perf_counter() - started, 1), "epochs": epochs, "setting": SETTINGS[name],
                      "precision": record.get("precision"), "steps": record.get("steps", 0),
                      "refit_head": record.get("refit_head")}
        write_json_atomic(results, args.out)
        print(f"{name}: {accuracy:.4f} ({rows[name]['change_points']:+.2f} points, {rows[name]['seconds']} s)",
              flush=True)


if __name__ == "__main__":
    main()
