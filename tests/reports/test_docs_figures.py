"""README.md and docs/*.md say what the committed reports say.

Every measured figure in the prose of README.md and docs/*.md (accuracies, sizes, latencies, speed-ups, seconds,
counts of runs and cells, differences ± SE) is a `Claim` of tests/reports/test_committed_reports.py: its wording is
computed from a committed file under reports/ with the rounding the page uses, and the page must contain that
wording, whitespace aside. `PAGES` maps each page to (report directory, claims) pairs; a page must also name each
report directory it takes figures from (`reports/NAME`), so a reader can find the file. A handful of defaults the
pages quote are checked against the code constants instead (report directory None).

Not checked here: README.md's demo block (tests/test_docs.py compares it with reports/demo/output.txt), the count of
bad-input cases (tests/test_bad_input.py), and figures of outside sources (papers, the OpenAImer leaderboard),
which the pages attribute.

When a page disagrees with its report, fix the page to what the committed JSON says, or, if the JSON changed
because a report was regenerated, update the page's prose and check that its conclusions still hold.

The claims' wordings are built in docs_claims_*.py, one module per group of reports (docs_claims_common.py holds
the shared formatting helpers); this module holds `PAGES`, the check and the tests.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest
from docs_claims_common import WORDS, _one, _pct, files
from docs_claims_measurement import (
    BENCH_FILE,
    _medians,
)
from docs_claims_other import (
    _anchor_lr,
    _anchor_recipe,
    _baseline_batch,
    _digits_epochs,
    _distill_defaults,
    _finetune_lr,
    _finetune_settings,
    _one_cycle_steps,
    _precision_probe,
    _recalibration_batches,
    _recipes,
    _timing_plan,
    _wall_clock,
)
from docs_claims_recovery import (
    _baselines,
    _cells,
    _targets_met,
)
from docs_claims_second_order import (
    _accuracy_table,
    _all_kept,
    _costs,
    _curvature_pays,
    _dn_bn_hurts,
    _dn_cpu_check,
    _dn_fragile_so,
    _dn_layer_sensitive,
    _dn_so_claims,
    _first_fits,
    _fits,
    _gradual,
    _gradual_setup,
    _layer_sensitive,
    _learned_factors,
    _probe_decisions,
    _recalibration_at_90,
    _so_readme,
    _targets_not_met,
    _woodfisher_minutes,
    _woodfisher_vs_fishleg,
)
from docs_claims_sweeps import (
    STRATEGIES_REPORT,
    _baseline,
    _difference,
    _epochs_of,
    _rows,
    _script_minutes,
    _strategies_baseline,
)
from test_committed_reports import REPO, REPORTS, Claim, check_claims


def _no_files(name: str) -> Any:
    raise FileNotFoundError(f"claims checked against the code read no report file (asked for {name})")


# ---------------------------------------------------------------------------------------------------------------
# the pages


PAGES: dict[str, list[tuple[str | None, tuple[Claim, ...]]]] = {
    "README.md": [
        ("make-test", (Claim("make test's wall time", "fresh-clone.txt (/usr/bin/time -v)", _wall_clock),)),
        (STRATEGIES_REPORT, (
            Claim("layer-sensitive minus l1 after one epoch", "results.json (differences)", _difference),
        )),
        ("second-order-fashion-mnist", (
            Claim("FishLeg and l1 at 98 %", "results.json (aggregates)", _so_readme),)),
    ],
    "docs/index.md": [
        (None, (Claim("digits baseline epochs", "compressor.models.baselines.DEFAULT_EPOCHS", _digits_epochs),)),
    ],
    "docs/strategies.md": [
        ("benchmarks", (
            Claim("int8 vs fp32 at 32 px in make bench", BENCH_FILE,
                  lambda load: "int8 was slower than fp32 under ONNX Runtime, "
                               f"{_medians(load)['int8', 32, 'onnxruntime', 1]:.2f} vs "
                               f"{_medians(load)['dense', 32, 'onnxruntime', 1]:.2f} ms"),
        )),
        (STRATEGIES_REPORT, (
            Claim("the baseline", "results.json (rows: baseline_*, samples, input_size)", _strategies_baseline),
            Claim("the script's run time", "script.log (/usr/bin/time -v)", _script_minutes),
            Claim("fine-tuning LR", "runs/*-ft1.json (recovery.finetune.lr)", _finetune_settings),
        )),
    ],
    "docs/recovery.md": [
        (None, (
            Claim("fine-tuning LR defaults", "compressor.models.baselines, compressor.api", _finetune_lr),
            Claim("distillation defaults", "compressor.recovery.config.RecoveryConfig", _distill_defaults),
            Claim("the new default peak LR for anchor baselines", "compressor.models.baselines", _anchor_lr),
            Claim("BatchNorm recalibration batches", "compressor.recovery.batchnorm.recalibrate_batchnorm",
                  _recalibration_batches),
            Claim("shortest one-cycle fine-tune", "compressor.models.training (MIN_WARMUP_STEPS, ONE_CYCLE_PCT_START)",
                  _one_cycle_steps),
        )),
    ],
    "docs/second-order.md": [
        ("second-order-fashion-mnist", (
            Claim("dense baseline", "dense.json (accuracy, input_size)",
                  lambda load: f"the cached ResNet18 baseline, {_pct(load('dense.json')['accuracy'])} % test top-1 at "
                               f"{load('dense.json')['input_size']} px"),
            Claim("seed count", "results.json (seeds)",
                  lambda load: f"Global one-shot, no fine-tuning, {len(load('results.json')['seeds'])} calibration "
                               "seeds"),
            Claim("table with BN recalibration", "results.json (aggregates)", _accuracy_table("yes")),
            Claim("BN recalibration at 90 %", "results.json (aggregates, cells)", _recalibration_at_90),
            Claim("gains over recalibrated l1", "results.json (cells)", _curvature_pays),
            Claim("FishLeg's fits", "cells/fishleg-*.json (fishleg.fits)", _fits),
            Claim("fits that kept every layer", "cells/fishleg-*.json (fishleg.fits)", _all_kept),
            Claim("first fits", "cells/fishleg-*.json (fishleg.fits)", _first_fits),
            Claim("Gaussian probes", "fishleg-vs-obd-gaussian-probes.json (fit)",
                  lambda load: "design) {layers_accepted} of {layers} layers learned".format(
                      **load("fishleg-vs-obd-gaussian-probes.json")["fit"])),
            Claim("what the learned factors add", "results.json (cells)", _learned_factors),
            Claim("one pruning step against OBD", "fishleg-vs-obd.json (decisions)", _probe_decisions),
            Claim("targets not met", "results.json (cells)", _targets_not_met),
            Claim("WoodFisher vs FishLeg at 98 %", "cells/woodfisher-0.98-s0.json, cells/fishleg-0.98-s0.json",
                  _woodfisher_vs_fishleg),
            Claim("layer-sensitive", "results.json (cells, aggregates)", _layer_sensitive),
            Claim("cost per cell", "cells/*.json (strategy_seconds, peak_rss_gib, threads)", _costs),
            Claim("gradual setup", "gradual/l1-0.95.json (recovery.rounds, steps)", _gradual_setup),
            Claim("gradual results", "gradual/*.json (compressed.accuracy)", _gradual),
            Claim("WoodFisher's missing seeds", "results.json (missing, cells)", _woodfisher_minutes),
        )),
        ("second-order-densenet201-supcon", (
            Claim("the GPU", "environment.json (cuda)",
                  lambda load: f"on a lent {load('environment.json')['cuda'].split()[1]}:"),
            Claim("dense accuracy", "dense.json (accuracy)",
                  lambda load: f"Dense {_pct(load('dense.json')['accuracy'])} %; test top-1 (%),\nwithout / with"),
            *_dn_so_claims(),
            Claim("l1 and WoodFisher at 50 %", "results.json (aggregates)", _dn_fragile_so),
            Claim("what BN recalibration does to second order", "results.json (aggregates)", _dn_bn_hurts),
            Claim("layer-sensitive vs l1", "results.json (cells)", _dn_layer_sensitive),
            Claim("FishLeg's layer count", "dense.json (prunable_layers)",
                  lambda load: f"({len(load('dense.json')['prunable_layers'])} layers' factors per auxiliary step;"),
            Claim("CPU check", "cpu-check/obd-0.5-s0.json, cells/obd-0.5-s0.json", _dn_cpu_check),
        )),
    ],
    "docs/sweeps-and-reports.md": [
        ("second-order-densenet201-supcon", (
            Claim("DenseNet201's prunable layers", "dense.json (prunable_layers)",
                  lambda load: f"readable at DenseNet201's {len(load('dense.json')['prunable_layers'])} prunable "
                               "layers"),)),
    ],
    "docs/harness.md": [
        (None, (Claim("the timing plan", "compressor.measure.latency.TimingPlan", _timing_plan),)),
    ],
    "docs/openaimer.md": [
    ],
    "docs/supcon.md": [
        (STRATEGIES_REPORT, (
            Claim("ResNet18 with cross-entropy", "results.json (rows)",
                  lambda load: f"ResNet18 with cross-entropy reaches {100 * _baseline(load):.1f} % after "
                               f"{_epochs_of(_rows(load)[0]['baseline_checkpoint'])} epochs"),)),
        ("recovery-fashion-mnist", (
            Claim("anchor recipe mean", "results.json (baselines)",
                  lambda load: "`anchor` recipe {:.2f} %, the mean\nof {} seeds, after {} at {} px".format(
                      statistics.fmean(100 * b["accuracy"] for b in _baselines(load)), len(_baselines(load)),
                      _baselines(load)[0]["epochs"], _cells(load)[0]["input_size"])),)),
    ],
    "docs/datasets-and-models.md": [
        (None, (
            Claim("standard recipe", "compressor.models.baselines (DEFAULT_EPOCHS, default_epochs, RECIPES)", _recipes),
            Claim("anchor recipe", "compressor.models.baselines.RECIPES", _anchor_recipe),
            Claim("batch of a short baseline", "compressor.models.baselines.baseline_batch_size", _baseline_batch),
            Claim("precision probe thresholds", "compressor.models.training (PROBE_MIN_GAIN, PROBE_MIN_STEPS)",
                  _precision_probe),
        )),
        ("recovery-fashion-mnist", (
            Claim("anchor baselines' probe", "results.json (baselines[].probe)",
                  lambda load: "fp32 {fp32:.2f} s vs bf16 {bf16:.2f} s per step for seed 0, {p} chosen for all "
                               "{n} seeds".format(**_one([b for b in _baselines(load) if b["seed"] == 0],
                                                         "seed-0 baseline")["probe"],
                                                  p=_one(sorted({b["precision"] for b in _baselines(load)}), "p"),
                                                  n=WORDS[len(_baselines(load))])),)),
        ("second-order-fashion-mnist", (
            Claim("fine-tuning probe", "gradual/l1-0.95.json (recovery.rounds[0].finetune)",
                  lambda load: "fp32 {fp32:.2f} s vs bf16 {bf16:.2f} s per step, {p} chosen".format(
                      **load("gradual/l1-0.95.json")["recovery"]["rounds"][0]["finetune"]["probe"],
                      p=load("gradual/l1-0.95.json")["recovery"]["rounds"][0]["finetune"]["precision"])),)),
    ],
    "docs/status.md": [
        ("recovery-fashion-mnist", (
            Claim("issue 17 targets met", "README.md (Targets of issue 17)", _targets_met),)),
        ("second-order-fashion-mnist", (
            Claim("calibration seeds", "results.json (seeds)",
                  lambda load: f"measured over {len(load('results.json')['seeds'])} calibration seeds"),)),
    ],
    "docs/commands.md": [],  # defaults and the bad-input count (tests/test_bad_input.py checks it)
    "docs/reliability.md": [],  # the bad-input count, checked by tests/test_bad_input.py
    "docs/plugins.md": [],
    "docs/python-api.md": [],  # the example's output is not quoted
}


# ---------------------------------------------------------------------------------------------------------------
# the check and the tests


def page_problems(page: str, text: str, reports: Path = REPORTS) -> list[str]:
    """Every claim of `page` that `text` does not make, and every report directory it takes figures from but does
    not name."""
    problems = []
    for report, claims in PAGES[page]:
        if report is not None and f"reports/{report}" not in text:
            problems.append(f"{page}: takes figures from reports/{report}/ but does not name it")
        load = _no_files if report is None else files(reports / report)
        source = "the code" if report is None else f"reports/{report}"
        problems += check_claims(text, claims, load, f"{page} ({source})")
    return problems


def _pages() -> list[str]:
    return ["README.md", *(f"docs/{path.name}" for path in sorted((REPO / "docs").glob("*.md")))]


def test_every_page_is_covered():
    """A new page must be added to PAGES (with no claims if it states no measured figure)."""
    assert sorted(PAGES) == sorted(_pages())


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_figures_agree_with_committed_reports(page: str):
    problems = page_problems(page, (REPO / page).read_text())
    assert not problems, f"{len(problems)} figure(s) of {page} disagree with the committed reports:\n" + \
        "\n".join(problems)


def test_the_pages_check_many_figures():
    """Guards the table itself: a claim list that was emptied by mistake would pass every page. (The count falls as
    pages include report fragments instead of quoting figures; lower it with them, never to hide a loss.)"""
    assert sum(len(claims) for groups in PAGES.values() for _, claims in groups) >= 55


# (page, text in the page, the same text with one figure changed, text the problems must contain)
PAGE_EDITS = {
    "second-order cost": ("docs/second-order.md", "FishLeg 343-608 s", "FishLeg 420-610 s", "cost per cell"),
    "the timing plan": ("docs/harness.md", "individually until ≥", "individually until >", "the timing plan"),
}


@pytest.mark.parametrize("edit", PAGE_EDITS)
def test_a_changed_figure_in_a_page_is_reported(edit: str):
    page, old, new, expected = PAGE_EDITS[edit]
    text = (REPO / page).read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {page}"
    assert page_problems(page, text) == []
    problems = page_problems(page, text.replace(old, new))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_page_that_stops_naming_its_report_is_reported():
    text = (REPO / "docs" / "supcon.md").read_text().replace("reports/recovery-fashion-mnist/", "reports/elsewhere/")
    problems = page_problems("docs/supcon.md", text)
    assert any("does not name" in p and "reports/recovery-fashion-mnist/" in p for p in problems), problems


def _set_cell_accuracy(data: dict[str, Any]) -> None:
    cell = next(c for c in data["cells"] if c["mode"] == "distilled" and c["pipeline"] == "channels"
                and c["amount"] == 0.5)
    cell["accuracy"] = 0.9309


def _set_int8_median(data: dict[str, Any]) -> None:
    name = "test_forward_latency[resnet18-32px-int8-onnxruntime-bs1]"
    bench = next(b for b in data["benchmarks"] if b["name"] == name)
    bench["stats"]["median"] = 0.00061


# (page, report directory, file, change, text the problems must contain)
JSON_EDITS = {
    "make bench median": ("docs/strategies.md", "benchmarks", BENCH_FILE, _set_int8_median, "0.61 vs 0.44 ms"),
}


@pytest.mark.parametrize("edit", JSON_EDITS)
def test_a_changed_committed_json_is_reported(edit: str, tmp_path: Path):
    page, report, name, change, expected = JSON_EDITS[edit]
    copy = Path(shutil.copytree(REPORTS / report, tmp_path / report, ignore=shutil.ignore_patterns("*.pt", "*.png")))
    for other, _ in PAGES[page]:
        if other is not None and other != report:
            shutil.copytree(REPORTS / other, tmp_path / other, ignore=shutil.ignore_patterns("*.pt", "*.png"))
    text = (REPO / page).read_text()
    assert page_problems(page, text, tmp_path) == []
    data = json.loads((copy / name).read_text())
    change(data)
    (copy / name).write_text(json.dumps(data))
    problems = page_problems(page, text, tmp_path)
    assert problems and all(expected in p for p in problems), problems
