"""The run-report schema: committed reports read back unchanged, write -> read round trips, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from compressor.errors import CompressorError
from compressor.report.schema import (
    CELL_SCHEMA,
    REPORT_SCHEMA,
    CellRecord,
    DatasetInfo,
    Environment,
    Measurement,
    ModelInfo,
    Recovery,
    RunReport,
    RunRow,
    StepReport,
    read_cell_records,
    read_run_report,
    step_params,
    write_run_report,
)
from compressor.report.summary import collect_rows

ROOT = Path(__file__).parents[2]


def _is_run_report(path: Path) -> bool:
    data = json.loads(path.read_text())
    return isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA


COMMITTED = sorted(path for path in (ROOT / "reports").rglob("*.json") if _is_run_report(path))


def test_reports_are_committed():
    assert len(COMMITTED) >= 1


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_run_report_reads_back_unchanged(path: Path):
    report = read_run_report(path)
    assert report.to_dict() == json.loads(path.read_text())  # nothing lost, nothing added
    assert report.compressed.deployable_bytes > 0 and report.steps[0].strategy in report.strategy
    assert RunRow.from_report(report).pipeline == report.strategy


def test_committed_summary_rows_are_the_rows_of_their_reports(monkeypatch: pytest.MonkeyPatch):
    summary = ROOT / "reports" / "resnet18-fashion-mnist-strategies"
    committed = json.loads((summary / "results.json").read_text())["rows"]
    monkeypatch.chdir(ROOT)  # the rows name their reports relative to the repository
    rows = [row.as_dict() for row in collect_rows([Path(row["source"]) for row in committed])]
    assert rows == committed
    with open(summary / "results.csv") as handle:
        assert tuple(next(csv.reader(handle))) == RunRow.csv_columns()


def _measurement(accuracy: float, **extra: object) -> Measurement:
    return Measurement(accuracy=accuracy, f1_macro=accuracy - 0.01, sparsity=0.5, params_nonzero=1000, macs=20_000,
                       deployable_bytes=4000, measure_config={"batch_size": 1}, size_bytes=8000,
                       latency={"torch": {"median_ms": 2.0}, "onnxruntime": {"median_ms": 1.5}}, latency_ms=2.0,
                       checkpoint="c.pt", extra=dict(extra))


def _report() -> RunReport:
    steps = [StepReport(strategy="l1", params={"amount": 0.5}, seconds=1.25, record={"sparsity": 0.5}),
             StepReport(strategy="l1", params={"amount": 0.2}, seconds=0.5)]
    return RunReport(created="2026-01-01T00:00:00+00:00", command="compressor run -s l1+l1", strategy="l1+l1",
                     params=step_params(steps), steps=steps, recovery=Recovery(finetune_epochs=0.25),
                     model=ModelInfo(arch="resnet18", input_size=8, seed=3),
                     dataset=DatasetInfo(name="digits", split="test", samples=360),
                     environment=Environment(cpu="cpu", cpu_count=2, torch_threads=2, packages={"torch": "2"},
                                             extra={"cpu_flags": ["avx512f"]}),
                     baseline=_measurement(0.9), compressed=_measurement(0.8, top1_agreement_with_torch=0.97),
                     plots={"step1_sensitivity": "s.png"}, extra={"from_a_newer_writer": {"x": 1}})


def test_write_then_read_gives_equal_dataclasses(tmp_path: Path):
    report = _report()
    assert report.params == {"l1": {"amount": 0.5}, "l1#2": {"amount": 0.2}}
    path = write_run_report(report, tmp_path / "r.json")
    again = read_run_report(path)
    assert again == report
    data = json.loads(path.read_text())
    assert data["schema"] == REPORT_SCHEMA and list(data)[:3] == ["schema", "created", "command"]
    assert data["from_a_newer_writer"] == {"x": 1} and data["compressed"]["top1_agreement_with_torch"] == 0.97
    assert "accuracy_before_recovery" not in data["compressed"]  # absent stays absent, not null
    assert data["recovery"] == {"bn_recalibrate": False, "finetune_epochs": 0.25}


def test_row_fields_come_from_the_report():
    row = RunRow.from_report(_report(), "r.json")
    assert row.params == "l1.amount=0.5 l1.amount=0.2" and row.strategy_seconds == 1.8
    assert row.deployed_latency_ms == 1.5 and row.baseline_deployed_latency_ms == 1.5 and row.fp32_bytes == 8000
    assert row.machine == "cpu, 2 cores, torch threads 2, Python None; torch 2" and row.source == "r.json"
    assert tuple(row.as_dict()) == RunRow.csv_columns()  # `correct` only when the report recorded it


def test_row_names_every_parameter_set_away_from_its_default_and_the_peak_memory():
    # two obd runs that differ only in their Fisher must not merge into one setting of a report
    report = _report()
    report.steps = [StepReport(strategy="obd", params={"amount": 0.9, "fisher": "sampled", "relative_damping": 0.1,
                                                        "damping": 0.0001, "gradients": 128}, seconds=1.0),
                    StepReport(strategy="a-plugin-not-installed", params={"x": 1, "scope": "layer"}, seconds=0.0)]
    report.resources = {"peak_rss_bytes": 3 * 2**30}
    row = RunRow.from_report(report)
    assert row.params == ("obd.amount=0.9 obd.fisher=sampled obd.relative_damping=0.1 "
                          "a-plugin-not-installed.scope=layer")
    assert row.peak_rss_bytes == 3 * 2**30 and row.as_dict()["peak_rss_bytes"] == 3 * 2**30


def test_row_carries_the_int8_kernel_share_only_when_the_run_recorded_the_int8_graphs_kernels():
    report = _report()
    assert "int8_kernel_share" not in RunRow.from_report(report).as_dict()  # older reports' rows stay as they were
    report.compressed.int8_kernels = {"profile_int8_share": 0.62, "runs_int8": False}
    row = RunRow.from_report(report)
    assert row.int8_kernel_share == 0.62 and row.as_dict()["int8_kernel_share"] == 0.62
    assert "int8_kernel_share" not in RunRow.csv_columns()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


def _broken(change) -> dict:
    data = _report().to_dict()
    change(data)
    return data


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not readable JSON"),
    ([1, 2], "is not a run report (schema 'list'; expected 'compressor.run/1')"),
    ({"schema": "compressor.bench/1"},
     "is not a run report (schema 'compressor.bench/1'; expected 'compressor.run/1')"),
    (_broken(lambda d: d["compressed"].pop("accuracy")), "is malformed: compressed.accuracy is missing"),
    (_broken(lambda d: d["baseline"].update(deployable_bytes="4 kB")),
     "is malformed: baseline.deployable_bytes should be an integer, not a string"),
    (_broken(lambda d: d["steps"][1].update(seconds=None)),
     "is malformed: steps[1].seconds should be a number, not null"),
    (_broken(lambda d: d.update(steps={"l1": {}})), "is malformed: steps should be a list, not an object"),
    (_broken(lambda d: d.update(model="resnet18")), "is malformed: model should be an object, not a string"),
    (_broken(lambda d: d["recovery"].update(bn_recalibrate=1)),
     "is malformed: recovery.bn_recalibrate should be a boolean, not an integer"),
])
def test_a_malformed_or_foreign_file_is_one_line_naming_it(tmp_path: Path, content: object, message: str):
    path = tmp_path / "r.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        _write(tmp_path, content)
    with pytest.raises(CompressorError) as caught:
        read_run_report(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


def test_cell_records_round_trip_and_damaged_ones_are_left_out(tmp_path: Path):
    (tmp_path / "cells").mkdir()
    done = CellRecord(key="a", command=["run"], cell={"strategy": "l1"}, seconds=3.0, status="done", report=_report())
    failed = CellRecord(key="b", cell={}, status="failed", returncode=2, error="error: no")
    for record in (done, failed):
        (tmp_path / "cells" / f"{record.key}.json").write_text(json.dumps(record.to_dict()))
    bad_report = {**done.to_dict(), "key": "c", "report": {**_report().to_dict(), "steps": 3}}
    (tmp_path / "cells" / "c.json").write_text(json.dumps(bad_report))
    assert read_cell_records(tmp_path) == {"a": done, "b": failed}
    assert done.to_dict()["schema"] == CELL_SCHEMA and "report" not in failed.to_dict()
