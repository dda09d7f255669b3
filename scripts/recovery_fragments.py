"""The fragments of reports/recovery-fashion-mnist/ that docs/recovery.md includes and README.md embeds, so no
figure of the recovery work is copied by hand: rendered from the report's results.json and supcon-dense-probe.json.

    .venv/bin/python scripts/recovery_fragments.py [reports/recovery-fashion-mnist]

`render_fragments(report)` returns them (tests/reports/test_fragments.py compares them with the committed files);
scripts/recovery_report.py writes them after the report. `probe.md`: what each recovery setting costs the dense
SupCon classifier; `setup.md`: the machine, the baselines' training and precision; `findings.md`: the cells, each
bullet with the target it meets or misses; `headline.md`: the distilled channels 0.5 cell in one sentence.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from compressor.report.numbers import in_words, megabytes, met, percent, signed, the_one

Cell = dict[str, Any]


class Report:
    """The cells, baselines and dense probe of one recovery report directory."""

    def __init__(self, root: Path) -> None:
        results = json.loads((root / "results.json").read_text())
        self.cells: list[Cell] = [c for c in results["cells"] if c["status"] == "done"]
        self.baselines: list[dict[str, Any]] = sorted(results["baselines"], key=lambda b: b["seed"])
        self.probe: dict[str, Any] = json.loads((root / "supcon-dense-probe.json").read_text())["settings"]

    def cell(self, mode: str, pipeline: str, amount: float, epochs: float = 2) -> Cell:
        return the_one([c for c in self.cells if c["mode"] == mode and c["pipeline"] == pipeline
                     and math.isclose(c["amount"], amount) and c["finetune_epochs"] == epochs],
                    f"{mode} {pipeline} {amount} cell after {epochs} epochs")

    def pairs(self) -> list[tuple[Cell, Cell]]:
        """(plain, distilled) cells of the same ResNet18 setting at 2 epochs."""
        distilled = {(c["pipeline"], c["params"]): c for c in self.cells
                     if c["mode"] == "distilled" and c["finetune_epochs"] == 2}
        return [(c, distilled[(c["pipeline"], c["params"])]) for c in self.cells
                if c["mode"] == "plain" and c["finetune_epochs"] == 2 and (c["pipeline"], c["params"]) in distilled]


def _under(cell: Cell) -> float:
    """Points under the dense baseline the cell was compressed from."""
    return 100 * (cell["baseline_accuracy"] - cell["accuracy"])


def _speedup(cell: Cell) -> float:
    return cell["baseline_deployed_latency_ms"] / cell["deployed_latency_ms"]


def _channels_09_speedups(report: Report) -> list[float]:
    """In-cell ONNX Runtime speed-ups of every channels-0.9 cell, slowest first."""
    return sorted(_speedup(c) for c in report.cells if c["pipeline"] == "channels" and math.isclose(c["amount"], 0.9))


def _gap_se(cell: Cell) -> float:
    """Standard error of the difference of two accuracies near the cell's dense one, on its test images, in points."""
    p = cell["baseline_accuracy"]
    return 100 * math.sqrt(2 * p * (1 - p) / cell["test_samples"])


def probe(report: Report) -> str:
    settings = report.probe

    def change(name: str) -> float:
        return settings[name]["change_points"]

    dense = settings["dense"]["accuracy"]
    samples = the_one(sorted({c["test_samples"] for c in report.cells}), "test image count")
    se = 100 * math.sqrt(dense * (1 - dense) / samples)
    ce = settings["ce-lr0.01"]
    epochs = {0.25: "a quarter epoch"}.get(ce["epochs"], f"{ce['epochs']:g} epochs")
    frozen, diverged = settings["ce-lr0.01-frozen-bn"], settings["kd1-lr0.01-frozen-bn"]
    return (f"The dense classifier: {percent(dense)} %; fine-tuning {epochs} at LR {ce['setting']['lr']:g}. "
            "Re-estimating "
            f"the BatchNorm statistics on training images alone costs the dense model "
            f"{-change('bn-recalibrate-only'):.2f} points; cross-entropy fine-tuning {-change('ce-lr0.01'):.2f}, "
            f"distillation (α {settings['kd0.5-lr0.01']['setting']['distill_alpha']:g}) {-change('kd0.5-lr0.01'):.2f}, "
            f"pure distillation (α {settings['kd1-lr0.01']['setting']['distill_alpha']:g}) "
            f"{-change('kd1-lr0.01'):.2f}. With the head re-fitted afterwards: "
            f"{signed(change('bn-recalibrate+refit-head'))} (statistics only), "
            f"{signed(change('ce-lr0.01+refit-head'))} (cross-entropy), "
            f"{signed(change('kd0.5-lr0.01+refit-head'))} (distillation); the re-fit alone "
            f"{signed(change('refit-head-only'))} (the test set's standard error is {se:.2f} points). Freezing the "
            f"statistics while fine-tuning (`--freeze-bn`): {signed(frozen['change_points'])} points with "
            f"cross-entropy, and distillation {'diverged' if 'diverged' in diverged else 'did not diverge'}.\n")


