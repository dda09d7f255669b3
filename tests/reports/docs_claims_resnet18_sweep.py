"""Claims from reports/resnet18-fashion-mnist/: the ResNet18 sweep's rows, differences and OpenAImer score files."""

from __future__ import annotations

from typing import Any

from docs_claims_common import _mb, _one, _pct
from docs_claims_sweeps import (
    UNSTRUCTURED,
    _baseline,
    _name,
    _openaimer,
    _provenance,
    _ratio,
    _row,
    _rows,
    _scored,
    _top_name,
    _within_one_point,
)
from test_committed_reports import Claim, Load

SWEEP_REPORT = "resnet18-fashion-mnist"
SECOND_ORDER = ("obd", "woodfisher", "fishleg")


def _setup(load: Load) -> str:
    rows = _rows(load)
    return (f"{len(rows)} cells on the cached ResNet18 ({_pct(_baseline(load))} % test top-1 at "
            f"{rows[0]['input_size']} px), {_provenance(load)}")


def _label(row: dict[str, Any]) -> str:
    """`blocks → l1 → int8` for a chain, else `_name` (strategy, amount, fine-tuned or not)."""
    if "+" in row["pipeline"]:
        return " → ".join(row["pipeline"].split("+")) + (" fine-tuned" if row["finetune_epochs"] else " one-shot")
    if "amount=" not in row["params"]:
        return row["pipeline"] + (" fine-tuned" if row["finetune_epochs"] else " one-shot")
    return _name(row) + ("" if row["finetune_epochs"] else " one-shot")


def _headline(load: Load) -> str:
    within = _within_one_point(load)
    smallest = min(within, key=lambda r: r["deployable_bytes"])
    fastest = min(within, key=lambda r: r["deployed_latency_ms"])
    size = (f"{_mb(smallest['deployable_bytes'])} MB (dense {_mb(smallest['baseline_deployable_bytes'])} MB) at "
            f"{_pct(smallest['accuracy'])} %")
    speed = (f"{fastest['deployed_latency_ms']:.2f} ms at batch 1, x{_ratio(fastest):.2f} of its own "
             f"interleaved dense timing, at {_pct(fastest['accuracy'])} %")
    if smallest is fastest:
        return f"the smallest file and the fastest model are the same run, {_label(smallest)}: {size} and {speed}"
    return f"the smallest file is {_label(smallest)}, {size}; the fastest model is {_label(fastest)}, {speed}"


def _ninety(load: Load) -> str:
    kept = ", ".join(f"{name.upper() if name == 'obd' else {'woodfisher': 'WoodFisher', 'fishleg': 'FishLeg'}[name]} "
                     f"{_pct(_row(load, name, 0, '0.9')['accuracy'])}" for name in SECOND_ORDER)
    return (f"at 90 % sparsity one-shot the second-order methods keep {kept} % where global l1 falls to "
            f"{_pct(_row(load, 'l1', 0, '0.9')['accuracy'])} % and layer-sensitive to "
            f"{_pct(_row(load, 'layer-sensitive', 0, '0.9')['accuracy'])} %; a quarter epoch of fine-tuning brings l1 "
            f"back to {_pct(_row(load, 'l1', 0.25, '0.9')['accuracy'])} %")


def _unstructured_latency(load: Load) -> str:
    ratios = [_ratio(r) for r in _rows(load) if r["pipeline"] in UNSTRUCTURED]
    return f"leaves latency unchanged (x{min(ratios):.2f}-{max(ratios):.2f} of the interleaved dense timing)"


def _channels90(load: Load) -> str:
    one_shot, tuned = _row(load, "channels", 0, "0.9"), _row(load, "channels", 0.25, "0.9")
    return (f"channels 90 %: {_mb(tuned['deployable_bytes'])} MB and {tuned['deployed_latency_ms']:.2f} ms, "
            f"{_pct(one_shot['accuracy'])} % one-shot and {_pct(tuned['accuracy'])} % after fine-tuning")


def _difference(load: Load) -> str:
    diffs = [d for d in load("results.json")["differences"] if d["pipeline"] == "obd" and d["amount"] == 0.9]
    one_shot = _one([d for d in diffs if d["finetune_epochs"] == 0], "obd 0.9 one-shot difference")
    tuned = _one([d for d in diffs if d["finetune_epochs"] == 0.25], "obd 0.9 fine-tuned difference")
    return (f"OBD minus l1 at 90 % is {one_shot['mean']:+.2f} ± {one_shot['se']:.2f} points one-shot "
            f"({one_shot['verdict']}) and {tuned['mean']:+.2f} ± {tuned['se']:.2f} after the quarter epoch "
            f"({tuned['verdict']})")


def _openaimer_readme(load: Load) -> str:
    top, _, accurate = _scored(load)
    return (f"the {_top_name(load, top)} model wins ({top['total_score']:.2f} at {top['accuracy']:.2f} %) and the "
            f"most accurate scored model ({accurate['accuracy']:.2f} %) scores {accurate['total_score']:.2f}")


def _openaimer_page(load: Load) -> str:
    top, twin, accurate = _scored(load)
    return (f"a {_top_name(load, top)} model at {twin['accuracy']:.2f} % scores {twin['total_score']:.2f}, "
            f"{twin['total_score'] / accurate['total_score']:.0f} times the most accurate scored model")


RESNET18_SWEEP: tuple[Claim, ...] = (
    Claim("cells, baseline, commit and machine", "results.json (rows)", _setup),
    Claim("smallest and fastest within 1 point", "results.json (rows)", _headline),
    Claim("90 % one-shot: second order against l1 and layer-sensitive", "results.json (rows)", _ninety),
    Claim("unstructured latency ratios", "results.json (rows)", _unstructured_latency),
    Claim("channels 90 %", "results.json (rows)", _channels90),
    Claim("OBD minus l1 at 90 %", "results.json (differences)", _difference),
    Claim("OpenAImer winner, twin, most accurate", "openaimer/*.json", _openaimer),
)
