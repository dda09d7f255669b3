"""The committed reports under reports/ say what their committed JSON says.

Each report directory has a check that returns its problems (an empty list when the README agrees with its files):

- rendered READMEs (second-order-*, recovery-fashion-mnist, deploy-224px, supcon): the README is rendered again from
  the committed JSON with the script's own rendering function and compared line by line, so every table and every
  generated sentence must be reproduced verbatim; where the JSON itself is derived from other committed files
  (results.json of the second-order reports from cells/*.json and dense.json, reports/supcon's rows from
  */metrics.json) the derivation is checked too;
- bench: the committed `*.txt` console output is rendered again from each `*.json` with compressor.report's tables;
- hand-written text (gradual/README.md, bench/README.md, the notes of second-order-densenet201-supcon and of
  recovery-fashion-mnist): tables are checked row by row against the run report each row names, and each number in
  the prose is computed from the JSON it comes from (NOTES_CLAIMS, GRADUAL_CLAIMS, RECOVERY_CLAIMS, _bench_claims)
  and must appear in the text. Numbers of that prose that no committed file holds are not checked.

A failing check names the README line or the figure. When a re-render differs, do not hand-edit: find out whether
the README is stale, the renderer changed, or the README was edited, and regenerate from the committed JSON
(`scripts/second_order_table.py --no-run`, `scripts/deploy_224px.py --no-run`) when no new measurement is needed.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import load_script

from compressor.report.summary import difference_section, reference_differences

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
SCRIPTS = REPO / "scripts"
Load = Callable[[str], Any]  # a report-relative path -> its parsed JSON


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def loader(report: Path) -> Load:
    return lambda relative: read_json(report / relative)


# ---------------------------------------------------------------------------------------------------------------
# comparing text, tables and claims


def _context(text: str, at: int, width: int = 40) -> str:
    start = max(0, at - width)
    return ("…" if start else "") + text[start:at + width] + ("…" if at + width < len(text) else "")


def text_diff(rendered: str, committed: str, name: str) -> list[str]:
    """One problem per line of `committed` that the render does not reproduce, naming the line and showing the
    committed and rendered text around the first difference."""
    ours, theirs = committed.splitlines(), rendered.splitlines()
    problems = []
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            old = ours[i1 + k] if i1 + k < i2 else ""
            new = theirs[j1 + k] if j1 + k < j2 else ""
            at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            problems.append(f"{name} line {min(i1 + k, len(ours)) + 1}: says {_context(old, at)!r}, but its JSON "
                            f"renders {_context(new, at)!r}")
    if committed.endswith("\n") != rendered.endswith("\n"):
        problems.append(f"{name}: the final newline differs from the render")
    return problems


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table of a Markdown text as a list of {header: cell} rows."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2 and set("".join(block[1])) <= set("-: "):
            tables.append([dict(zip(block[0], row)) for row in block[2:]])
        block = []
    return tables


def _normal(text: str) -> str:
    """Whitespace collapsed, shell line continuations joined."""
    return re.sub(r"\s+", " ", text.replace("\\\n", " "))


@dataclass(frozen=True)
class Claim:
    """A figure of hand-written prose: what it is, which committed file it comes from, and its wording computed
    from that file (the README must contain the wording, whitespace aside)."""

    what: str
    source: str
    wording: Callable[[Load], str]


def check_claims(text: str, claims: Iterable[Claim], load: Load, name: str) -> list[str]:
    problems, prose = [], _normal(text)
    for claim in claims:
        try:
            expected = claim.wording(load)
        except (KeyError, IndexError, TypeError, ValueError, StopIteration, FileNotFoundError) as exc:
            problems.append(f"{name}: {claim.what}: cannot compute it from {claim.source} ({exc!r})")
            continue
        if _normal(expected) not in prose:
            problems.append(f"{name}: {claim.what}: {claim.source} gives {expected!r}, which {name} does not say")
    return problems


def compare_rows(stored: Sequence[dict[str, Any]], recomputed: Sequence[dict[str, Any]], keys: Sequence[str],
                 what: str) -> list[str]:
    """Rows matched on `keys`; each stored row that differs from (or lacks) its recomputed twin is a problem."""
    def index(rows: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        return {tuple(row.get(k) for k in keys): row for row in rows}

    ours, theirs = index(stored), index(recomputed)
    problems = []
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        a, b = ours.get(key), theirs.get(key)
        if a == b:
            continue
        if a is None or b is None:
            problems.append(f"{what} {key}: only {'recomputed' if a is None else 'stored'}")
            continue
        fields = {k: (a.get(k), b.get(k)) for k in {*a, *b} if a.get(k) != b.get(k)}
        problems.append(f"{what} {key}: stored ≠ recomputed for {fields}")
    return problems


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


# ---------------------------------------------------------------------------------------------------------------
# scripts/second_order_table.py reports (README, results.json, cells/, dense.json, notes.md, fishleg-vs-obd*.json)


def check_second_order(report: Path) -> list[str]:
    table, agg = load_script("second_order_table"), load_script("second_order_aggregate")
    results = read_json(report / "results.json")
    rendered = table.readme(results["title"], results["dense"], results["methods"], results["amounts"],
                            results["seeds"], results["reference"], results, report)
    problems = text_diff(rendered, (report / "README.md").read_text(), "README.md")
    # results.json's derived numbers are those of its cells ...
    cells, specs, amounts, labels = results["cells"], results["methods"], results["amounts"], list(results["methods"])
    problems += compare_rows(results["aggregates"], agg.aggregate(cells, labels, amounts), ("label", "amount", "bn"),
                             "results.json aggregates")
    problems += compare_rows(results["differences"], agg.differences(cells, labels, results["reference"], amounts),
                             ("label", "amount", "bn"), "results.json differences")
    problems += compare_rows(results["targets"], agg.targets(cells, specs, amounts), ("target",),
                             "results.json targets")
    # ... and its cells and dense model are the committed files
    files = {path.stem: read_json(path) for path in sorted((report / "cells").glob("*.json"))}
    stored = {agg.cell_name(c["label"], c["amount"], c["seed"]): c for c in cells}
    for name in sorted(stored.keys() | files.keys()):
        if name not in files:
            problems.append(f"results.json cell {name}: no cells/{name}.json")
        elif name not in stored:
            problems.append(f"cells/{name}.json: not in results.json")
        elif files[name] != stored[name]:
            fields = sorted(k for k in {*files[name], *stored[name]} if files[name].get(k) != stored[name].get(k))
            problems.append(f"cells/{name}.json differs from results.json's cell in {fields}")
    problems += [f"results.json lists {name} as missing, but cells/{name}.json exists"
                 for name in results["missing"] if name in files]
    if read_json(report / "dense.json") != results["dense"]:
        problems.append("dense.json differs from results.json's dense")
    notes = report / "notes.md"
    if notes.exists():
        problems += check_claims(notes.read_text(), NOTES_CLAIMS.get(report.name, ()), loader(report), "notes.md")
    return problems


def _aggregate(load: Load, label: str, amount: float, bn: str) -> float:
    return next(r["mean_pct"] for r in load("results.json")["aggregates"]
                if (r["label"], r["amount"], r["bn"]) == (label, amount, bn))


def _jobs(load: Load) -> str:
    command = shlex.split(load("environment.json")["command"])
    return command[command.index("--jobs") + 1]


def _cpu_vs_gpu(label: str) -> Callable[[Load], str]:
    def wording(load: Load) -> str:
        cpu, gpu = load(f"cpu-check/{label}-0.5-s0.json")["accuracy"], load(f"cells/{label}-0.5-s0.json")["accuracy"]
        return f"`{label}` {_pct(cpu['no'])} / {_pct(cpu['yes'])} % (GPU {_pct(gpu['no'])} / {_pct(gpu['yes'])})"
    return wording


def _fishleg_steps(load: Load) -> str:
    from compressor.strategies.registry import get_strategy

    defaults = {p.name: p.default for p in get_strategy("fishleg").params}
    return f"runs {defaults['aux_steps']} + {defaults['refine_steps']} steps per recomputation"


def _device(load: Load) -> str:
    env = load("environment.json")
    cpu = env["cpu"].replace("(R)", "").split()[1]
    return f"On a lent {' '.join(env['cuda'].split()[:2])} ({env['cpu_count']}-core {cpu} host)"


def _cpu_check_cells(load: Load) -> str:
    l1, obd = load("cpu-check/l1-0.5-s0.json"), load("cpu-check/obd-0.5-s0.json")
    if (l1["amount"], l1["seed"]) != (obd["amount"], obd["seed"]):
        return "cpu-check cells of different amounts or seeds"
    return f"holds `l1` and `obd` at {100 * l1['amount']:g} %, seed {l1['seed']}"


def _bn_effect(load: Load) -> str:
    def change(label: str) -> float:
        return _aggregate(load, label, 0.5, "yes") - _aggregate(load, label, 0.5, "no")
    return (f"At 50 % `obd` loses {-change('obd'):.1f} points and `woodfisher` {-change('woodfisher'):.1f} points "
            f"when BatchNorm is recalibrated; `l1` gains {change('l1'):.1f}")


def _better_mode(load: Load) -> str:
    woodfisher, l1 = _aggregate(load, "woodfisher", 0.5, "no"), _aggregate(load, "l1", 0.5, "yes")
    return (f"`woodfisher` without recalibration ({woodfisher:.2f} %) is {woodfisher - l1:.1f} points above "
            f"recalibrated `l1` ({l1:.2f} %)")


NOTES_CLAIMS: dict[str, tuple[Claim, ...]] = {"second-order-densenet201-supcon": (
    Claim("GPU and host of the cells", "environment.json (cuda, cpu_count, cpu)", _device),
    Claim("cells at a time in the second call", "environment.json (--jobs of its command)",
          lambda load: f"the second only the first group ({_jobs(load)} at a time)"),
    Claim("cells sharing the GPU", "environment.json (--jobs of its command)",
          lambda load: f"up to {_jobs(load)} cells sharing the GPU"),
    Claim("the device copy's commit", "environment.json (git_commit, git_dirty)",
          lambda load: f"reported {load('environment.json')['git_commit']}"
                       + (" with changes" if load("environment.json")["git_dirty"] else "")),
    Claim("FishLeg's amounts", "results.json (amounts)",
          lambda load: f"seed-0 cells ({', '.join(f'{100 * a:g}' for a in load('results.json')['amounts'])} %)"),
    Claim("prunable layers", "dense.json (prunable_layers)",
          lambda load: "with {0} prunable layers every auxiliary step updates {0} Kronecker".format(
              len(load("dense.json")["prunable_layers"]))),
    Claim("FishLeg fit steps", "fishleg's defaults in compressor.strategies.registry", _fishleg_steps),
    Claim("OBD strategy seconds on the CPU", "cpu-check/obd-0.5-s0.json (strategy_seconds)",
          lambda load: f"takes {load('cpu-check/obd-0.5-s0.json')['strategy_seconds']:.0f} s of strategy time"),
    Claim("the CPU check's cells", "cpu-check/*.json (amount, seed)", _cpu_check_cells),
    Claim("l1 at 50 % on CPU and GPU", "cpu-check/l1-0.5-s0.json, cells/l1-0.5-s0.json", _cpu_vs_gpu("l1")),
    Claim("obd at 50 % on CPU and GPU", "cpu-check/obd-0.5-s0.json, cells/obd-0.5-s0.json", _cpu_vs_gpu("obd")),
    Claim("OBD's recalibrated CPU−GPU difference", "cpu-check/obd-0.5-s0.json, cells/obd-0.5-s0.json",
          lambda load: "recalibrated accuracy by {:.1f} points".format(
              100 * abs(load("cpu-check/obd-0.5-s0.json")["accuracy"]["yes"]
                        - load("cells/obd-0.5-s0.json")["accuracy"]["yes"]))),
    Claim("threads of the CPU check", "cpu-check/*.json (device, threads)",
          lambda load: "run on the {} with {} threads".format(
              *_same(((c["device"].upper(), c["threads"]) for c in (load("cpu-check/l1-0.5-s0.json"),
                                                                     load("cpu-check/obd-0.5-s0.json"))),
                     "the CPU check's device and threads"))),
    Claim("OBD's recalibrated seed spread on the GPU", "results.json (aggregates)",
          lambda load: "its standard deviation over the three GPU\nseeds is {:.2f} points".format(
              next(a["std_pct"] for a in load("results.json")["aggregates"]
                   if (a["label"], a["amount"], a["bn"], a["n"]) == ("obd", 0.5, "yes", 3)))),
    Claim("effect of BN recalibration at 50 %", "results.json (aggregates)", _bn_effect),
    Claim("woodfisher without vs l1 with recalibration at 50 %", "results.json (aggregates)", _better_mode),
)}


# ---------------------------------------------------------------------------------------------------------------
# reports/second-order-fashion-mnist/gradual/: hand-written README over three `compressor run` reports


def _binomial_se(report: dict[str, Any]) -> float:
    p, n = report["compressed"]["accuracy"], report["dataset"]["samples"]
    return math.sqrt(p * (1 - p) / n)


GRADUAL_COLUMNS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "strategy": lambda r, name: r["strategy"],
    "test top-1 (%)": lambda r, name: f"{_pct(r['compressed']['accuracy'])} ± {_pct(_binomial_se(r))}",
    "sparsity (%)": lambda r, name: _pct(r["compressed"]["sparsity"]),
    "pruning seconds (both rounds)": lambda r, name: f"{sum(step['seconds'] for step in r['steps']):.0f}",
    "run report": lambda r, name: f"`{name}`",
}


def _gradual_runs(load: Load) -> list[dict[str, Any]]:
    return [load(name) for name in ("fishleg-0.95.json", "l1-0.95.json", "obd-0.95.json")]


def _same(values: Iterable[Any], what: str) -> Any:
    distinct = {json.dumps(v, sort_keys=True) for v in values}
    if len(distinct) != 1:
        raise ValueError(f"the run reports disagree on {what}: {sorted(distinct)}")
    return json.loads(distinct.pop())


def _gradual(field: Callable[[dict[str, Any]], Any], what: str) -> Callable[[Load], Any]:
    return lambda load: _same((field(r) for r in _gradual_runs(load)), what)


def _quarter(epochs: float) -> str:
    return {0.25: "a quarter epoch", 0.5: "half an epoch", 1.0: "one epoch"}.get(epochs, f"{epochs:g} epochs")


def _noise_points(load: Load) -> str:
    return f"about {_same((f'{200 * math.sqrt(2) * _binomial_se(r):.1f}' for r in _gradual_runs(load)), '2 SE'):s}"


GRADUAL_CLAIMS = (
    Claim("dense baseline and input size", "*.json (baseline.accuracy, model.input_size)",
          lambda load: f"baseline ({_pct(_gradual(lambda r: r['baseline']['accuracy'], 'baseline')(load))} % test "
                       f"top-1, {_gradual(lambda r: r['model']['input_size'], 'input size')(load)} px)"),
    Claim("target sparsity", "*.json (the last step's amount)",
          lambda load: f"to {100 * _gradual(lambda r: r['steps'][-1]['params']['amount'], 'amount')(load):g} % of"),
    Claim("rounds and schedule", "*.json (recovery.prune_rounds, recovery.schedule)",
          lambda load: f"in {_gradual(lambda r: r['recovery']['prune_rounds'], 'rounds')(load)} rounds on the "
                       f"{_gradual(lambda r: r['recovery']['schedule'].split()[0], 'schedule')(load)} schedule"),
    Claim("fine-tuning per round", "*.json (recovery.rounds[].finetune_epochs)",
          lambda load: _quarter(_same((x['finetune_epochs'] for r in _gradual_runs(load)
                                       for x in r['recovery']['rounds']), 'epochs per round'))
          + " of\nfine-tuning after each round"),
    Claim("fine-tuning in all and recipe", "*.json (recovery.finetune_epochs, recovery.recipe)",
          lambda load: f"({_gradual(lambda r: r['recovery']['finetune_epochs'], 'epochs')(load):g} epoch in all, "
                       f"`{_gradual(lambda r: r['recovery']['recipe'], 'recipe')(load)}` recovery recipe)"),
    Claim("seed", "*.json (recovery.rounds[].finetune.seed)",
          lambda load: "One seed ({})".format(_same((x["finetune"]["seed"] for r in _gradual_runs(load)
                                                     for x in r["recovery"]["rounds"]), "seed"))),
    Claim("noise threshold (2 × the SE of a difference)", "*.json (compressed.accuracy, dataset.samples)",
          lambda load: f"a difference under {_noise_points(load)} points"),
    Claim("environment", "*.json (environment)",
          lambda load: "Environment: {cpu}, torch {torch}, git {git}; {threads} thread".format(
              **_gradual(lambda r: {"cpu": r["environment"]["cpu"], "torch": r["environment"]["packages"]["torch"],
                                    "git": r["environment"]["git_commit"],
                                    "threads": {1: "one"}.get(r["environment"]["torch_threads"],
                                                              r["environment"]["torch_threads"])},
                         "environment")(load))),
    Claim("the regenerate command's options", "*.json (command, up to --output)",
          lambda load: _gradual(lambda r: r["command"].replace(f"-s {r['strategy']} ", "-s STRATEGY ")
                                .split(" --output")[0].removeprefix("compressor "), "command")(load)),
    Claim("where the runs wrote their reports", "*.json (command's --output)",
          lambda load: "--output " + _gradual(lambda r: shlex.split(r["command"])[-1].replace(
              f"/{r['strategy']}-", "/STRATEGY-"), "output path")(load)),
)


def check_gradual(report: Path) -> list[str]:
    text = (report / "README.md").read_text()
    problems, tables = [], markdown_tables(text)
    rows = next((t for t in tables if t and "run report" in t[0]), None)
    if rows is None:
        return ["README.md: no table with a `run report` column"]
    named = set()
    for row in rows:
        name = row["run report"].strip("`")
        named.add(name)
        if not (report / name).exists():
            problems.append(f"README.md row {row}: {name} is not a committed file")
            continue
        run = read_json(report / name)
        for column, cell in row.items():
            if column not in GRADUAL_COLUMNS:
                problems.append(f"README.md column {column!r}: no source is known for it")
            elif cell != (expected := GRADUAL_COLUMNS[column](run, name)):
                problems.append(f"README.md row {name}, {column!r}: says {cell!r}, {name} gives {expected!r}")
    problems += [f"{path.name}: no README.md row" for path in sorted(report.glob("*.json")) if path.name not in named]
    return problems + check_claims(text, GRADUAL_CLAIMS, loader(report), "README.md")


# ---------------------------------------------------------------------------------------------------------------
# reports/recovery-fashion-mnist/ (scripts/recovery_report.py; the note paragraph is hand-written, passed as --note)

_RECOVERY_HEAD = re.compile(r"^Regenerate: `(?P<command>[^`]*)`\.\n\n(?P<note>.*?)\n\n## Dense baselines", re.M | re.S)


def _speedups(load: Load, pipeline: str, params_prefix: str) -> list[float]:
    return [c["baseline_deployed_latency_ms"] / c["deployed_latency_ms"] for c in load("results.json")["cells"]
            if c["status"] == "done" and c["pipeline"] == pipeline and c["params"].startswith(params_prefix)]


def _machine(load: Load) -> str:
    machines = {c["machine"].split(";")[0] for c in load("results.json")["cells"] if c["status"] == "done"}
    cpus = {(m.split(",")[0], re.search(r"(\d+) cores", m).group(1)) for m in machines}
    (cpu, cores), = cpus  # one CPU model and core count, else ValueError
    return f"Machine: {cores}-core {cpu}"


def _load_note(load: Load) -> str:
    fast = _speedups(load, "channels", "channels.amount=0.9 ")
    if len(fast) != 2:
        raise ValueError(f"expected two channels-0.9 cells, found {len(fast)}")
    low, high = sorted(fast)
    return (f"the same channels-0.9 model measured {low:.0f}x and {high:.0f}x faster than dense in two cells, so the "
            f"speed-up ratios are good to a factor of about {high / low:.0f}")


def _threads(load: Load) -> str:
    threads = {(c["pipeline"], c["amount"]): re.search(r"torch threads (\d+)", c["machine"]).group(1)
               for c in load("results.json")["cells"] if c["status"] == "done"}
    (others,) = [cell for cell, n in threads.items() if n != "1"]  # exactly one cell not on one thread
    return (f"every cell's `machine` says torch threads 1 except {others[0]} {others[1]:g}, which says "
            f"{threads[others]}")


def _recovery_defaults(load: Load) -> str:
    from compressor.models.baselines import FINETUNE_LR_FACTOR, get_recipe
    from compressor.recovery.config import RecoveryConfig

    config = RecoveryConfig(finetune_epochs=1).resolved([])  # the standard recipe's defaults
    return (f"peak LR {FINETUNE_LR_FACTOR:g} x the baseline's (`FINETUNE_LR_FACTOR` in compressor/baseline.py; the "
            f"`anchor` recipe's baselines peak at {get_recipe('anchor').lr:g}), one-cycle schedule, precision chosen "
            f"by the probe; distilled cells use the defaults alpha {config.distill_alpha:g}, "
            f"T {config.distill_temperature:g}")


RECOVERY_CLAIMS = (
    Claim("CPU and cores of the cells", "results.json (cells[].machine)", _machine),
    Claim("torch threads of the cells", "results.json (cells[].machine)", _threads),
    Claim("fine-tuning LR and distillation settings", "compressor.models.baselines, compressor.api defaults",
          _recovery_defaults),
    Claim("spread of the channels-0.9 speed-ups", "results.json (cells: latencies)", _load_note),
)


def check_recovery(report: Path) -> list[str]:
    report_script = load_script("recovery_report")
    committed = (report / "README.md").read_text()
    head = _RECOVERY_HEAD.search(committed)
    if head is None:
        return ["README.md: no `Regenerate:` line followed by the note and `## Dense baselines`"]
    results = read_json(report / "results.json")
    probe_path = report / report_script.PROBE_FILE
    probe = read_json(probe_path) if probe_path.exists() else None
    rendered = report_script.markdown(results["baselines"], results["cells"], head["command"], head["note"], probe)
    return (text_diff(rendered, committed, "README.md")
            + check_claims(head["note"], RECOVERY_CLAIMS, loader(report), "README.md (note)"))


# ---------------------------------------------------------------------------------------------------------------
# reports/deploy-224px/ (scripts/deploy_224px.py; its README also reads runs/*.json)


def check_deploy(report: Path) -> list[str]:
    results = {**read_json(report / "results.json"), "out": str(report)}
    rendered = load_script("deploy_224px").readme(results)
    return text_diff(rendered, (report / "README.md").read_text(), "README.md")


# ---------------------------------------------------------------------------------------------------------------
# reports/supcon/ (scripts/supcon_report.py over supcon/metrics.json and cross-entropy/metrics.json)


def check_supcon(report: Path) -> list[str]:
    script = load_script("supcon_report")
    results = read_json(report / "results.json")
    rendered = script.markdown(results["rows"], results["command"], results["environment"])
    problems = text_diff(rendered, (report / "README.md").read_text(), "README.md")
    rows = [script.method_row(name, read_json(report / name / "metrics.json")) for name in script.METHODS]
    return problems + compare_rows(results["rows"], rows, ("method",), "results.json rows vs */metrics.json")


# ---------------------------------------------------------------------------------------------------------------
# reports/bench/: `compressor bench` JSON + its printed output (*.txt) + a hand-written README


def bench_output(result: dict[str, Any], width: int) -> str:
    """What `compressor bench` printed for `result` (the order of compressor.cli.compress.bench_command)."""
    from rich.console import Console

    from compressor.report import bench_renderables

    command = shlex.split(result["command"])
    layers = int(command[command.index("--layers") + 1]) if "--layers" in command else 10
    output = next((command[i + 1] for i, arg in enumerate(command[:-1]) if arg in ("--output", "-o")), None)
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False,
                      force_interactive=False, force_jupyter=False, legacy_windows=False, _environ={})
    for table in bench_renderables(result["measurements"], layers):
        console.print(table)
    if output is not None:
        console.print(f"report: {output}")
    return console.file.getvalue()


def _bench_claims(stem: str) -> tuple[Claim, ...]:
    source = f"{stem}.json"

    def environment(load: Load) -> str:
        env = load(source)["environment"]
        packages = ", ".join(f"{name} {env['packages'][name]}"
                             for name in ("torch", "torchvision", "torch-pruning", "onnx", "onnxruntime"))
        cpu = re.sub(r"\((R|TM)\)", "", env["cpu"])
        return (f"Environment (also in each JSON under `environment`): {cpu}, {env['cpu_count']} cores, "
                f"{env['torch_threads']} threads, Python {env['python']}, {packages}, "
                f"{'no GPU' if env['cuda'] is None else env['cuda']}, git commit {env['git_commit']}.")

    def model(load: Load) -> str:
        m = load(source)["model"]
        weights = "random weights" if m["weights"] == "random initialization" and m["checkpoint"] is None else m
        batch = load(source)["measurements"]["measure_config"]["batch_size"]
        return f"({m['in_channels']} channels, {m['num_classes']:,} classes), {weights}, batch {batch}"

    return (
        Claim(f"command of {stem}", f"{source} (command)",
              lambda load: f".venv/bin/{load(source)['command']} > reports/bench/{stem}.txt"),
        Claim(f"input size of {stem}", f"{source} (model.input_size)",
              lambda load: f"DenseNet201 at {load(source)['model']['input_size']} px"),
        Claim(f"model of {stem}", f"{source} (model, measure_config.batch_size)", model),
        Claim(f"environment of {stem}", f"{source} (environment)", environment),
        Claim(f"threads of {stem}", f"{source} (measure_config.threads)",
              lambda load: f"{load(source)['measurements']['measure_config']['threads']} threads"),
    )


def check_bench(report: Path) -> list[str]:
    readme = (report / "README.md").read_text()
    width = re.search(r"COLUMNS=(\d+)", readme)
    if width is None:
        return ["README.md: no COLUMNS=N in the regenerate commands (the width the *.txt was printed at)"]
    problems = []
    stems = [path.stem for path in sorted(report.glob("*.json"))]
    for stem in stems:
        result = read_json(report / f"{stem}.json")
        txt = report / f"{stem}.txt"
        if not txt.exists():
            problems.append(f"{stem}.json: no {stem}.txt")
        else:
            problems += text_diff(bench_output(result, int(width[1])), txt.read_text(), txt.name)
        problems += check_claims(readme, _bench_claims(stem), loader(report), "README.md")
    return problems + [f"{path.name}: no {path.stem}.json" for path in sorted(report.glob("*.txt"))
                       if path.stem not in stems]


OPENAIMER_HEADING = "## OpenAImer Track-2 score"


def markdown_section(text: str, heading: str) -> str | None:
    """From `heading` to the next `## ` heading (or the end), or None when the text has no such heading."""
    start = text.find(f"\n{heading}\n")
    if start < 0:
        return None
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start + 1:] if end < 0 else text[start + 1:end + 1]


def check_openaimer_section(report: Path, rows: list[dict[str, Any]], readme: str) -> list[str]:
    """The OpenAImer table is rendered again from the committed score files (openaimer/*.json) and must match."""
    from compressor.report.summary import load_scores, openaimer_section

    section, scores = markdown_section(readme, OPENAIMER_HEADING), report / "openaimer"
    if not scores.is_dir():
        return [] if section is None else ["README.md: an OpenAImer table, but no score files under openaimer/"]
    if section is None:
        return ["README.md: score files under openaimer/, but no OpenAImer table"]
    rendered = openaimer_section(rows, load_scores([scores]))
    return text_diff(rendered.strip() + "\n", section.strip() + "\n", "README.md (OpenAImer section)")


def check_sweep_summary(report: Path) -> list[str]:
    """A `compressor report` summary: its run table, row by row, against results.json (written together), and its
    OpenAImer table against the committed score files."""
    results = read_json(report / "results.json")
    rows = results["rows"]
    readme = (report / "README.md").read_text()
    problems = check_openaimer_section(report, rows, readme)
    if "reference" in results:  # the difference section and its JSON, re-derived from the rows with today's rule
        diffs = reference_differences(rows, results["reference"])
        section = difference_section(diffs, results["reference"])
        if section not in readme:
            problems.append("README.md: the difference section differs from the one its rows give "
                            "(scripts/rederive_differences.py)")
        if results.get("differences") != json.loads(json.dumps([d.as_dict() for d in diffs])):
            problems.append("results.json: differences differ from those its rows give")
    tables = [t for t in markdown_tables(readme) if t and "pipeline" in t[0]
              and "deployable MB" in t[0] and "runs" not in t[0]]
    if len(tables) != 1:
        return problems + [f"README.md: expected one run table, found {len(tables)}"]
    (table,) = tables
    if table[0]["pipeline"] != "*baseline*":
        return problems + ["README.md: the run table does not start with the baseline row"]
    base = table[0]
    accuracy_column = "top-1 % ± SE" if "top-1 % ± SE" in base else "top-1 %"
    if base[accuracy_column] != f"{100 * rows[0]['baseline_accuracy']:.2f}":
        problems.append(f"README.md baseline: top-1 {base[accuracy_column]} but results.json says "
                        f"{100 * rows[0]['baseline_accuracy']:.2f}")
    if len(table) - 1 != len(rows):
        problems.append(f"README.md: {len(table) - 1} runs in the table, {len(rows)} in results.json")
    for index, (line, row) in enumerate(zip(table[1:], rows), 1):
        expected = {"pipeline": row["pipeline"], "fine-tune epochs": str(row["finetune_epochs"]),
                    "macro F1": f"{row['f1_macro']:.3f}", "sparsity %": f"{100 * row['sparsity']:.2f}",
                    "non-zero params": f"{row['params_nonzero']:,}", "MACs (M)": f"{row['macs'] / 1e6:.1f}",
                    "deployable MB": f"{row['deployable_bytes'] / 1e6:.2f}"}
        for column, value in expected.items():
            if line.get(column) != value:
                problems.append(f"README.md run {index} ({row['pipeline']} {row['params']}): {column} "
                                f"{line.get(column)!r} but results.json gives {value!r}")
        if line[accuracy_column].split(" ± ")[0] != f"{100 * row['accuracy']:.2f}":
            problems.append(f"README.md run {index} ({row['pipeline']} {row['params']}): top-1 "
                            f"{line[accuracy_column]!r} but results.json gives {100 * row['accuracy']:.2f}")
    return problems


CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "resnet18-fashion-mnist": check_sweep_summary,
    "resnet18-fashion-mnist-strategies": check_sweep_summary,
    "densenet201-supcon-fashion-mnist": check_sweep_summary,
    "second-order-fashion-mnist": check_second_order,
    "second-order-densenet201-supcon": check_second_order,
    "second-order-fashion-mnist/gradual": check_gradual,
    "recovery-fashion-mnist": check_recovery,
    "deploy-224px": check_deploy,
    "supcon": check_supcon,
    "bench": check_bench,
}


# ---------------------------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("name", CHECKS)
def test_committed_report_agrees_with_its_json(name: str):
    problems = CHECKS[name](REPORTS / name)
    assert not problems, f"reports/{name}:\n" + "\n".join(problems)


def test_deploy_accuracies_are_the_recovery_cells():
    """deploy-224px takes each model's accuracy from the recovery run beside its checkpoint; those runs are the
    cells of recovery-fashion-mnist/results.json, so the two committed reports must agree."""
    deploy = read_json(REPORTS / "deploy-224px" / "results.json")["models"]
    recovery = read_json(REPORTS / "recovery-fashion-mnist" / "results.json")
    cells = {c["checkpoint"]: c for c in recovery["cells"] if c["status"] == "done"}
    compared = 0
    for name, row in deploy.items():
        if "checkpoint" in row:
            assert row["checkpoint"] in cells, f"{name}: {row['checkpoint']} is no recovery cell"
            assert row["accuracy"] == cells[row["checkpoint"]]["accuracy"], name
            compared += 1
    seed0 = next(b for b in recovery["baselines"] if b["seed"] == 0)
    assert deploy["dense"]["accuracy"] == seed0["accuracy"]
    assert compared >= 10


def _copy(name: str, tmp_path: Path) -> Path:
    """The report directory in tmp_path, without checkpoints and images (no check reads them)."""
    return Path(shutil.copytree(REPORTS / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pt", "*.png")))


def _edit_text(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        return text.replace(old, new)
    return edit


def _edit_json(change: Callable[[Any], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data, indent=2)
    return edit


def _set(path: Sequence[Any], value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return change


def _aggregate_row(label: str, amount: float, bn: str, value: float) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        row = next(r for r in data["aggregates"] if (r["label"], r["amount"], r["bn"]) == (label, amount, bn))
        row["mean_pct"] = value
    return change


# (report, files edited the same way, edit, text that the reported problems must contain)
ALTERATIONS = {
    "second-order table cell": ("second-order-fashion-mnist", ("README.md",),
                                _edit_text("| obd | 89.34 ± 0.11 |", "| obd | 89.43 ± 0.11 |"), "89.43"),
    "second-order aggregate in results.json": ("second-order-fashion-mnist", ("results.json",),
                                               _edit_json(_aggregate_row("fishleg", 0.95, "yes", 91.99)), "91.99"),
    "second-order cell file": ("second-order-densenet201-supcon", ("cells/obd-0.5-s1.json",),
                               _edit_json(_set(("accuracy", "yes"), 0.8)), "obd-0.5-s1"),
    "second-order notes figure": ("second-order-densenet201-supcon", ("README.md", "notes.md"),
                                  _edit_text("`l1` 64.46 / 77.28 %", "`l1` 64.46 / 77.82 %"), "77.28"),
    "second-order notes vs cpu-check JSON": ("second-order-densenet201-supcon", ("cpu-check/obd-0.5-s0.json",),
                                             _edit_json(_set(("strategy_seconds",), 371.0)), "takes 371 s"),
    "gradual table cell": ("second-order-fashion-mnist/gradual", ("README.md",),
                           _edit_text("| l1 | 90.43 ± 0.29 |", "| l1 | 90.34 ± 0.29 |"), "90.34"),
    "gradual run report": ("second-order-fashion-mnist/gradual", ("obd-0.95.json",),
                           _edit_json(_set(("compressed", "sparsity"), 0.9)), "90.00"),
    "gradual prose": ("second-order-fashion-mnist/gradual", ("README.md",),
                      _edit_text("(92.01 % test top-1", "(92.10 % test top-1"), "dense baseline"),
    "recovery grid cell": ("recovery-fashion-mnist", ("README.md",),
                           _edit_text("| 18.55 | 93.19 | -0.21 |", "| 18.55 | 93.91 | -0.21 |"), "93.91"),
    "recovery note": ("recovery-fashion-mnist", ("README.md",), _edit_text("44x and 81x", "44x and 18x"), "81x"),
    "recovery probe JSON": ("recovery-fashion-mnist", ("supcon-dense-probe.json",),
                            _edit_json(_set(("settings", "refit-head-only", "accuracy"), 0.8891)), "88.91"),
    "deploy table cell": ("deploy-224px", ("README.md",),
                          _edit_text("| plain/blocks-0.5 | blocks | 93.02 % |",
                                     "| plain/blocks-0.5 | blocks | 93.20 % |"),
                          "93.20"),
    "deploy run report": ("deploy-224px", ("runs/channels-r16+int8-0.5-ft2-distill.json",),
                          _edit_json(_set(("compressed", "accuracy"), 0.9)), "90.00 %"),
    "supcon table cell": ("supcon", ("README.md",), _edit_text("| 0.8998 | 0.8994 |", "| 0.8989 | 0.8994 |"), "0.8989"),
    "supcon metrics": ("supcon", ("cross-entropy/metrics.json",), _edit_json(_set(("f1_macro",), 0.91)), "f1_macro"),
    "bench printed table": ("bench", ("resnet18-224px.txt",),
                            _edit_text("│ 24.289 │ 24.706 │", "│ 24.298 │ 24.706 │"), "24.298"),
    "bench README prose": ("bench", ("README.md",), _edit_text("1,000 classes", "100 classes"), "1,000 classes"),
}


@pytest.mark.parametrize("alteration", ALTERATIONS)
def test_an_altered_figure_is_reported(alteration: str, tmp_path: Path):
    name, files, edit, expected = ALTERATIONS[alteration]
    report = _copy(name, tmp_path)
    assert CHECKS[name](report) == []
    for file in files:
        (report / file).write_text(edit((report / file).read_text()))
    problems = CHECKS[name](report)
    assert any(expected in problem for problem in problems), problems


def test_markdown_tables_parse_rows_by_header():
    text = "intro\n\n| a | b |\n|---|---:|\n| 1 | x y |\n| 2 | |\n\nafter\n| not | a table |\n"
    assert markdown_tables(text) == [[{"a": "1", "b": "x y"}, {"a": "2", "b": ""}]]


def test_a_sweep_summary_table_that_disagrees_with_its_json_is_reported(tmp_path: Path):
    report = _copy("resnet18-fashion-mnist", tmp_path)
    rows = read_json(report / "results.json")["rows"]
    rows[3]["deployable_bytes"] += 20_000
    (report / "results.json").write_text(json.dumps({"rows": rows}))
    problems = check_sweep_summary(report)
    assert len(problems) == 1 and "run 4" in problems[0] and "deployable MB" in problems[0]


def test_an_openaimer_table_that_disagrees_with_its_score_files_is_reported(tmp_path: Path):
    report = _copy("resnet18-fashion-mnist", tmp_path)
    assert check_sweep_summary(report) == []
    score_file = sorted((report / "openaimer").glob("*.json"))[0]
    score = json.loads(score_file.read_text())
    score["total_score"] += 1.0
    score_file.write_text(json.dumps(score))
    problems = check_sweep_summary(report)
    assert problems and all("OpenAImer section" in problem for problem in problems), problems
    shutil.rmtree(report / "openaimer")
    assert check_sweep_summary(report) == ["README.md: an OpenAImer table, but no score files under openaimer/"]
