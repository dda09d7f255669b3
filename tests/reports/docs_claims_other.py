"""Claims from reports/make-test/ and the strategies report, and defaults the pages quote from the code."""

from __future__ import annotations

import math
import re

from docs_claims_common import _one
from docs_claims_sweeps import _rows
from test_committed_reports import Load

# ---------------------------------------------------------------------------------------------------------------
# reports/make-test/


def _wall_clock(load: Load) -> str:
    text = load("fresh-clone.txt")
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    seconds = round(3600 * int(m[1] or 0) + 60 * int(m[2]) + float(m[3]))
    cores = re.search(r"(\d+) cores", text.splitlines()[0])[1]
    return f"{seconds // 60} min {seconds % 60} s on {cores} cores, venv included: `reports/make-test/fresh-clone.txt`"


# ---------------------------------------------------------------------------------------------------------------
# defaults the pages quote, checked against the code (report directory None)


def _finetune_lr(load: Load) -> str:
    from compressor.models.baselines import FINETUNE_LR_FACTOR, RECIPES
    from compressor.recovery.config import DEFAULT_FINETUNE_LR

    return (f"defaults to {FINETUNE_LR_FACTOR:g}\n× the peak LR the baseline was trained with (read from the "
            f"checkpoint's history: {FINETUNE_LR_FACTOR * RECIPES['standard'].lr:g} for the `standard` recipe,\n"
            f"{FINETUNE_LR_FACTOR * RECIPES['anchor'].lr:g} for `anchor`), or {DEFAULT_FINETUNE_LR:g} when the history "
            "does not say")


def _distill_defaults(load: Load) -> str:
    from compressor.recovery.config import RecoveryConfig

    config = RecoveryConfig(finetune_epochs=1).resolved([])  # the standard recipe's defaults
    return (f"(`--distill-alpha`, default {config.distill_alpha:g}; `--distill-temperature`, default "
            f"{config.distill_temperature:g})")


def _anchor_lr(load: Load) -> str:
    from compressor.models.baselines import FINETUNE_LR_FACTOR, RECIPES

    return (f"the\nnew default peak LR, {FINETUNE_LR_FACTOR:g} × the baseline's "
            f"({FINETUNE_LR_FACTOR * RECIPES['anchor'].lr:g})")


def _timing_plan(load: Load) -> str:
    from compressor.measure.latency import TimingPlan

    plan = TimingPlan()
    return (f"Warm-up ≥ {plan.warmup_runs} runs and\n≥ {plan.warmup_seconds:g} s, then every call is timed "
            f"individually until ≥ {plan.min_runs} runs and ≥ {plan.min_seconds:g} s")


def _digits_epochs(load: Load) -> str:
    from compressor.models.baselines import DEFAULT_EPOCHS

    return f"once ({DEFAULT_EPOCHS['digits']} epochs, cached in"


def _recalibration_batches(load: Load) -> str:
    import inspect

    from compressor.recovery.batchnorm import recalibrate_batchnorm

    batches = inspect.signature(recalibrate_batchnorm).parameters["batches"].default
    return f"BatchNorm statistics are re-estimated on {batches} batches of training images"


def _one_cycle_steps(load: Load) -> str:
    from compressor.models.training import MIN_WARMUP_STEPS, ONE_CYCLE_PCT_START

    return f"fine-tune has at least {math.ceil(MIN_WARMUP_STEPS / ONE_CYCLE_PCT_START)} steps"


def _recipes(load: Load) -> str:
    from compressor.models.baselines import DEFAULT_EPOCHS, RECIPES, default_epochs

    standard = RECIPES["standard"]
    if DEFAULT_EPOCHS["cifar10"] != DEFAULT_EPOCHS["cifar100"]:
        return f"CIFAR-10 and CIFAR-100 train for different epochs: {DEFAULT_EPOCHS}"
    return (f"the dataset's epochs (digits {DEFAULT_EPOCHS['digits']}, Fashion-MNIST "
            f"{DEFAULT_EPOCHS['fashion-mnist']}, CIFAR {DEFAULT_EPOCHS['cifar10']}, folders "
            f"{default_epochs('imagefolder')}), one-cycle SGD + Nesterov at "
            f"peak LR {standard.lr:g}")


def _anchor_recipe(load: Load) -> str:
    from compressor.models.baselines import RECIPES

    anchor = RECIPES["anchor"]
    return (f"| `anchor` | {anchor.epochs} epochs, peak LR {anchor.lr:g}, random erasing (p {anchor.random_erasing:g}, "
            f"2-33 % of the image, Zhong et al.), label smoothing {anchor.label_smoothing:g}, an exponential moving "
            f"average of the weights and BatchNorm statistics (decay {anchor.ema_decay:g},")


def _precision_probe(load: Load) -> str:
    from compressor.models.training import PROBE_MIN_GAIN, PROBE_MIN_STEPS

    return (f"takes bf16 only when it is at least {PROBE_MIN_GAIN:g}× faster; runs shorter than {PROBE_MIN_STEPS} "
            "steps skip the probe")


def _finetune_settings(load: Load) -> str:
    runs = [load(f"runs/{r['source'].rsplit('/', 1)[1]}") for r in _rows(load) if r["finetune_epochs"] == 1]
    lr = _one(sorted({round(r["recovery"]["finetune"]["lr"], 12) for r in runs}), "fine-tuning LR")
    return f"(`--finetune-epochs 1`, lr {lr:g}, pruned weights held at zero)"


def _baseline_batch(load: Load) -> str:
    from compressor.data import load_dataset
    from compressor.models.baselines import MIN_BASELINE_BATCH, MIN_BASELINE_STEPS, baseline_batch_size
    from compressor.models.training import steps_per_epoch

    digits_train = len(load_dataset("digits").train)
    batch = baseline_batch_size(3, digits_train)
    return (f"halves its batch, down to {MIN_BASELINE_BATCH}, until\nit has at least {MIN_BASELINE_STEPS} optimizer "
            f"steps: `--epochs 3` on digits trains with batches of {batch} ({3 * steps_per_epoch(digits_train, batch)} "
            f"steps instead of {3 * steps_per_epoch(digits_train, 128)})")

