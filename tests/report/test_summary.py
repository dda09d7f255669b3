"""`compressor report` over seeds and against a reference: the seed table, the difference table and their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compressor.errors import CompressorError
from compressor.report.summary import write_summary

RUNS = Path(__file__).resolve().parents[2] / "reports" / "resnet18-fashion-mnist-strategies" / "runs"


def _seeded(tmp_path: Path, name: str, seed: int, accuracy: float, bn_recalibrate: bool | None = None,
            before: float | None = None, peak_rss_bytes: int | None = None, bn_in_strategy: bool = False) -> Path:
    """A committed run report as if it had run with another seed and reached `accuracy` (and, when given, with the
    recovery's BatchNorm recalibration on or off, an accuracy before recovery, a peak memory). `bn_in_strategy`:
    its first step recalibrated BatchNorm itself (a step record with `bn_images`, as layer-sensitive's once did);
    otherwise no step did, whatever the committed run recorded."""
    report = json.loads((RUNS / f"{name}.json").read_text())
    for step in report["steps"]:
        step["record"].pop("bn_images", None)
    if bn_in_strategy:
        report["steps"][0]["record"]["bn_images"] = 2560
    report["model"]["seed"] = seed
    report["compressed"]["accuracy"] = accuracy
    report["compressed"].pop("correct", None)  # the committed per-image record belongs to the committed accuracy
    if before is not None:
        report["compressed"]["accuracy_before_recovery"] = before
    if peak_rss_bytes is not None:
        report["resources"] = {"peak_rss_bytes": peak_rss_bytes}
    if bn_recalibrate is not None:
        report["recovery"]["bn_recalibrate"] = bn_recalibrate
    path = tmp_path / "runs" / f"{name}-s{seed}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report))
    return path


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("summary")
    # layer-sensitive recalibrates BatchNorm inside the strategy (its record has bn_images): l1 gets the same help
    paths = [_seeded(tmp, "l1-ft0", seed, a, True) for seed, a in enumerate((0.900, 0.910, 0.920))]
    paths += [_seeded(tmp, "layer-sensitive-ft0", seed, a, bn_in_strategy=True)
              for seed, a in enumerate((0.920, 0.930, 0.940))]
    paths += [_seeded(tmp, "nm-ft0", 0, 0.80)]
    out = tmp / "out"
    write_summary(paths, out, reference="l1")
    return out, json.loads((out / "results.json").read_text())


def test_runs_of_one_setting_aggregate_as_mean_sd_and_seed_count(summary):
    out, results = summary
    groups = {g["pipeline"]: g for g in results["seed_groups"]}
    assert groups["l1"]["runs"] == 3 and groups["l1"]["accuracy_mean"] == pytest.approx(0.91)
    assert groups["l1"]["accuracy_spread"] == pytest.approx(0.01) and groups["l1"]["spread_kind"] == "sd"
    assert groups["nm"]["runs"] == 1 and groups["nm"]["spread_kind"] == "se"
    readme = (out / "README.md").read_text()
    assert "## Over seeds" in readme and "| 3 | 0/b0, 1/b0, 2/b0 | 91.00 ± 1.00 (3) |" in readme
    assert "| 1 | 0/b0 | 80.00 ± 0.40 |" in readme  # one run: ± its binomial SE on 10,000 images


def test_differences_are_paired_by_seed_with_a_verdict(summary):
    out, results = summary
    (diff,) = [d for d in results["differences"] if d["pipeline"] == "layer-sensitive"]
    # 2 points on every seed, beyond the seeds' spread (none) and the test set's noise (binomial, ~0.4 points)
    assert diff["pairs"] == 3 and diff["mean"] == pytest.approx(2.0) and diff["verdict"] == "better"
    assert not any(d["pipeline"] == "nm" for d in results["differences"])  # nm has no amount: no counterpart
    readme = (out / "README.md").read_text()
    assert "## Difference from l1" in readme and "| layer-sensitive |" in readme and "+2.00 ± 0.00" in readme
    for name in ("difference.png", "layers.png", "tradeoffs.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_a_reference_that_matches_nothing_is_refused_before_writing(tmp_path: Path):
    path = _seeded(tmp_path, "l1-ft0", 0, 0.9)
    with pytest.raises(CompressorError, match="--reference 'obd' matches no run"):
        write_summary([path], tmp_path / "out", reference="obd")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_runs_that_got_different_help_get_no_verdict(tmp_path: Path):
    # l1 had no BatchNorm recalibration, the layer-sensitive run recalibrated inside the strategy
    paths = [_seeded(tmp_path, "l1-ft0", 0, 0.80),
             _seeded(tmp_path, "layer-sensitive-ft0", 0, 0.90, bn_in_strategy=True)]
    rows = write_summary(paths, tmp_path / "out", reference="l1")
    assert [r["bn_recalibrated"] for r in rows] == [False, True]
    (diff,) = json.loads((tmp_path / "out" / "results.json").read_text())["differences"]
    assert diff["mean"] == pytest.approx(10.0) and diff["recovery_differs"] is True
    assert diff["verdict"] == "not comparable: recovery differs"  # 10 points, yet no "better"
    assert "| not comparable: recovery differs |" in (tmp_path / "out" / "README.md").read_text()


def test_the_report_writes_its_run_table_as_a_fragment_for_the_docs(summary):
    out, results = summary
    fragment = (out / "runs.md").read_text()
    assert fragment.startswith("| pipeline |") and fragment in (out / "README.md").read_text()
    assert fragment.count("\n") == 2 + 1 + len(results["rows"])  # header, rule, baseline, one line per run


def test_before_recovery_compares_the_strategies_alone_and_reports_their_cost(tmp_path: Path):
    # after the same recalibration the methods tie; before it, what the strategy alone reached differs by 40 points
    paths = [_seeded(tmp_path, "l1-ft0", seed, 0.90, True, before=0.40 + 0.01 * seed, peak_rss_bytes=2**30)
             for seed in range(3)]
    paths += [_seeded(tmp_path, "layer-sensitive-ft0", seed, 0.90, before=0.80 + 0.01 * seed, peak_rss_bytes=2**31,
                      bn_in_strategy=True) for seed in range(3)]
    out = tmp_path / "out"
    write_summary(paths, out, reference="l1", before_recovery=True)
    results = json.loads((out / "results.json").read_text())
    (after,), (before,) = results["differences"], results["differences_before_recovery"]
    assert after["verdict"] == "no difference" and after["mean"] == pytest.approx(0.0)
    assert before["verdict"] == "better" and before["mean"] == pytest.approx(40.0) and before["pairs"] == 3
    readme = (out / "README.md").read_text()
    assert "## Difference from l1 before recovery" in readme and "## Cost" in readme
    assert (out / "difference-before-recovery.png").read_bytes()[:4] == b"\x89PNG"
    assert "| layer-sensitive | 81.00 (3) |" in (out / "accuracy-before-recovery.md").read_text()
    assert "| +40.00 ± 0.00 |" in (out / "differences-before-recovery.md").read_text()
    assert "2.00 GiB" in (out / "cost.md").read_text() and "1.00 GiB" in (out / "cost.md").read_text()
    with pytest.raises(CompressorError, match="--before-recovery compares with a --reference"):
        write_summary(paths, tmp_path / "none", before_recovery=True)


def test_before_recovery_needs_runs_that_recorded_it(tmp_path: Path):
    paths = [_seeded(tmp_path, "l1-ft0", 0, 0.9), _seeded(tmp_path, "layer-sensitive-ft0", 0, 0.9)]
    with pytest.raises(CompressorError, match="no run recorded its accuracy before recovery"):
        write_summary(paths, tmp_path / "out", reference="l1", before_recovery=True)


def _timed_row(pipeline: str, dense_ms: float, ms: float, macs: int, int8: bool = False) -> dict:
    return {"pipeline": pipeline, "baseline_deployed_latency_ms": dense_ms, "deployed_latency_ms": ms, "macs": macs,
            "baseline_macs": 100, "latency_int8_ms": ms if int8 else None}


def test_the_latency_noise_fragment_bounds_the_ratio_of_runs_that_keep_the_dense_graph():
    from compressor.report.fragments import latency_noise

    rows = [_timed_row("l1", 4.0, 4.2, 100), _timed_row("obd", 6.0, 5.7, 100),
            _timed_row("channels", 5.0, 1.0, 40),  # a smaller graph: not part of the noise band
            _timed_row("int8", 5.0, 2.5, 100, int8=True)]  # same MACs, other kernels: not part of it either
    text = latency_noise(rows)
    assert "each of 4 runs, measured 4.00-6.00 ms (median 5.00 ms)" in text
    assert "The 2 runs whose deployed model runs the dense graph" in text and "x0.95-1.05 of the dense" in text
    assert latency_noise(rows[:1]) is None  # one timing is no spread
    assert "runs the dense graph" not in latency_noise(rows[2:])  # no two runs of the dense graph: no band