def setup(report: Report) -> str:
    machines = {c["machine"].split(";")[0] for c in report.cells}
    cpu, cores = the_one(sorted({(m.split(",")[0], re.search(r"(\d+) cores", m)[1]) for m in machines}), "machine")
    chosen = the_one(sorted({b["precision"] for b in report.baselines}), "precision of the baselines")
    ratios = sorted(b["probe"]["fp32"] / b["probe"]["bf16"] for b in report.baselines)
    size = the_one(sorted({c["input_size"] for c in report.cells if c["arch"] == "resnet18-s1"}), "input size")
    first, last = report.baselines[0], report.baselines[-1]
    return (f"Measured on a {cores}-core {cpu}, one seed per grid cell. The baselines trained {first['epochs']} "
            f"epochs at the native {size} px for seeds {first['seed']}-{last['seed']}; the precision probe chose "
            f"{chosen} for every baseline, {ratios[0]:.1f}-{ratios[-1]:.1f}× faster per step than fp32.\n")


def _plain_distilled(report: Report, pipeline: str, amount: float) -> str:
    plain, distilled = report.cell("plain", pipeline, amount), report.cell("distilled", pipeline, amount)
    return (f"{percent(plain['accuracy'])} % plain, {percent(distilled['accuracy'])} % distilled "
            f"({_under(plain):.2f} and {_under(distilled):.2f} points under dense")


