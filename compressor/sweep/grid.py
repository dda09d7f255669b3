"""A sweep's grid: pipelines x amounts x architectures x datasets x fine-tuning x seeds, expanded into cells, each
with the `compressor run` command line it runs (one BatchNorm setting and one [recovery] table for all of them)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compressor import parse_steps
from compressor._util.fileio import read_toml, write_atomic
from compressor.errors import CompressorError
from compressor.models.training import whole_if_integral
from compressor.recovery.config import RecoveryConfig
from compressor.report.schema import RunRow
from compressor.strategies.steps import recalibration_recommended


@dataclass(frozen=True)
class Pipeline:
    """A strategy or `a+b` pipeline with fixed per-step parameters (e.g. `blocks.amount=0.25`)."""

    strategy: str
    params: tuple[str, ...] = ()
    amounts: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Cell:
    """One job of a sweep: everything `compressor run` needs, and the stable key it is recorded under."""

    strategy: str
    params: tuple[str, ...]
    amount: float | None
    arch: str | None
    dataset: str | None
    finetune_epochs: float
    seed: int
    baseline_seed: int | None = None  # None: the run's default (the baseline trained with `seed`)

    @property
    def key(self) -> str:
        """A readable, filesystem-safe name plus a hash of every setting (unique within any sweep)."""
        settings = [self.strategy, self.params, self.amount, self.arch, self.dataset, self.finetune_epochs, self.seed]
        if self.baseline_seed is not None:  # absent from the hash otherwise, so older sweeps keep their keys
            settings.append(self.baseline_seed)
        text = json.dumps(settings)
        amount = "" if self.amount is None else f"-{self.amount:g}"
        readable = f"{self.arch or 'model'}-{self.dataset or 'data'}-{self.strategy}{amount}-ft{self.finetune_epochs}"
        safe = "".join(c if c.isalnum() or c in "-.+_" else "_" for c in readable)
        base = "" if self.baseline_seed is None else f"-b{self.baseline_seed}"
        return f"{safe}-s{self.seed}{base}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    def settings(self) -> dict[str, Any]:
        """The cell's settings as recorded beside its row: a name the row also has (params, arch, ...) gets `cell_`."""
        taken = set(RunRow.columns())
        return {(f"cell_{f.name}" if f.name in taken else f.name): list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


@dataclass
class SweepSpec:
    """The grid, plus options passed to every cell's `compressor run`."""

    pipelines: list[Pipeline]
    amounts: tuple[float, ...] = (0.5,)
    archs: tuple[str | None, ...] = (None,)
    datasets: tuple[str | None, ...] = (None,)
    finetune_epochs: tuple[float, ...] = (0,)
    seeds: tuple[int, ...] = (0,)  # of strategies, calibration and fine-tuning
    baseline_seeds: tuple[int | None, ...] = (None,)  # of the baseline's training; None: the cell's seed
    run_args: list[str] = field(default_factory=list)
    recovery: dict[str, Any] = field(default_factory=dict)  # a grid's [recovery] table: RecoveryConfig fields
    cell_timeout: float | None = None  # seconds; a cell still running then is killed and recorded as failed

    def cells(self) -> list[Cell]:
        """Every cell in a fixed order; a pipeline with no `amount` parameter runs once, not once per amount."""
        cells = []
        for pipeline in self.pipelines:
            takes_amount = _takes_amount(pipeline)
            amounts = (pipeline.amounts or self.amounts) if takes_amount else (None,)
            for arch, dataset, amount, epochs, base_seed, seed in itertools.product(
                    self.archs, self.datasets, amounts, self.finetune_epochs, self.baseline_seeds, self.seeds):
                cells.append(Cell(pipeline.strategy, pipeline.params, amount, arch, dataset, epochs, seed, base_seed))
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys):
            raise CompressorError("the sweep lists the same cell twice; remove the duplicate strategies or values")
        return cells


def _takes_amount(pipeline: Pipeline) -> bool:
    from compressor.strategies.registry import get_strategy

    return any(p.name == "amount" for name in pipeline.strategy.split("+") for p in get_strategy(name).params)


def parse_shard(text: str | None) -> tuple[int, int]:
    """`i/n` (0 <= i < n) -> (i, n); None -> (0, 1)."""
    if text is None:
        return 0, 1
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise CompressorError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4); got {text!r}")
    return i, n


