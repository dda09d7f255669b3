"""Claims from reports/recovery-fashion-mnist/ (recovery cells, dense baselines, the SupCon dense probe)."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from typing import Any

from docs_claims_common import WORDS, _mb, _one, _pct, _signed
from test_committed_reports import Load, markdown_tables


def _cells(load: Load) -> list[dict[str, Any]]:
    return [c for c in load("results.json")["cells"] if c["status"] == "done"]


def _cell(load: Load, mode: str, pipeline: str, amount: float, epochs: float = 2) -> dict[str, Any]:
    return _one([c for c in _cells(load) if c["mode"] == mode and c["pipeline"] == pipeline
                 and math.isclose(c["amount"], amount) and c["finetune_epochs"] == epochs],
                f"{mode} {pipeline} {amount} cell after {epochs} epochs")


def _under(cell: dict[str, Any]) -> float:
    """Points under the dense baseline the cell was compressed from."""
    return 100 * (cell["baseline_accuracy"] - cell["accuracy"])


def _speedup(cell: dict[str, Any]) -> float:
    return cell["baseline_deployed_latency_ms"] / cell["deployed_latency_ms"]


def _gap_se(cell: dict[str, Any]) -> float:
    """Standard error of the difference of two accuracies near the cell's dense one, on its test images, in points."""
    p = cell["baseline_accuracy"]
    return 100 * math.sqrt(2 * p * (1 - p) / cell["test_samples"])


def _plain_distilled(pipeline: str, amount: float) -> Callable[[Load], str]:
    def wording(load: Load) -> str:
        plain, distilled = _cell(load, "plain", pipeline, amount), _cell(load, "distilled", pipeline, amount)
        return (f"{_pct(plain['accuracy'])} % plain, {_pct(distilled['accuracy'])} % distilled "
                f"({_under(plain):.2f} and {_under(distilled):.2f}")
    return wording


def _channels05(load: Load) -> str:
    plain, distilled = _cell(load, "plain", "channels", 0.5), _cell(load, "distilled", "channels", 0.5)
    gain, se = 100 * (distilled["accuracy"] - plain["accuracy"]), _gap_se(plain)
    established = "is no established" if abs(gain) <= 2 * se else "is an established"
    speed = sorted(_speedup(c) for c in (plain, distilled))
    return (f"test set's standard error of a gap is {se:.2f} points, so distillation's {gain:.2f} {established} "
            f"difference), {plain['baseline_macs'] / plain['macs']:.1f}× fewer MACs, "
            f"{plain['deployable_bytes'] / 1e6:.1f} MB, ONNX Runtime {speed[0]:.1f}-{speed[1]:.1f}× faster than dense "
            "in-cell")


def _blocks05(load: Load) -> str:
    cells = (_cell(load, "plain", "blocks", 0.5), _cell(load, "distilled", "blocks", 0.5))
    sizes, speed = sorted(c["deployable_bytes"] for c in cells), sorted(_speedup(c) for c in cells)
    if f"{sizes[0] / 1e6:.1f}" != f"{sizes[1] / 1e6:.1f}":
        raise ValueError(f"blocks 0.5 files differ at one decimal: {sizes}")
    return f"under dense), {sizes[0] / 1e6:.1f} MB, {speed[0]:.1f}-{speed[1]:.1f}× faster"


def _channels07(load: Load) -> str:
    plain = _cell(load, "plain", "channels", 0.7)
    return (f"under dense), {plain['deployable_bytes'] / 1e6:.1f} MB, {plain['baseline_macs'] / plain['macs']:.0f}× "
            "fewer MACs")