def findings(report: Report) -> str:  # noqa: PLR0915 (one bullet after another)
    accuracies = [100 * b["accuracy"] for b in report.baselines]
    epochs = the_one(sorted({b["epochs"] for b in report.baselines}), "epoch count of the baselines")
    mean = statistics.fmean(accuracies)
    seeds = f"{report.baselines[0]['seed']}-{report.baselines[-1]['seed']}"
    bullets = [f"**Dense baseline**: {' / '.join(f'{a:.2f}' for a in accuracies)} % test top-1 for seeds "
               f"{seeds} after {epochs} epochs (mean {mean:.2f} %, standard deviation "
               f"{statistics.stdev(accuracies):.2f} points). The ≥ 93.5 % target (mean of 3 seeds) is "
               f"{met(mean >= 93.5)}."]
    c5, d5 = report.cell("plain", "channels", 0.5), report.cell("distilled", "channels", 0.5)
    gain, se = 100 * (d5["accuracy"] - c5["accuracy"]), _gap_se(c5)
    speed = sorted(_speedup(c) for c in (c5, d5))
    within = [c for c in (c5, d5) if _under(c) <= 0.5]
    bullets.append(f"**Channels 0.5**, 2 epochs of recovery: {_plain_distilled(report, 'channels', 0.5)}; the test "
                   f"set's standard error of a gap is {se:.2f} points, so distillation's {gain:.2f} is "
                   f"{'no established' if abs(gain) <= 2 * se else 'an established'} difference), "
                   f"{c5['baseline_macs'] / c5['macs']:.1f}× fewer MACs, {c5['deployable_bytes'] / 1e6:.1f} MB, "
                   f"ONNX Runtime {speed[0]:.1f}-{speed[1]:.1f}× faster than dense in-cell. The \"within 0.5 points "
                   f"after ≤ 2 epochs\" target is met by {in_words(len(within))} of the two cells"
                   + (f" ({', '.join(c['mode'] for c in within)})" if within else "") + ".")
    blocks = (report.cell("plain", "blocks", 0.5), report.cell("distilled", "blocks", 0.5))
    speed = sorted(_speedup(c) for c in blocks)
    bullets.append(f"**Blocks 0.5**: {_plain_distilled(report, 'blocks', 0.5)}), "
                   f"{min(c['deployable_bytes'] for c in blocks) / 1e6:.1f} MB, {speed[0]:.1f}-{speed[1]:.1f}× "
                   "faster.")
    c7 = report.cell("plain", "channels", 0.7)
    pairs = report.pairs()
    gaps = [100 * (d["accuracy"] - p["accuracy"]) for p, d in pairs]
    noise = 2 * _gap_se(pairs[0][0])
    nine = [100 * (report.cell("distilled", p, 0.9)["accuracy"] - report.cell("plain", p, 0.9)["accuracy"])
            for p in ("channels", "channels+int8")]
    bullets.append(f"**Channels 0.7**: {_plain_distilled(report, 'channels', 0.7)}), "
                   f"{megabytes(c7['deployable_bytes'])} MB, {c7['baseline_macs'] / c7['macs']:.0f}× fewer MACs. "
                   "Over the "
                   f"{in_words(len(pairs))} plain/distilled pairs (every two-epoch cell below), distillation is "
                   "ahead in "
                   f"{in_words(sum(g > 0 for g in gaps))}, by {signed(min(gaps))} to {signed(max(gaps))} points, "
                   f"{'each gap inside' if all(abs(g) <= noise for g in gaps) else 'not every gap inside'} the "
                   f"per-pair noise of {noise:.2f} points (channels 0.9: {signed(nine[0])}, {signed(nine[1])}).")
    quarter, one = report.cell("budgets", "channels", 0.5, 0.25), report.cell("budgets", "channels", 0.5, 1)
    gradual = report.cell("gradual", "channels", 0.5)
    behind = 100 * (c5["accuracy"] - gradual["accuracy"])
    bullets.append(f"**Budget and schedule** (channels 0.5, plain): {percent(quarter['accuracy'])} % after a quarter "
                   f"epoch, {percent(one['accuracy'])} % after one, {percent(c5['accuracy'])} % after two. "
                   "Gradual pruning "
                   f"({gradual['prune_rounds']} rounds on the cubic schedule, the {gradual['finetune_epochs']:g} "
                   f"epochs split between them) reached {percent(gradual['accuracy'])} %, {abs(behind):.2f} points "
                   f"{'under' if behind > 0 else 'over'} one-shot at the same budget.")
    plain9, dist9 = report.cell("plain", "channels", 0.9), report.cell("distilled", "channels", 0.9)
    int8, int8_d = report.cell("plain", "channels+int8", 0.9), report.cell("distilled", "channels+int8", 0.9)
    bullets.append(f"**Channels 0.9**: {percent(plain9['accuracy'])} % plain, {percent(dist9['accuracy'])} % "
                   "distilled, "
                   f"{megabytes(plain9['deployable_bytes'])} MB fp32; with int8 "
                   f"{megabytes(int8['deployable_bytes'])} MB at "
                   f"{percent(int8['accuracy'])} % plain and {percent(int8_d['accuracy'])} % distilled.")
    a, b = report.cell("distilled", "l1+int8", 0.985), report.cell("distilled", "l1+int8", 0.99)
    within1 = [c for c in report.cells if c["arch"] == "resnet18-s1" and _under(c) <= 1]
    smallest = min(c["deployable_bytes"] for c in within1)
    bullets.append(f"**Under half a megabyte**: `l1` + int8, distilled, 2 epochs: sparsity {a['amount']:g} keeps "
                   f"{percent(a['accuracy'])} % ({_under(a):.2f} under dense) in "
                   f"{megabytes(a['deployable_bytes'])} MB; "
                   f"{b['amount']:g} keeps {percent(b['accuracy'])} % ({_under(b):.2f} under) in "
                   f"{megabytes(b['deployable_bytes'])} MB. The smallest file within 1 point of dense is "
                   f"{megabytes(smallest)} MB: "
                   f"the ≤ 0.38 MB target is {met(smallest <= 0.38e6)}.")
    magnitude = {(amount, m): report.cell(m, "l1", amount) for amount in (0.9, 0.95) for m in ("plain", "distilled")}
    gains = [-_under(c) for c in magnitude.values()]
    sizes = [statistics.fmean(magnitude[amount, m]["deployable_bytes"] for m in ("plain", "distilled")) / 1e6
             for amount in (0.9, 0.95)]
    bullets.append(f"**Magnitude (`l1`, global) with the same help** (2 epochs): 0.9 sparsity "
                   f"{percent(magnitude[0.9, 'plain']['accuracy'])} % plain and "
                   f"{percent(magnitude[0.9, 'distilled']['accuracy'])} % distilled, 0.95 sparsity "
                   f"{percent(magnitude[0.95, 'plain']['accuracy'])} % plain and "
                   f"{percent(magnitude[0.95, 'distilled']['accuracy'])} % distilled, "
                   f"{'all within' if all(abs(g) <= noise for g in gains) else 'not all within'} noise of dense "
                   f"({signed(min(gains))} to {signed(max(gains))} points), {sizes[0]:.1f} and {sizes[1]:.1f} MB as "
                   "sparse files.")
    b7 = (report.cell("plain", "blocks", 0.7), report.cell("distilled", "blocks", 0.7))
    under7, speed7 = sorted(_under(c) for c in b7), sorted(_speedup(c) for c in b7)
    bullets.append(f"**Blocks 0.7**: {percent(b7[0]['accuracy'])} % plain, {percent(b7[1]['accuracy'])} % distilled "
                   f"({under7[0]:.1f}-{under7[1]:.1f} points under dense), {megabytes(b7[0]['deployable_bytes'])} MB, "
                   f"~{speed7[0]:.0f}-{speed7[1]:.0f}× faster.")
    chain = (report.cell("plain", "blocks+l1+int8", 0.95), report.cell("distilled", "blocks+l1+int8", 0.95))
    bullets.append(f"**blocks 0.5 → l1 0.95 → int8** (the origin's chain): {percent(chain[0]['accuracy'])} % plain "
                   f"({_under(chain[0]):.2f} under dense), {megabytes(chain[0]['deployable_bytes'])} MB, "
                   f"×{_speedup(chain[0]):.1f} in-cell; {percent(chain[1]['accuracy'])} % distilled "
                   f"({_under(chain[1]):.2f} under), {megabytes(chain[1]['deployable_bytes'])} MB.")
    fast = [c for c in report.cells if c["arch"] == "resnet18-s1" and _under(c) <= 1 and _speedup(c) >= 3
            and c["pipeline"] in ("channels", "blocks")]
    nine_speed = _channels_09_speedups(report)
    bullets.append(f"≥ 3× ONNX Runtime speed-up within 1 point of dense at the training size: {met(bool(fast))}"
                   + (f" ({', '.join(sorted({c['pipeline'] + ' ' + format(c['amount'], 'g') for c in fast}))})"
                      if fast else "") + f"; the same channels-0.9 model timed {nine_speed[0]:.0f}× and "
                   f"{nine_speed[-1]:.0f}× in two cells: the in-cell ratios are good to within a factor of "
                   f"~{nine_speed[-1] / nine_speed[0]:.0f}, not to the digit.")
    frozen = {p: report.cell("supcon-frozen-encoder", p, 0.5, 1) for p in ("channels", "blocks")}
    standard = {p: report.cell("supcon-standard", p, 0.5, 1) for p in ("channels", "blocks")}
    refit = {p: 100 * (frozen[p]["accuracy"] - standard[p]["accuracy"]) for p in frozen}
    target = all(_under(c) <= 1 and _speedup(c) >= 2 for c in frozen.values())
    bullets.append(f"**DenseNet201 SupCon + linear classifier** ({percent(frozen['blocks']['baseline_accuracy'])} % "
                   "dense; one epoch of recovery, BatchNorm re-estimated after the structural step): with the "
                   f"`frozen-encoder` recipe blocks 0.5 reaches {percent(frozen['blocks']['accuracy'])} % "
                   f"({signed(-_under(frozen['blocks']))} points, {_speedup(frozen['blocks']):.2f}× faster under ONNX "
                   f"Runtime in-cell, {frozen['blocks']['deployable_bytes'] / 1e6:.1f} MB) and channels 0.5 "
                   f"{percent(frozen['channels']['accuracy'])} % ({signed(-_under(frozen['channels']))}, "
                   f"{_speedup(frozen['channels']):.2f}× faster, {frozen['channels']['deployable_bytes'] / 1e6:.1f} "
                   f"MB): the \"within 1 point at ≥ 2×\" target is {met(target)}. With the `standard` recipe (no head "
                   f"re-fit): channels 0.5 {percent(standard['channels']['accuracy'])} % "
                   f"({signed(-_under(standard['channels']))}), blocks 0.5 {percent(standard['blocks']['accuracy'])} % "
                   f"({signed(-_under(standard['blocks']))}): the head re-fit is worth {signed(refit['channels'])} "
                   f"and {signed(refit['blocks'])} points (standard error of a gap "
                   f"{_gap_se(standard['channels']):.2f} points, one seed each).")
    return "".join(f"- {bullet}\n" for bullet in bullets)


