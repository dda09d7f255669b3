"""Docs include report fragments (MkDocs snippets; README.md embeds them between markers) instead of copying
figures: every committed fragment re-renders equal from its report's results.json and score files (or, for reports a
script writes, from that script's `render_fragments`), every include and embed names one, an embed holds the
fragment's current text, and `compressor report` writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import load_script

from compressor.report.fragments import (
    ACCURACY,
    DIFFERENCES,
    FRAGMENT_NAMES,
    RUNS_TABLE,
    accuracy_by_amount,
    embed_fragments,
    embedded_fragments,
    headline,
    openaimer_summary,
    render_fragments,
    render_report_fragments,
)
from compressor.report.schema import RESULTS_SCHEMA

REPO = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^--8<-- "([^"]+)"\s*$', re.M)
# reports written by a script rather than `compressor report`: report directory -> the script that renders them
SCRIPT_REPORTS = {"supcon": "supcon_report", "deploy-224px": "deploy_224px_fragments",
                  "recovery-fashion-mnist": "recovery_fragments", "bench": "measurement_fragments",
                  "benchmarks": "measurement_fragments", "latency-processes": "measurement_fragments",
                  "demo": "demo_fragments", "digits-examples": "digits_examples_report"}
SCRIPT_FRAGMENTS = {name: load_script(script).render_fragments(REPO / "reports" / name)
                    for name, script in SCRIPT_REPORTS.items()}
FRAGMENTS = sorted([*(path for name in FRAGMENT_NAMES for path in REPO.glob(f"reports/*/{name}")),
                    *(REPO / "reports" / report / name for report, texts in SCRIPT_FRAGMENTS.items()
                      for name in texts)])
REPORTS = sorted(path.parent for path in REPO.glob("reports/*/results.json")
                 if json.loads(path.read_text()).get("schema") == RESULTS_SCHEMA)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _includes() -> list[tuple[str, str]]:
    return [(page.name, target) for page in PAGES for target in INCLUDE.findall(page.read_text())]


def _embeds() -> list[tuple[str, str, str]]:
    return [(page.name, target, body) for page in PAGES for target, body in embedded_fragments(page.read_text())]


def test_there_are_fragments_and_the_docs_include_and_embed_them() -> None:
    assert FRAGMENTS and _includes() and _embeds()


@pytest.mark.parametrize("report", REPORTS, ids=lambda path: path.name)
def test_a_report_keeps_every_fragment_its_results_give_and_they_re_render_equal(report: Path) -> None:
    rendered = render_report_fragments(report)
    committed = {path.name for path in FRAGMENTS if path.parent == report}
    rerun = f"python scripts/report_fragments.py reports/{report.name}"
    assert committed == set(rendered), f"reports/{report.name} should hold {sorted(rendered)}: run `{rerun}`"
    for name, text in rendered.items():
        assert (report / name).read_text() == text, \
            f"reports/{report.name}/{name} is stale: rerun `{rerun}`"
    readme = (report / "README.md").read_text()
    for name in (RUNS_TABLE, DIFFERENCES):
        assert rendered.get(name, "") in readme, f"the README of reports/{report.name} shows the same {name}"


@pytest.mark.parametrize("report", SCRIPT_REPORTS)
def test_a_script_written_report_s_fragments_re_render_equal(report: str) -> None:
    rerun = f"python scripts/{SCRIPT_REPORTS[report]}.py reports/{report}" + (" --fragments" if report == "supcon"
                                                                                else "")
    for name, text in SCRIPT_FRAGMENTS[report].items():
        path = REPO / "reports" / report / name
        assert path.is_file() and path.read_text() == text, f"reports/{report}/{name} is stale: rerun `{rerun}`"


def test_no_fragment_holds_an_unformatted_placeholder() -> None:
    # a string piece that lost its f prefix leaves `{name(...)}` or `{name[...]}` in the text
    stray = [(path, m[0]) for path in FRAGMENTS for m in re.finditer(r"\{[A-Za-z_][\w.]*[\[(:][^}]*\}",
                                                                       path.read_text())]
    assert not stray, stray


def test_a_changed_script_report_changes_its_fragments(tmp_path: Path) -> None:
    for name in ("results.json", "pretrain.log"):
        (tmp_path / name).write_text((REPO / "reports" / "supcon" / name).read_text())
    results = json.loads((tmp_path / "results.json").read_text())
    results["rows"][0]["accuracy"] += 0.01
    (tmp_path / "results.json").write_text(json.dumps(results))
    changed = load_script("supcon_report").render_fragments(tmp_path)
    assert changed["table.md"] != SCRIPT_FRAGMENTS["supcon"]["table.md"]
    assert changed["headline.md"] != SCRIPT_FRAGMENTS["supcon"]["headline.md"]


@pytest.mark.parametrize("page, target", _includes())
def test_every_include_names_a_committed_fragment(page: str, target: str) -> None:
    assert (REPO / target) in FRAGMENTS, f"{page} includes {target}, which is not a committed report fragment"


@pytest.mark.parametrize("page, target, body", _embeds())
def test_every_embed_holds_the_current_text_of_a_committed_fragment(page: str, target: str, body: str) -> None:
    assert (REPO / target) in FRAGMENTS, f"{page} embeds {target}, which is not a committed report fragment"
    assert body == (REPO / target).read_text(), \
        f"{page}: the embedded {target} is stale: run `python scripts/report_fragments.py --embed {page}`"


def test_a_changed_row_changes_the_fragments() -> None:
    report = REPORTS[0]
    results = json.loads((report / "results.json").read_text())
    results["rows"][0]["accuracy"] += 0.01
    changed = render_fragments(results)
    assert changed[RUNS_TABLE] != (report / RUNS_TABLE).read_text()
    assert changed[ACCURACY] != (report / ACCURACY).read_text()


def test_embedding_replaces_a_blocks_body_with_the_fragment_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "f.md").write_text("new text\n")
    page = "before\n<!-- fragment: f.md -->\nold text\n<!-- /fragment -->\nafter\n"
    embedded = embed_fragments(page, tmp_path)
    assert embedded == "before\n<!-- fragment: f.md -->\nnew text\n<!-- /fragment -->\nafter\n"
    assert embedded_fragments(embedded) == [("f.md", "new text\n")]


def _row(pipeline: str, params: str, accuracy: float, megabytes: float, ms: float, **extra: object) -> dict:
    return {"pipeline": pipeline, "params": params, "finetune_epochs": 0, "seed": 0, "accuracy": accuracy,
            "baseline_accuracy": 0.92, "deployable_bytes": int(megabytes * 1e6), "baseline_deployable_bytes": 40e6,
            "deployed_latency_ms": ms, "baseline_deployed_latency_ms": 1.0, "arch": "resnet18",
            "dataset": "fashion-mnist", "input_size": 32, "git_commit": "abc1234",
            "machine": "Xeon (avx512f), 2 cores, torch threads 2", **extra}


def test_the_headline_names_the_smallest_and_the_fastest_run_near_dense_and_counts_the_verdicts() -> None:
    rows = [_row("l1", "l1.amount=0.5", 0.915, 20.0, 1.0), _row("channels", "channels.amount=0.5", 0.912, 10.0, 0.4),
            _row("blocks", "blocks.amount=0.9", 0.80, 2.0, 0.1, timed_under_load=True)]
    text = headline({"rows": rows, "reference": "l1", "differences": [
        {"verdict": "worse", "pairs": 3}, {"verdict": "no difference", "pairs": 3}]})
    assert text.startswith("3 runs of resnet18 on fashion-mnist at 32 px (dense 92.00 % test top-1), at commit "
                           "abc1234 on Xeon (avx512f), 2 cores; 1 timed under load.")
    assert ("the smallest file and the fastest model are the same run, channels (channels.amount=0.5): 10.00 MB "
            "deployable (dense 40.00 MB) and 0.40 ms, x0.40 of the dense model timed beside it, at 91.20 %.") in text, \
        "blocks is smaller and faster but 12 points below dense"
    assert "2 settings: 1 worse, 1 no difference; each verdict rests on 3 paired seed(s)" in text
    far = headline({"rows": [_row("blocks", "blocks.amount=0.9", 0.80, 2.0, 0.1)]})
    assert ("No run comes within 1 point of dense top-1; the most accurate is blocks (blocks.amount=0.9) at "
            "80.00 %") in far


def test_accuracy_by_amount_has_one_line_per_strategy_and_one_column_per_amount_and_budget() -> None:
    rows = [_row("l1", "l1.amount=0.5 l1.scope=global", 0.90, 20.0, 1.0, amount=0.5),
            _row("l1", "l1.amount=0.9 l1.scope=global", 0.40, 4.0, 1.0, amount=0.9),
            _row("l1", "l1.amount=0.9 l1.scope=global", 0.80, 4.0, 1.0, amount=0.9, finetune_epochs=0.25),
            _row("l1", "l1.amount=0.9 l1.scope=global", 0.82, 4.0, 1.0, amount=0.9, finetune_epochs=0.25, seed=1),
            _row("obd", "obd.amount=0.9", 0.85, 4.0, 1.0, amount=0.9),
            _row("nm", "", 0.91, 20.0, 1.0, amount=None),
            _row("blocks+l1", "blocks.amount=0.25 l1.amount=0.5", 0.9, 3.0, 0.5, amount=0.5)]
    lines = accuracy_by_amount(rows).splitlines()
    assert lines[0].startswith("Top-1 % by amount and fine-tuning (dense 92.00 %")
    assert lines[2] == "| strategy | 50 % one-shot | 90 % one-shot | 90 % ft0.25 |"
    assert lines[4] == "| l1 (l1.scope=global) | 90.00 | 40.00 | 81.00 (2) |", "two seeds: their mean, counted"
    assert lines[5] == "| obd | - | 85.00 | - |"
    assert len(lines) == 6, "nm takes no amount and a chain is not one strategy: neither has a line"


def _score(checkpoint: str, accuracy: float, total: float) -> dict:
    return {"checkpoint": checkpoint, "accuracy": accuracy, "total_score": total, "images": 1000}


def test_the_openaimer_summary_names_the_winner_and_the_least_and_most_accurate_scored_models() -> None:
    rows = [_row("channels", "channels.amount=0.9", 0.1, 0.4, 0.1, checkpoint="a.pt", baseline_checkpoint="d.pt"),
            _row("l1", "l1.amount=0.5", 0.9, 20.0, 1.0, checkpoint="b.pt", baseline_checkpoint="d.pt")]
    text = openaimer_summary(rows, [_score("b.pt", 89.0, 1.5), _score("a.pt", 10.0, 39.04),
                                    _score("d.pt", 91.0, 1.0)])
    assert text == ("Under the OpenAImer score (1000 test images at the protocol's 224 px), the top score, 39.04, goes "
                    "to channels (channels.amount=0.9) at 10.00 % top-1; the least accurate scored model, channels "
                    "(channels.amount=0.9) at 10.00 %, scores 39.04, and the most accurate, dense baseline at "
                    "91.00 %, 1.00.\n")
    with pytest.raises(Exception, match="matches no run"):
        openaimer_summary(rows, [_score("elsewhere.pt", 50.0, 2.0)])