def _pairs(load: Load) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(plain, distilled) cells of the same one-shot ResNet18 setting at 2 epochs."""
    distilled = {(c["pipeline"], c["params"]): c for c in _cells(load)
                 if c["mode"] == "distilled" and c["finetune_epochs"] == 2}
    return [(c, distilled[(c["pipeline"], c["params"])]) for c in _cells(load)
            if c["mode"] == "plain" and c["finetune_epochs"] == 2 and (c["pipeline"], c["params"]) in distilled]


def _pair_summary(load: Load) -> str:
    pairs = _pairs(load)
    gaps = [100 * (d["accuracy"] - p["accuracy"]) for p, d in pairs]
    noise = 2 * _gap_se(pairs[0][0])
    inside = "each gap inside" if all(abs(g) <= noise for g in gaps) else "not every gap inside"
    return (f"{WORDS.get(len(pairs), len(pairs))} plain/distilled pairs (every two-epoch cell below), distillation "
            f"is ahead in {WORDS.get(sum(g > 0 for g in gaps), sum(g > 0 for g in gaps))}, by {_signed(min(gaps))} to "
            f"{_signed(max(gaps))} points, {inside} the per-pair noise of {noise:.2f} points")


def _channels09_gains(load: Load) -> str:
    gains = [100 * (_cell(load, "distilled", p, 0.9)["accuracy"] - _cell(load, "plain", p, 0.9)["accuracy"])
             for p in ("channels", "channels+int8")]
    return f"(channels\n0.9: {_signed(gains[0])}, {_signed(gains[1])})"


def _budget(load: Load) -> str:
    quarter, one = _cell(load, "budgets", "channels", 0.5, 0.25), _cell(load, "budgets", "channels", 0.5, 1)
    two, gradual = _cell(load, "plain", "channels", 0.5), _cell(load, "gradual", "channels", 0.5)
    return (f"{_pct(quarter['accuracy'])} % after a quarter epoch, {_pct(one['accuracy'])} % after one, "
            f"{_pct(two['accuracy'])} % after two. Gradual pruning ({gradual['prune_rounds']} rounds on the cubic "
            f"schedule, the {gradual['finetune_epochs']:g} epochs split between them) reached "
            f"{_pct(gradual['accuracy'])} %, {_pct(two['accuracy'] - gradual['accuracy'])} points under one-shot at "
            "the same budget")


def _channels09(load: Load) -> str:
    plain, distilled = _cell(load, "plain", "channels", 0.9), _cell(load, "distilled", "channels", 0.9)
    int8, int8_d = _cell(load, "plain", "channels+int8", 0.9), _cell(load, "distilled", "channels+int8", 0.9)
    return (f"{_pct(plain['accuracy'])} % plain, {_pct(distilled['accuracy'])} % distilled, "
            f"{_mb(plain['deployable_bytes'])} MB fp32; with int8 {_mb(int8['deployable_bytes'])} MB at "
            f"{_pct(int8['accuracy'])} % plain and {_pct(int8_d['accuracy'])} % distilled")


def _half_megabyte(load: Load) -> str:
    a, b = _cell(load, "distilled", "l1+int8", 0.985), _cell(load, "distilled", "l1+int8", 0.99)
    within = [c for c in _cells(load) if c["arch"] == "resnet18-s1" and _under(c) <= 1]
    smallest = min(c["deployable_bytes"] for c in within)
    return (f"sparsity {a['amount']:g} keeps {_pct(a['accuracy'])} % ({_under(a):.2f} under dense) in "
            f"{_mb(a['deployable_bytes'])} MB; {b['amount']:g} keeps {_pct(b['accuracy'])} % ({_under(b):.2f} under) "
            f"in {_mb(b['deployable_bytes'])} MB. The smallest file within 1 point of dense is {_mb(smallest)} MB")


def _magnitude(load: Load) -> str:
    cells = {(a, m): _cell(load, m, "l1", a) for a in (0.9, 0.95) for m in ("plain", "distilled")}
    gains = [-_under(c) for c in cells.values()]
    noise = 2 * _gap_se(cells[0.9, "plain"])
    within = "all within noise of dense" if all(abs(g) <= noise for g in gains) else "not all within noise"
    sizes = [f"{statistics.fmean(cells[a, m]['deployable_bytes'] for m in ('plain', 'distilled')) / 1e6:.1f}"
             for a in (0.9, 0.95)]
    return (f"0.9 sparsity {_pct(cells[0.9, 'plain']['accuracy'])} % plain and "
            f"{_pct(cells[0.9, 'distilled']['accuracy'])} % distilled, 0.95 sparsity "
            f"{_pct(cells[0.95, 'plain']['accuracy'])} % plain and {_pct(cells[0.95, 'distilled']['accuracy'])} % "
            f"distilled, {within} ({_signed(min(gains))} to {_signed(max(gains))} points), {sizes[0]} and "
            f"{sizes[1]} MB as sparse files")


def _blocks07(load: Load) -> str:
    plain, distilled = _cell(load, "plain", "blocks", 0.7), _cell(load, "distilled", "blocks", 0.7)
    under = sorted((_under(plain), _under(distilled)))
    speed = sorted(_speedup(c) for c in (plain, distilled))
    return (f"{_pct(plain['accuracy'])} % plain, {_pct(distilled['accuracy'])} % distilled ({under[0]:.1f}-"
            f"{under[1]:.1f} points under dense), {_mb(plain['deployable_bytes'])} MB, ~{speed[0]:.0f}-"
            f"{speed[1]:.0f}× faster")


def _chain_cells(load: Load) -> str:
    plain = _cell(load, "plain", "blocks+l1+int8", 0.95)
    distilled = _cell(load, "distilled", "blocks+l1+int8", 0.95)
    return (f"{_pct(plain['accuracy'])} % plain ({_under(plain):.2f} under dense), {_mb(plain['deployable_bytes'])} "
            f"MB, ×{_speedup(plain):.1f} in-cell; {_pct(distilled['accuracy'])} % distilled ({_under(distilled):.2f} "
            f"under), {_mb(distilled['deployable_bytes'])} MB")


def _channels09_speedups(load: Load) -> list[float]:
    fast = sorted(_speedup(c) for c in _cells(load) if c["pipeline"] == "channels" and math.isclose(c["amount"], 0.9))
    if len(fast) != 2:
        raise ValueError(f"expected two channels-0.9 cells, found {len(fast)}")
    return fast


def _load_spread(load: Load) -> str:
    low, high = _channels09_speedups(load)
    return (f"timed {low:.0f}× and {high:.0f}× in two cells: the ratios are good to within a factor of "
            f"~{high / low:.0f}")


def _harness_spread(load: Load) -> str:
    low, high = _channels09_speedups(load)
    return f"model timed {low:.0f}× and {high:.0f}× faster than dense in two cells"


def _densenet_cells(load: Load) -> str:
    blocks, channels = (_cell(load, "supcon-frozen-encoder", p, 0.5, 1) for p in ("blocks", "channels"))
    return (f"blocks 0.5 reaches {_pct(blocks['accuracy'])} % ({_signed(-_under(blocks))} points, "
            f"{_speedup(blocks):.2f}× faster under ONNX Runtime in-cell, {blocks['deployable_bytes'] / 1e6:.1f} MB) "
            f"and channels 0.5 {_pct(channels['accuracy'])} % ({_signed(-_under(channels))}, "
            f"{_speedup(channels):.2f}× faster, {channels['deployable_bytes'] / 1e6:.1f} MB)")


def _densenet_standard(load: Load) -> str:
    frozen = {p: _cell(load, "supcon-frozen-encoder", p, 0.5, 1) for p in ("channels", "blocks")}
    standard = {p: _cell(load, "supcon-standard", p, 0.5, 1) for p in ("channels", "blocks")}
    refit = {p: 100 * (frozen[p]["accuracy"] - standard[p]["accuracy"]) for p in frozen}
    return (f"channels 0.5 {_pct(standard['channels']['accuracy'])} % ({_signed(-_under(standard['channels']))}), "
            f"blocks 0.5 {_pct(standard['blocks']['accuracy'])} % ({_signed(-_under(standard['blocks']))}): the "
            f"head re-fit is worth {_signed(refit['channels'])} and {_signed(refit['blocks'])} points (standard error "
            f"of a gap {_gap_se(standard['channels']):.2f} points, one seed each)")


def _baselines(load: Load) -> list[dict[str, Any]]:
    return load("results.json")["baselines"]


def _dense_baselines(load: Load) -> str:
    rows = sorted(_baselines(load), key=lambda b: b["seed"])
    accuracies = [100 * b["accuracy"] for b in rows]
    epochs = _one(sorted({b["epochs"] for b in rows}), "epoch count of the baselines")
    return (f"{' / '.join(f'{a:.2f}' for a in accuracies)} % test top-1 for seeds {rows[0]['seed']}-{rows[-1]['seed']} "
            f"after {epochs} epochs (mean {statistics.fmean(accuracies):.2f} %, standard deviation "
            f"{statistics.stdev(accuracies):.2f} points)")


def _probe_speedups(load: Load) -> str:
    chosen = {b["precision"] for b in _baselines(load)}
    ratios = sorted(b["probe"]["fp32"] / b["probe"]["bf16"] for b in _baselines(load))
    return (f"the probe chose {_one(sorted(chosen), 'precision of the baselines')} for every baseline, "
            f"{ratios[0]:.1f}-{ratios[-1]:.1f}× faster per step")


def _recovery_machine(load: Load) -> str:
    machines = {c["machine"].split(";")[0] for c in _cells(load)}
    cpu, cores = _one(sorted({(m.split(",")[0], re.search(r"(\d+) cores", m)[1]) for m in machines}), "machine")
    return f"Measured on this {cores}-core {cpu}"


def _anchor_training(load: Load) -> str:
    rows = sorted(_baselines(load), key=lambda b: b["seed"])
    size = _one(sorted({c["input_size"] for c in _cells(load) if c["arch"] == "resnet18-s1"}), "input size")
    return f"{rows[0]['epochs']} epochs at the native {size}\npx) for seeds {rows[0]['seed']}-{rows[-1]['seed']}"


def _targets_met(load: Load) -> str:
    table = _one([t for t in markdown_tables(load("README.md")) if t and "target" in t[0]], "targets table")
    return f"{WORDS[sum(row[''] == 'met' for row in table)].capitalize()} of issue 17's targets are met"


def _readme_recovery(load: Load) -> str:
    c = _cell(load, "distilled", "channels", 0.5)
    return (f"{c['finetune_epochs']:g} distilled epochs: {_pct(c['accuracy'])} % against "
            f"{_pct(c['baseline_accuracy'])} % dense with {c['baseline_macs'] / c['macs']:.1f}× fewer MACs")


def _probe(load: Load, setting: str) -> dict[str, Any]:
    return load("supcon-dense-probe.json")["settings"][setting]


def _probe_losses(load: Load) -> str:
    def change(setting: str) -> float:
        return _probe(load, setting)["change_points"]
    return (f"costs the dense model {-change('bn-recalibrate-only'):.2f} points; cross-entropy fine-tuning "
            f"{-change('ce-lr0.01'):.2f}, distillation (α "
            f"{_probe(load, 'kd0.5-lr0.01')['setting']['distill_alpha']:g}) {-change('kd0.5-lr0.01'):.2f}, pure "
            "distillation (α "
            f"{_probe(load, 'kd1-lr0.01')['setting']['distill_alpha']:g}) {-change('kd1-lr0.01'):.2f}. With the head "
            f"re-fitted afterwards: {_signed(change('bn-recalibrate+refit-head'))} (statistics only), "
            f"{_signed(change('ce-lr0.01+refit-head'))} (cross-entropy), {_signed(change('kd0.5-lr0.01+refit-head'))} "
            f"(distillation); the re-fit alone {_signed(change('refit-head-only'))} (the test set's standard error is "
            f"{_probe_se(load):.2f} points)")


def _dense_probe(load: Load) -> float:
    return _probe(load, "dense")["accuracy"]


def _probe_se(load: Load) -> float:
    """Binomial standard error of the probe's dense accuracy on the test images (those of every recovery cell)."""
    samples = _one(sorted({c["test_samples"] for c in _cells(load)}), "test image count")
    return 100 * math.sqrt(_dense_probe(load) * (1 - _dense_probe(load)) / samples)


def _probe_setup(load: Load) -> str:
    ce = _probe(load, "ce-lr0.01")
    epochs = {0.25: "a quarter epoch"}.get(ce["epochs"], f"{ce['epochs']:g} epochs")
    return f"({_pct(_dense_probe(load))} %, {epochs} at LR {ce['setting']['lr']:g};"


def _probe_frozen(load: Load) -> str:
    frozen, diverged = _probe(load, "ce-lr0.01-frozen-bn"), _probe(load, "kd1-lr0.01-frozen-bn")
    ending = "distillation diverged" if "diverged" in diverged else "distillation did not diverge"
    return f"{_signed(frozen['change_points'])} points with cross-entropy, and {ending}"
