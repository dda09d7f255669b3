"""Sweeps: grid expansion, shards, TOML grids, and a sweep killed mid-run that resumes with every cell once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compressor.errors import CompressorError
from compressor.models.checkpoint import Checkpoint, ModelSpec, save_checkpoint
from compressor.models.zoo import build_model
from compressor.report.schema import CellRecord, RunRow, read_cell_records, read_run_report
from compressor.sweep import CELL_SCHEMA, Pipeline, SweepSpec, load_grid, parse_shard, validate, write_results


def test_grid_expands_amounts_only_where_they_apply():
    spec = SweepSpec([Pipeline("l1"), Pipeline("int8"), Pipeline("blocks+l1+int8", ("blocks.amount=0.25",), (0.5,))],
                     amounts=(0.5, 0.7, 0.9), finetune_epochs=(0, 1))
    cells = spec.cells()
    assert len(cells) == 3 * 2 + 1 * 2 + 1 * 2
    assert {c.amount for c in cells if c.strategy == "int8"} == {None}
    assert {c.amount for c in cells if c.strategy.startswith("blocks")} == {0.5}
    assert len({c.key for c in cells}) == len(cells)
    validate(spec)


def test_shards_partition_the_grid():
    spec = SweepSpec([Pipeline("l1"), Pipeline("nm")], amounts=(0.3, 0.5, 0.7), seeds=(0, 1))
    keys = [c.key for c in spec.cells()]
    shards = [[c.key for i, c in enumerate(spec.cells()) if i % 3 == s] for s in range(3)]
    assert sorted(k for shard in shards for k in shard) == sorted(keys)
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "1", "a/b", "0/0", "-1/2"):
        with pytest.raises(CompressorError, match="--shard must be i/n"):
            parse_shard(bad)


def test_duplicate_cells_and_bad_strategies_are_refused():
    with pytest.raises(CompressorError, match="same cell twice"):
        SweepSpec([Pipeline("l1"), Pipeline("l1")]).cells()
    with pytest.raises(CompressorError, match="unknown strategy"):
        validate(SweepSpec([Pipeline("l2")]))
    with pytest.raises(CompressorError, match="no strategies"):
        validate(SweepSpec([]))


def test_toml_grid(tmp_path: Path):
    path = tmp_path / "grid.toml"
    path.write_text('strategies = ["l1", "channels"]\namounts = [0.5, 0.9]\nfinetune_epochs = [0, 1]\n'
                    '[[pipeline]]\nstrategy = "blocks+l1+int8"\nparams = ["blocks.amount=0.25"]\namounts = [0.5]\n')
    spec = load_grid(path)
    assert [p.strategy for p in spec.pipelines] == ["l1", "channels", "blocks+l1+int8"]
    assert spec.amounts == (0.5, 0.9) and spec.finetune_epochs == (0, 1) and len(spec.cells()) == 10
    path.write_text('strategies = ["l1"]\namount = [0.5]\n')
    with pytest.raises(CompressorError, match="unknown keys amount"):
        load_grid(path)
    path.write_text("strategies = [")
    with pytest.raises(CompressorError, match="not valid TOML"):
        load_grid(path)


def test_fractional_finetune_epochs_and_stable_keys(tmp_path: Path):
    whole = SweepSpec([Pipeline("l1")], finetune_epochs=(0,)).cells()[0]
    assert whole.key == "model-data-l1-0.5-ft0-s0-" + whole.key.rsplit("-", 1)[1]
    path = tmp_path / "grid.toml"
    path.write_text('strategies = ["l1"]\nfinetune_epochs = [0.0, 0.25, 1.0]\n')
    spec = load_grid(path)
    assert spec.finetune_epochs == (0, 0.25, 1)
    assert spec.cells()[0].key == whole.key  # 0.0 typed in a grid is the same cell as 0
    assert [c.key.split("-")[-3] for c in spec.cells()] == ["ft0", "ft0.25", "ft1"]
    path.write_text('strategies = ["l1"]\nfinetune_epochs = ["1"]\n')
    with pytest.raises(CompressorError, match="finetune_epochs takes numbers"):
        load_grid(path)
    with pytest.raises(CompressorError, match="--finetune-epochs must be a finite number ≥ 0; got -1"):
        validate(SweepSpec([Pipeline("l1")], finetune_epochs=(-1,)))


def _sweep(work: Path) -> subprocess.Popen:
    args = ["sweep", "--out", "out", "--strategies", "l1", "--amounts", "0.3,0.6", "--model", "base.pt",
            "--backends", "torch", "--compress", "none", "--quiet"]
    return subprocess.Popen([sys.executable, "-m", "compressor", *args], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            start_new_session=True)


def test_killed_sweep_resumes_with_every_cell_exactly_once(tmp_path: Path, digits):
    # an untrained ResNet18 at 16 px is enough to prune and measure: what is tested is the bookkeeping of cells
    torch.manual_seed(0)
    info = digits.info
    spec = ModelSpec("resnet18", 10, 1, 16, "digits", info.classes, info.mean, info.std)
    save_checkpoint(Checkpoint(spec, build_model("resnet18", 10, 1)), tmp_path / "base.pt")
    cells = tmp_path / "out" / "cells"
    sweep = _sweep(tmp_path)
    deadline = time.monotonic() + 300
    while not (cells.exists() and list(cells.glob("*.json"))):
        assert sweep.poll() is None and time.monotonic() < deadline, "the sweep ended before finishing a cell"
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its running cell, mid-way through the second cell
    sweep.wait()
    first = list(cells.glob("*.json"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    rerun = _sweep(tmp_path)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    assert "1 run, 0 failed, 1 already recorded" in stdout
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["amount"] for r in rows) == [0.3, 0.6]
    assert all(r["status"] == "done" and r["sparsity"] > 0 for r in rows)
    assert first[0].stat().st_mtime_ns == stamp, "a finished cell was run again"


def test_damaged_cell_records_are_skipped_not_fatal(tmp_path: Path):
    cells = tmp_path / "cells"
    cells.mkdir()
    (cells / "good.json").write_text(json.dumps({"schema": CELL_SCHEMA, "key": "good", "status": "done"}))
    (cells / "latin1.json").write_bytes(b'{"key": "caf\xe9"}')
    (cells / "truncated.json").write_text('{"schema": ')
    (cells / "list.json").write_text("[1, 2]")
    (cells / "keyless.json").write_text(json.dumps({"schema": CELL_SCHEMA, "status": "done"}))
    (cells / "old.json").write_text(json.dumps({"schema": "compressor.cell/0", "key": "old"}))
    assert list(read_cell_records(tmp_path)) == ["good"]


def test_results_rows_are_the_cell_settings_then_the_run_row(tmp_path: Path):
    cell = SweepSpec([Pipeline("l1", ("scope=layer",))], finetune_epochs=(0.25,)).cells()[0]
    settings = cell.settings()  # a name the row also has is prefixed, so a row never overwrites its cell's settings
    assert settings == {"strategy": "l1", "cell_params": ["scope=layer"], "cell_amount": 0.5, "cell_arch": None,
                        "cell_dataset": None, "cell_finetune_epochs": 0.25, "cell_seed": 0,
                        "cell_baseline_seed": None}
    report = read_run_report(next((Path(__file__).parents[1] / "reports").rglob("runs/*.json")))
    (tmp_path / "cells").mkdir()
    for record in (CellRecord(key="a", cell=settings, status="done", report=report),
                   CellRecord(key="b", cell=settings, status="failed", error="error: it broke")):
        (tmp_path / "cells" / f"{record.key}.json").write_text(json.dumps(record.to_dict()))
    done, failed = write_results(tmp_path)
    # the columns only some runs record (per-image record, peak memory, int8 kernels) where this run recorded them
    row_columns = [c for c in RunRow.columns() if c in RunRow.csv_columns() or c in done]
    assert list(done) == ["key", "status", *settings, *row_columns]
    assert done["source"] == "cells/a.json" and done["accuracy"] == report.compressed.accuracy
    assert failed == {"key": "b", "status": "failed", **settings, "error": "error: it broke"}
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [done, failed]


def test_committed_grids_are_valid():
    grids = sorted((Path(__file__).parents[1] / "scripts" / "grids").glob("*.toml"))
    assert grids
    for path in grids:
        validate(load_grid(path))


def test_run_args_reach_every_cell_after_the_grids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from conftest import run_cli

    import compressor.sweep

    seen = {}

    def fake_run_sweep(spec: SweepSpec, out_dir: Path, **_: object) -> dict[str, int]:
        seen["commands"] = [compressor.sweep.cell_command(cell, spec, out_dir / "r.json") for cell in spec.cells()]
        return {"cells": 1, "done": 1, "failed": 0, "skipped": 0}

    monkeypatch.setattr(compressor.sweep, "run_sweep", fake_run_sweep)
    code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path / "s"), "--strategies", "channels",
                                             "--amounts", "0.5", "--finetune-epochs", "1", "--backends", "torch",
                                             "--run-arg=--distill", "--run-arg", "--prune-steps=2"])
    assert code == 0, stderr
    (command,) = seen["commands"]
    # channels recommends BatchNorm recalibration and the grid says nothing: the sweep decides it for every cell
    assert command[-5:] == ["--backends", "torch", "--distill", "--prune-steps=2", "--bn-recalibrate"]


def test_baseline_seeds_cross_the_strategy_seeds_and_reach_each_cell(tmp_path: Path):
    plain = SweepSpec([Pipeline("l1")], seeds=(0, 1)).cells()
    spec = SweepSpec([Pipeline("l1")], seeds=(0, 1), baseline_seeds=(0, 2))
    cells = spec.cells()
    assert [(c.baseline_seed, c.seed) for c in cells] == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert len({c.key for c in cells}) == 4 and all(f"-b{c.baseline_seed}-" in c.key for c in cells)
    assert [c.key for c in plain] != [c.key for c in cells[:2]]  # a baseline seed is part of the cell
    assert plain[0].key.endswith("-s0-" + plain[0].key.rsplit("-", 1)[1])  # none given: the key of older sweeps
    command = compressor_sweep_command(cells[2], spec, tmp_path / "r.json")
    assert command[command.index("--seed") + 1] == "0" and command[command.index("--baseline-seed") + 1] == "2"
    assert "--baseline-seed" not in compressor_sweep_command(plain[0], spec, tmp_path / "r.json")
    path = tmp_path / "grid.toml"
    path.write_text('strategies = ["l1"]\nseeds = [0, 1, 2]\nbaseline_seeds = [0, 1]\n')
    assert len(load_grid(path).cells()) == 6


def compressor_sweep_command(cell, spec, report):
    from compressor.sweep import cell_command

    return cell_command(cell, spec, report)


def test_an_option_given_on_the_command_line_replaces_the_grid_files_instead_of_repeating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from conftest import run_cli

    import compressor.sweep

    seen = {}

    def fake_run_sweep(spec: SweepSpec, out_dir: Path, **_: object) -> dict[str, int]:
        seen["commands"] = [compressor.sweep.cell_command(cell, spec, out_dir / "r.json") for cell in spec.cells()]
        return {"cells": 1, "done": 1, "failed": 0, "skipped": 0}

    monkeypatch.setattr(compressor.sweep, "run_sweep", fake_run_sweep)
    grid = tmp_path / "grid.toml"
    grid.write_text('strategies = ["l1"]\nrun_args = ["--backends", "torch,onnxruntime", "--no-bn-recalibrate"]\n')
    code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path / "s"), "--grid", str(grid),
                                             "--backends", "torch", "-p", "l1.scope=layer"])
    assert code == 0, stderr
    (command,) = seen["commands"]
    assert command.count("--backends") == 1 and command[command.index("--backends") + 1] == "torch"
    assert "--no-bn-recalibrate" in command and command[-2:] == ["--param", "l1.scope=layer"]
    code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path / "t"), "--strategies", "l1",
                                             "--model", "m.pt", "--baseline-seeds", "1"])
    assert code == 2 and "--baseline-seeds" in stderr and "--model" in stderr


def test_a_baseline_seed_with_a_given_checkpoint_is_refused(tmp_path: Path):
    from conftest import run_cli

    code, _, stderr = run_cli("compressor", ["run", "-s", "l1", "--model", str(tmp_path / "m.pt"),
                                             "--baseline-seed", "1"])
    assert code == 2 and "--baseline-seed" in stderr and "--model" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_the_baseline_seed_picks_the_baseline_and_the_seed_stays_the_runs(tmp_path: Path):
    from compressor.pipeline import RunConfig, plan_run
    from compressor.strategies.steps import parse_steps

    config = RunConfig(steps=parse_steps(["l1"], 0.5, []), seed=0, baseline_seed=3, output=tmp_path / "r.json")
    assert plan_run(config).request.seed == 3
    assert plan_run(RunConfig(steps=config.steps, seed=2, output=tmp_path / "r.json")).request.seed == 2


@pytest.mark.parametrize(("strategies", "run_args", "expected"), [
    (["l1", "obd"], [], "--bn-recalibrate"),  # obd recommends it: l1's cells get the same help
    (["l1", "nm"], [], "--no-bn-recalibrate"),  # nobody asks: nobody gets it
    (["l1", "channels"], ["--no-bn-recalibrate"], "--no-bn-recalibrate"),  # the grid's own setting wins
])
def test_every_cell_of_a_sweep_gets_the_same_batchnorm_recalibration(tmp_path, strategies, run_args, expected):
    from compressor.sweep import sweep_bn_flag

    path = tmp_path / "grid.toml"
    path.write_text(f"strategies = {strategies!r}\namounts = [0.5]\nrun_args = {run_args!r}\n".replace("'", '"'))
    spec = load_grid(path)
    assert sweep_bn_flag(spec) == expected
    for cell in spec.cells():
        command = compressor_sweep_command(cell, spec, tmp_path / "r.json")
        assert [arg for arg in command if arg in ("--bn-recalibrate", "--no-bn-recalibrate")] == [expected]


def test_a_grids_recovery_table_is_checked_like_run_config_and_reaches_every_cell(tmp_path: Path):
    """A grid's [recovery] table is RecoveryConfig's schema: checked at load, written once, read by every cell."""
    from compressor.recovery.config import RecoveryConfig, read_recovery_file
    from compressor.sweep import cell_command, sweep_bn_flag, write_recovery_file

    path = tmp_path / "grid.toml"
    path.write_text('strategies = ["channels"]\nfinetune_epochs = [0.5, 1]\n'
                    '[recovery]\ndistill = true\nlabel_smoothing = 0.1\nbn_recalibrate = false\n')
    spec = load_grid(path)
    validate(spec)
    written = write_recovery_file(spec.recovery, tmp_path / "s" / "recovery.toml")
    assert read_recovery_file(written) == {"bn_recalibrate": False, "distill": True, "label_smoothing": 0.1}
    assert RecoveryConfig.from_mapping({**read_recovery_file(written), "finetune_epochs": 0.5}) == \
        RecoveryConfig(finetune_epochs=0.5, distill=True, label_smoothing=0.1, bn_recalibrate=False)
    command = cell_command(spec.cells()[0], spec, tmp_path / "r.json", sweep_bn_flag(spec), written)
    assert command[command.index("--config") + 1] == str(written)
    assert command[-1] == "--no-bn-recalibrate", "the table's choice, not the steps' recommendation"
    for table, message in (("distil = true", "unknown setting\\(s\\) distil"),
                           ("finetune_epochs = 1", "finetune_epochs is a sweep axis"),
                           ("label_smoothing = 1.5", "--label-smoothing must be a number in \\[0, 1\\)")):
        path.write_text(f'strategies = ["l1"]\n[recovery]\n{table}\n')
        with pytest.raises(CompressorError, match=message):
            load_grid(path)
    path.write_text('strategies = ["l1"]\nfinetune_epochs = [0, 1]\n[recovery]\nprune_steps = 2\n')
    with pytest.raises(CompressorError, match="--prune-steps fine-tunes between its rounds"):
        validate(load_grid(path))  # the cells without fine-tuning could not prune gradually