def headline(report: Report) -> str:
    cell = report.cell("distilled", "channels", 0.5)
    return (f"Channels 0.5 after {cell['finetune_epochs']:g} distilled epochs: {percent(cell['accuracy'])} % against "
            f"{percent(cell['baseline_accuracy'])} % dense with {cell['baseline_macs'] / cell['macs']:.1f}× fewer MACs "
            "(`reports/recovery-fashion-mnist/README.md`).\n")


def drift(report: Report) -> str:
    """docs/harness.md: how far one model's in-cell speed-up drifted between two cells run beside other jobs."""
    speed = _channels_09_speedups(report)
    return (f"In {in_words(len(speed))} cells of `reports/recovery-fashion-mnist/README.md` the same channels-0.9 "
            f"model timed {' and '.join(f'{s:.0f}×' for s in speed)} faster than dense.\n")


def render_fragments(root: Path) -> dict[str, str]:
    """Every fragment of the report directory `root`, by file name."""
    report = Report(root)
    return {"probe.md": probe(report), "setup.md": setup(report), "findings.md": findings(report),
            "headline.md": headline(report), "drift.md": drift(report)}


def write_fragments(root: Path) -> None:
    """Write the fragments into `root` (atomically)."""
    from compressor.report.fragments import write_texts

    for path in write_texts(root, render_fragments(root)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    write_fragments(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/recovery-fashion-mnist"))
