"""Claims from reports/second-order-fashion-mnist/ and reports/second-order-densenet201-supcon/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import load_script
from docs_claims_common import WORDS, _one, _pct, _signed
from test_committed_reports import Claim, Load


def _aggregate(load: Load, label: str, amount: float, bn: str) -> dict[str, Any]:
    return _one([r for r in load("results.json")["aggregates"] if (r["label"], r["amount"], r["bn"]) ==
                 (label, amount, bn)], f"aggregate of {label} at {amount}, BN {bn}")


def _so_cells(load: Load, label: str | None = None) -> list[dict[str, Any]]:
    return [c for c in load("results.json")["cells"] if label is None or c["label"] == label]


def _paired(load: Load, label: str, base: str, amount: float, bn: str = "yes") -> dict[str, Any]:
    return load_script("second_order_aggregate").paired_difference(_so_cells(load), label, base, amount, bn)


def _pm(d: dict[str, Any]) -> str:
    """A paired difference as the pages write it: +3.49 ± 0.36 (no ± with one seed)."""
    return f"{d['mean_points']:+.2f}" + (f" ± {d['std_points']:.2f}" if d["std_points"] is not None else "")


def _accuracy_table(bn: str) -> Callable[[Load], str]:
    def wording(load: Load) -> str:
        results = load("results.json")
        return "\n".join(load_script("second_order_aggregate").accuracy_table(
            results["aggregates"], list(results["methods"]), results["amounts"], bn, len(results["seeds"])))
    return wording


def _so_readme(load: Load) -> str:
    fishleg, l1 = _aggregate(load, "fishleg", 0.98, "yes"), _aggregate(load, "l1", 0.98, "yes")
    n = _one(sorted({fishleg["n"], l1["n"]}), "seed count")
    return (f"At 98 % one-shot sparsity with BatchNorm recalibration, FishLeg keeps "
            f"{fishleg['mean_pct']:.2f} % where `l1` keeps {l1['mean_pct']:.2f} % ({n} seeds")


def _recalibration_at_90(load: Load) -> str:
    l1_no, l1_yes = _aggregate(load, "l1", 0.9, "no"), _aggregate(load, "l1", 0.9, "yes")
    others = [m for m in load("results.json")["methods"] if m != "l1"]
    diffs = [_paired(load, m, "l1", 0.9) for m in others]
    noise = "every method is within noise of it" if all(d["verdict"] == "no difference" for d in diffs) else \
        "not every method is within noise of it"
    second = [_aggregate(load, m, 0.9, "no")["mean_pct"] for m in ("obd", "obd-gn", "woodfisher", "fishleg")]
    return (f"`l1` keeps {l1_no['mean_pct']:.2f} % as pruned and {l1_yes['mean_pct']:.2f} % recalibrated, and with "
            f"recalibration {noise} ({min(d['mean_points'] for d in diffs):+.2f} to "
            f"{max(d['mean_points'] for d in diffs):+.2f} points). Without recalibration the second-order methods keep "
            f"{min(second):.1f}-{max(second):.1f} %")


def _curvature_pays(load: Load) -> str:
    def pair(label: str) -> tuple[str, str]:
        return _pm(_paired(load, label, "l1", 0.95)), _pm(_paired(load, label, "l1", 0.98))
    obd, fishleg, woodfisher = pair("obd"), pair("fishleg"), pair("woodfisher")
    seeds = sorted({c["seed"] for c in _so_cells(load, "woodfisher")})
    return (f"OBD gains {obd[0]} points at 95 % and {obd[1]} at 98 %, FishLeg {fishleg[0]} and {fishleg[1]}, "
            f"WoodFisher (seed {', '.join(map(str, seeds))} only) {woodfisher[0]} and {woodfisher[1]}")


def _fits(load: Load) -> str:
    cells = _so_cells(load, "fishleg")
    fits = [f for c in cells for f in c["fishleg"]["fits"]]
    per_cell = _one(sorted({len(c["fishleg"]["fits"]) for c in cells}), "fits per cell")
    steps = [f["steps"] for f in cells[0]["fishleg"]["fits"]]
    layers = _one(sorted({f["layers"] for f in fits}), "layer count")
    kept = sum(f["layers_accepted"] for f in fits)
    total = sum(f["layers"] for f in fits)
    refit = _one(sorted(set(steps[1:])), "refit length")
    return (f"Each of its {len(cells)} cells fits Q {WORDS.get(per_cell, per_cell)} times (one {steps[0]}-step fit, "
            f"then {WORDS.get(len(steps) - 1, len(steps) - 1)} {refit}-step refits, one per recomputation): "
            f"{len(fits)} fits of {layers} layers, {total} layer fits. The fitted Q beat its "
            f"diagonal start on the held-out probes, and was kept, in {kept} of them ({100 * kept / total:.0f} %); the "
            f"other {total - kept} were undone")


def _all_kept(load: Load) -> str:
    cells = _so_cells(load, "fishleg")
    fits = [f for c in cells for f in c["fishleg"]["fits"]]
    full = sum(f["layers_accepted"] == f["layers"] for f in fits)
    first_full = sum(c["fishleg"]["fits"][0]["layers_accepted"] == c["fishleg"]["fits"][0]["layers"] for c in cells)
    return (f"only {full} of the {len(fits)} fits kept all {fits[0]['layers']} layers, and "
            + ("no cell's first fit did" if not first_full else f"{first_full} first fits did"))


def _first_fits(load: Load) -> str:
    cells = _so_cells(load, "fishleg")
    by_seed: dict[int, set[str]] = {}
    for c in cells:
        first = c["fishleg"]["fits"][0]
        by_seed.setdefault(c["seed"], set()).add(f"{first['layers_accepted']} of {first['layers']}")
    kept = {seed: _one(sorted(v), f"first fit of seed {seed}") for seed, v in sorted(by_seed.items())}
    groups: dict[str, list[int]] = {}
    for seed, text in kept.items():
        groups.setdefault(text, []).append(seed)
    parts = [f"{text} layers with seeds {' and '.join(map(str, seeds))}" if len(seeds) > 1
             else f"{text} with seed {seeds[0]}" for text, seeds in sorted(groups.items(), key=lambda g: -len(g[1]))]
    met = sum(c["fishleg"]["fits"][0]["layers_accepted"] / c["fishleg"]["fits"][0]["layers"] >= 0.9 for c in cells)
    worst = min(c["fishleg"]["accepted_fraction_first_fit"] for c in cells)
    return (f"First fits kept {' and '.join(parts)}, so the target \"≥ 90 % of layers\" is met in {met} of "
            f"{len(cells)} cells, not all (worst first fit {100 * worst:.0f} %")


def _learned_factors(load: Load) -> str:
    at98, classic = _paired(load, "fishleg", "obd-gn", 0.98), _paired(load, "fishleg", "obd", 0.98)
    at95, at90 = _paired(load, "fishleg", "obd-gn", 0.95), _paired(load, "fishleg", "obd-gn", 0.9)
    beyond = "beyond noise" if at98["verdict"] == "better" else at98["verdict"]
    within = "within noise" if at95["verdict"] == at90["verdict"] == "no difference" else "not both within noise"
    return (f"{_pm(at98)} points at 98 % ({beyond}; {_pm(classic)} against the classic `obd`), but {_pm(at95)} at "
            f"95 % and {_signed(at90['mean_points'])} at 90 %, {within}")


def _probe_decisions(load: Load) -> str:
    probe = load("fishleg-vs-obd.json")
    d = probe["decisions"]
    return (f"After one pruning step at {100 * probe['amount']:g} % only {100 * d['different_fraction']:.2f} % of the "
            f"pruned weights differ from OBD's choice\n(`reports/second-order-fashion-mnist/fishleg-vs-obd.json`: "
            f"{d['different']:,} of {d['pruned']:,})")


def _targets_not_met(load: Load) -> str:
    targets = load("results.json")["targets"]
    vs_obd_status = _one([t["status"] for t in targets if t["target"].startswith("(1)")
                          and t["target"].endswith("[obd]")], "target (1) against obd")
    gain_status = _one([t["status"] for t in targets if t["target"].startswith("(2)")], "target (2)")
    if not vs_obd_status == gain_status == "not met":
        return f"targets (1) and (2) are {vs_obd_status} and {gain_status}"
    vs_obd, vs_l1 = _paired(load, "fishleg", "obd", 0.95), _paired(load, "fishleg", "l1", 0.95)
    return (f"**Targets not met**: FishLeg ≥ OBD beyond noise at 95 % ({_pm(vs_obd)} against `obd`) and\n≥ "
            f"recalibrated `l1` + 5 points at 95 % ({vs_l1['mean_points']:+.2f})")


def _woodfisher_vs_fishleg(load: Load) -> str:
    def cell(label: str) -> dict[str, Any]:
        return _one([c for c in _so_cells(load, label) if c["amount"] == 0.98 and c["seed"] == 0], f"{label} s0")
    gap = 100 * (cell("woodfisher")["accuracy"]["yes"] - cell("fishleg")["accuracy"]["yes"])
    return f"At 98 % WoodFisher's single seed is {gap:.2f} points above FishLeg's\nseed 0"


def _allocation(load: Load, label: str, amount: float) -> str:
    return _one(sorted({c["allocation"]["chosen"] for c in _so_cells(load, label) if c["amount"] == amount}),
                f"allocation of {label} at {amount}")


def _layer_sensitive(load: Load) -> str:
    with_bn = [_paired(load, "layer-sensitive", "l1", a)["mean_points"] for a in (0.9, 0.95, 0.98)]
    picks = [_allocation(load, "layer-sensitive", a) for a in (0.9, 0.95, 0.98)]
    if picks != ["lamp", "lamp", "global"]:
        return f"layer-sensitive chose {picks}"
    no_bn = _paired(load, "layer-sensitive", "l1", 0.9, "no")
    ls95, l195 = _aggregate(load, "layer-sensitive", 0.95, "no"), _aggregate(load, "l1", 0.95, "no")
    return (f"{with_bn[0]:+.2f}, {with_bn[1]:+.2f} and {abs(with_bn[2]):.2f} points at 90/95/98 % (it chose LAMP\nat "
            f"90 and 95 %, global magnitude, i.e. `l1`'s masks, at 98 %). As pruned, without recalibration, it is "
            f"{no_bn['mean_points']:+.2f} at\n90 % but {ls95['mean_pct']:.2f} vs {l195['mean_pct']:.2f} % at 95 %")


def _costs(load: Load) -> str:
    def span(label: str, memory: bool = True) -> str:
        cells = _so_cells(load, label)
        seconds = sorted(c["strategy_seconds"] for c in cells)
        text = f"{seconds[0]:.0f}-{seconds[-1]:.0f} s"
        return text + (f" and {max(c['peak_rss_gib'] for c in cells):.1f} GiB" if memory else "")
    threads = _one(sorted({c["threads"] for c in _so_cells(load)}), "threads per cell")
    return (f"Cost per cell on {WORDS.get(threads, threads)} thread (`threads` in each cell; two cells shared the 2 "
            f"cores, which the cells do not record): `l1` {span('l1', False)}, `layer-sensitive` "
            f"{span('layer-sensitive', False)}, OBD {span('obd')}, WoodFisher {span('woodfisher')}, FishLeg "
            f"{span('fishleg')} peak")


def _woodfisher_minutes(load: Load) -> str:
    seconds = sorted(c["strategy_seconds"] for c in _so_cells(load, "woodfisher"))
    missing = sorted({int(m.rsplit("-s", 1)[1]) for m in load("results.json")["missing"] if m.startswith("woodfisher")})
    return (f"WoodFisher at seeds {' and '.join(map(str, missing))} (its cells cost\n{seconds[0] / 60:.0f}-"
            f"{seconds[-1] / 60:.0f} min each; they are listed as missing)")


GRADUAL = ("fishleg-0.95.json", "l1-0.95.json", "obd-0.95.json")


def _gradual(load: Load) -> str:
    acc = {name.split("-")[0]: 100 * load(f"gradual/{name}")["compressed"]["accuracy"] for name in GRADUAL}
    lead = min(acc["obd"], acc["fishleg"]) - acc["l1"]
    equal = "FishLeg equals OBD" if abs(acc["fishleg"] - acc["obd"]) < 0.1 else "FishLeg differs from OBD"
    return (f"`l1` {acc['l1']:.2f} %, OBD {acc['obd']:.2f} %, FishLeg {acc['fishleg']:.2f} % (its second round "
            f"starts\nfrom the factors of the first); the second-order lead over `l1` ({lead:.1f} points) is at the "
            f"edge of noise and {equal}")


def _gradual_setup(load: Load) -> str:
    run = load("gradual/l1-0.95.json")
    rounds = run["recovery"]["rounds"]
    epochs = _one(sorted({r["finetune_epochs"] for r in rounds}), "epochs per round")
    per_round = "a quarter epoch" if epochs == 0.25 else f"{epochs:g} epochs"
    return f"{len(rounds)} rounds to {100 * run['steps'][-1]['params']['amount']:g} %, {per_round} of\nfine-tuning"


def _dn_so_table(load: Load) -> list[str]:
    results = load("results.json")
    lines = ["| method | " + " | ".join(f"{100 * a:g} %" for a in results["amounts"]) + " |"]
    for label in results["methods"]:
        if not _so_cells(load, label):
            continue
        lines.append(f"| {label} | " + " | ".join(
            f"{_aggregate(load, label, a, 'no')['mean_pct']:.2f} / {_aggregate(load, label, a, 'yes')['mean_pct']:.2f}"
            for a in results["amounts"]) + " |")
    return lines


def _dn_so_claims() -> tuple[Claim, ...]:
    labels = ("l1", "layer-sensitive", "obd", "obd-gn", "woodfisher")
    return tuple(Claim(f"DenseNet201 table row {label}", "results.json (aggregates)",
                       lambda load, i=i: _dn_so_table(load)[i]) for i, label in enumerate(("header",) + labels))


def _dn_fragile_so(load: Load) -> str:
    no, yes = _aggregate(load, "l1", 0.5, "no"), _aggregate(load, "l1", 0.5, "yes")
    wf = _aggregate(load, "woodfisher", 0.5, "no")
    return (f"one-shot `l1` at 50 % keeps {no['mean_pct']:.0f} % ({yes['mean_pct']:.0f} % recalibrated). Second\n"
            f"order is far ahead: WoodFisher without recalibration keeps {wf['mean_pct']:.2f} % at 50 %, "
            f"{wf['mean_pct'] - yes['mean_pct']:.1f} points above recalibrated `l1`")


def _dn_bn_hurts(load: Load) -> str:
    def change(label: str) -> float:
        return _aggregate(load, label, 0.5, "yes")["mean_pct"] - _aggregate(load, label, 0.5, "no")["mean_pct"]
    return f"(OBD {_signed(change('obd'), 1)}, WoodFisher {_signed(change('woodfisher'), 1)} points at\n50 %)"


def _dn_layer_sensitive(load: Load) -> str:
    at50 = _paired(load, "layer-sensitive", "l1", 0.5)
    at90 = _paired(load, "layer-sensitive", "l1", 0.9)
    picks = _allocation(load, "layer-sensitive", 0.5), _allocation(load, "layer-sensitive", 0.9)
    if picks != ("global", "blend"):
        return f"layer-sensitive chose {picks}"
    equal = "equal at 50 %" if at50["mean_points"] == 0 else f"{_pm(at50)} at 50 %"
    return (f"{equal} (it picks\nglobal magnitude), {_pm(at90)} points at 90 % with recalibration (it picks the "
            "LAMP/scan blend)")


def _dn_cpu_check(load: Load) -> str:
    cpu, gpu = load("cpu-check/obd-0.5-s0.json"), load("cells/obd-0.5-s0.json")
    return (f"on the CPU with {cpu['threads']} threads one OBD cell alone takes {cpu['strategy_seconds']:.0f} s. The "
            f"device numerics differ\nin the last bits: OBD's seed-0 cell at 50 % gives {_pct(cpu['accuracy']['yes'])} "
            f"% recalibrated on the CPU and {_pct(gpu['accuracy']['yes'])} % on the GPU")