def load_grid(path: Path) -> SweepSpec:
    """A sweep from a TOML file (keys as in `compressor sweep --help`; [[pipeline]] tables for fixed params)."""
    data = read_toml(path, "sweep file")
    known = {"strategies", "pipeline", "amounts", "archs", "datasets", "finetune_epochs", "seeds", "baseline_seeds",
             "run_args", "recovery", "cell_timeout"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CompressorError(f"sweep file {path}: unknown keys {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
    pipelines = [Pipeline(s) for s in data.get("strategies", [])]
    for table in data.get("pipeline", []):
        if "strategy" not in table:
            raise CompressorError(f"sweep file {path}: every [[pipeline]] needs a strategy")
        amounts = table.get("amounts")
        pipelines.append(Pipeline(table["strategy"], tuple(table.get("params", [])),
                                  tuple(float(a) for a in amounts) if amounts else None))
    recovery = data.get("recovery", {})
    if not isinstance(recovery, dict):
        raise CompressorError(f"sweep file {path}: recovery must be a [recovery] table of RecoveryConfig fields")
    if "finetune_epochs" in recovery:
        raise CompressorError(f"sweep file {path}: finetune_epochs is a sweep axis; set it at the top level, "
                              "not in [recovery]")
    # each field checked as run --config checks it; how it combines with each finetune_epochs value: validate()
    RecoveryConfig.from_mapping({**recovery, "finetune_epochs": 1}, f"sweep file {path} [recovery]")
    spec = SweepSpec(pipelines=pipelines, run_args=[str(a) for a in data.get("run_args", [])], recovery=recovery,
                     cell_timeout=check_cell_timeout(data.get("cell_timeout"), f"sweep file {path}: cell_timeout"))
    for name in ("amounts", "archs", "datasets", "finetune_epochs", "seeds", "baseline_seeds"):
        if name in data:
            setattr(spec, name, tuple(data[name]))
    if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in spec.finetune_epochs):
        raise CompressorError(f"sweep file {path}: finetune_epochs takes numbers; got {list(spec.finetune_epochs)}")
    spec.finetune_epochs = tuple(whole_if_integral(e) for e in spec.finetune_epochs)
    return spec


def check_cell_timeout(value: Any, where: str = "--cell-timeout") -> float | None:
    """A per-cell timeout in seconds (a positive number) or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise CompressorError(f"{where} must be a positive number of seconds; got {value!r}")
    return float(value)


def validate(spec: SweepSpec) -> None:
    """Fail before running anything if a pipeline, parameter or amount is wrong."""
    if not spec.pipelines:
        raise CompressorError("the sweep has no strategies; pass --strategies or a grid file with some")
    for epochs in spec.finetune_epochs:  # each cell's recovery, checked as `compressor run` will check it
        RecoveryConfig.from_mapping({**spec.recovery, "finetune_epochs": epochs}, "sweep recovery")
    for cell in spec.cells():
        parse_steps([cell.strategy], cell.amount, list(cell.params))


BN_FLAGS = ("--bn-recalibrate", "--no-bn-recalibrate")


def sweep_bn_flag(spec: SweepSpec) -> str:
    """One BatchNorm recalibration setting for every cell, so that cells differ only in their strategies: the grid's
    own (run_args), else on when any cell's steps recommend it (strategies.registry.recommends_bn_recalibration)."""
    given = [arg for arg in spec.run_args if arg in BN_FLAGS]
    if given:
        return given[-1]
    if spec.recovery.get("bn_recalibrate") is not None:
        return BN_FLAGS[0] if spec.recovery["bn_recalibrate"] else BN_FLAGS[1]
    wanted = any(recalibration_recommended(parse_steps([cell.strategy], cell.amount, list(cell.params)))
                 for cell in spec.cells())
    return BN_FLAGS[0] if wanted else BN_FLAGS[1]


def cell_command(cell: Cell, spec: SweepSpec, report: Path, bn_flag: str | None = None,
                 recovery_file: Path | None = None) -> list[str]:
    """The `compressor run` command line of one cell (`bn_flag`: `sweep_bn_flag(spec)`, computed once per sweep;
    `recovery_file`: the grid's [recovery] table written out for `run --config`)."""
    args = ["run", "--strategy", cell.strategy, "--seed", str(cell.seed), "--finetune-epochs",
            str(cell.finetune_epochs), "--output", str(report), "--quiet"]
    if recovery_file is not None:
        args += ["--config", str(recovery_file)]
    if cell.amount is not None:
        args += ["--amount", f"{cell.amount:g}"]
    for param in cell.params:
        args += ["--param", param]
    if cell.arch:
        args += ["--arch", cell.arch]
    if cell.dataset:
        args += ["--data", cell.dataset]
    if cell.baseline_seed is not None:
        args += ["--baseline-seed", str(cell.baseline_seed)]
    extra = [] if any(arg in BN_FLAGS for arg in spec.run_args) else [bn_flag or sweep_bn_flag(spec)]
    return [sys.executable, "-m", "compressor", *args, *spec.run_args, *extra]


def write_recovery_file(recovery: dict[str, Any], path: Path) -> Path:
    """The grid's [recovery] table as a TOML file every cell reads with `run --config` (atomically)."""

    def toml(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)

    text = "[recovery]\n" + "".join(f"{key} = {toml(value)}\n" for key, value in sorted(recovery.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def override_run_args(run_args: list[str], options: list[str]) -> list[str]:
    """`run_args` with every `--name value` pair that `options` (pairs too) sets again removed, then `options`:
    an option given on the command line replaces the grid file's instead of repeating it."""
    names = set(options[0::2])
    kept, i = [], 0
    while i < len(run_args):
        if run_args[i] in names and i + 1 < len(run_args):
            i += 2
            continue
        kept.append(run_args[i])
        i += 1
    return [*kept, *options]
