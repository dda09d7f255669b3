"""The typed records every run leaves behind, and the one way to read them.

`compressor run` writes a `RunReport` (schema `compressor.run/1`); a sweep records each cell as a `CellRecord`
(`compressor.sweep-cell/1`) holding the cell's report; `compressor report` flattens every report into a `RunRow`,
whose fields are the columns of results.json, results.csv and a sweep's results.jsonl. Writers build these
dataclasses and call `to_dict`; readers go through `read_run_report`, `read_cell_records` or `from_dict`, which
check every typed field and fail with one line naming the first wrong one. Keys a record does not declare (written
by a newer version, or by a measurement that grew a figure) are kept in `extra`, so a read-write round trip loses
nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from compressor._util.fileio import read_cached_json, write_json_atomic
from compressor.errors import CompressorError

REPORT_SCHEMA = "compressor.run/1"
CELL_SCHEMA = "compressor.sweep-cell/1"
RESULTS_SCHEMA = "compressor.results/1"

_OMIT_NONE = {"omit_none": True}
R = TypeVar("R", bound="Record")


def optional(default: Any = None) -> Any:
    """A field that may be absent: `None` when it is, and left out of the JSON again when still `None`."""
    return field(default=default, metadata=_OMIT_NONE)


def extra_keys() -> Any:
    """The catch-all field of every record: keys it does not declare, kept as read."""
    return field(default_factory=dict, repr=False)


class SchemaError(CompressorError):
    """A record with a missing or mistyped field; the message names the field by its dotted path."""


class Record:
    """Mixin of the record dataclasses: `from_dict` checks fields against their annotations, `to_dict` inverts it."""

    extra: dict[str, Any]
    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def from_dict(cls: type[R], data: Any, where: str = "") -> R:
        """The record of a parsed JSON object; SchemaError names the first missing or mistyped field."""
        if not isinstance(data, dict):
            raise SchemaError(f"{where.rstrip('.') or cls.__name__} should be an object, not {_kind(data)}")
        hints = Record._hints.get(cls) or Record._hints.setdefault(cls, typing.get_type_hints(cls))
        declared = [f for f in dataclasses.fields(cls) if f.name != "extra"]  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for f in declared:
            if f.name in data:
                values[f.name] = _convert(hints[f.name], data[f.name], where + f.name)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{where}{f.name} is missing")
        names = {f.name for f in declared}
        return cls(**values, extra={k: v for k, v in data.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record: declared fields in order (absent optional ones left out), then extras."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.metadata.get("omit_none")):
                continue
            out[f.name] = _dump(value)
        out.update(copy.deepcopy(self.extra))
        return out


_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number",
          type(None): "null"}


def _kind(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def _convert(hint: Any, value: Any, where: str) -> Any:
    """`value` checked against the annotation `hint` (records parsed, lists element-wise); SchemaError if unfit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except SchemaError as exc:
                errors.append(exc)
        raise errors[0]
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(value, where + ".")
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where} should be a list, not {_kind(value)}")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    expected = origin or hint
    if expected in (int, float):  # JSON has one number type; a float field takes 1 as it was written, never True
        fits = isinstance(value, int if expected is int else (int, float)) and not isinstance(value, bool)
    else:
        fits = isinstance(value, expected)
    if not fits:
        raise SchemaError(f"{where} should be {_NAMES.get(expected, expected.__name__)}, not {_kind(value)}")
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return copy.deepcopy(value)


@dataclass(kw_only=True)
class StepReport(Record):
    """One strategy of the pipeline as applied: its full parameters, time taken and its own record."""

    strategy: str
    params: dict[str, Any]
    seconds: float
    record: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = extra_keys()


@dataclass(kw_only=True)
class Recovery(Record):
    """What ran between the strategies and the measurements: BatchNorm recalibration and fine-tuning (distilled
    from the uncompressed model when `distill`)."""

    bn_recalibrate: bool = False
    finetune_epochs: float = 0
    distill: bool | None = optional()
    bn_images: int | None = optional()
    finetune: dict[str, Any] | None = optional()
    extra: dict[str, Any] = extra_keys()


@dataclass(kw_only=True)
class ModelInfo(Record):
    """The architecture measured and the baseline checkpoint it came from."""

    arch: str
    input_size: int
    in_channels: int | None = optional()
    num_classes: int | None = optional()
    baseline: str | None = optional()
    seed: int  # of the strategies, calibration batches and fine-tuning
    baseline_seed: int | None = optional()  # of the cached baseline's training (absent: a given checkpoint)
    extra: dict[str, Any] = extra_keys()


@dataclass(kw_only=True)
class DatasetInfo(Record):
    """The split accuracy was measured on."""

    name: str
    split: str
    samples: int
    extra: dict[str, Any] = extra_keys()


@dataclass(kw_only=True)
class Environment(Record):
    """Where a run was measured (see `compressor._util.environment`)."""

    python: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    cuda: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = optional()  # uncommitted changes to tracked files when the run started
    isa: list[str] | None = optional()
    onnxruntime_session: dict[str, Any] | None = optional()
    extra: dict[str, Any] = extra_keys()

    def machine_text(self) -> str:
        """CPU (with its ISA flags), cores, threads, GPU, Python and library versions as one line (no git commit)."""
        packages = ", ".join(f"{name} {version}" for name, version in self.packages.items() if version)
        gpu = f", GPU {self.cuda}" if self.cuda else ""
        isa = f" ({', '.join(self.isa)})" if self.isa else ""
        return (f"{self.cpu}{isa}, {self.cpu_count} cores, torch threads {self.torch_threads}{gpu}, "
                f"Python {self.python}; {packages}")


@dataclass(kw_only=True)
class Measurement(Record):
    """Everything measured on one model (see `compressor.measure.measure_model`): headline figures typed, blocks
    (`size`, `latency`, `complexity`, `evaluation`) as the measurement module writes them."""

    accuracy: float
    top5: float | None = optional()
    precision_macro: float | None = optional()
    recall_macro: float | None = optional()
    f1_macro: float
    split: str | None = optional()
    samples: int | None = optional()
    correct: str | None = optional()  # per test image, right or not (measure.accuracy.pack_correct)
    accuracy_fp32: float | None = optional()
    metrics_from: str | None = optional()
    sparsity: float
    sparsity_all: float | None = optional()
    params_total: int | None = optional()
    params_nonzero: int
    macs: int
    macs_sparse: int | None = optional()
    size_bytes: int | None = optional()
    deployable_bytes: int
    input_size: int | None = optional()
    deploy_input_size: int | None = optional()
    measure_config: dict[str, Any]
    size: dict[str, Any] | None = optional()
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    complexity: dict[str, Any] | None = optional()
    evaluation: dict[str, Any] | None = optional()
    latency_ms: float | None = optional()
    latency_grid: dict[str, Any] | None = optional()
    int8_kernels: dict[str, Any] | None = optional()  # the int8 graph's kernels (measure.int8_kernels)
    checkpoint: str | None = optional()
    accuracy_before_recovery: float | None = optional()
    f1_macro_before_recovery: float | None = optional()
    extra: dict[str, Any] = extra_keys()

    def median_ms(self, backend: str) -> float | None:
        """The median latency on `backend` (torch, onnxruntime, onnxruntime-int8), None when not timed."""
        return self.latency.get(backend, {}).get("median_ms")

    @property
    def latency_torch_ms(self) -> float | None:
        return self.median_ms("torch")

    @property
    def latency_ort_ms(self) -> float | None:
        return self.median_ms("onnxruntime")

    @property
    def latency_int8_ms(self) -> float | None:
        return self.median_ms("onnxruntime-int8")

    @property
    def deployed_latency_ms(self) -> float | None:
        """The latency of the artifact one would deploy: ONNX Runtime (the int8 file when quantized), else torch."""
        for value in (self.latency_int8_ms, self.latency_ort_ms, self.latency_torch_ms):
            if value is not None:
                return value
        return None


@dataclass(kw_only=True)
class RunReport(Record):
    """The report of one `compressor run`: the pipeline applied, and baseline and result measured the same way."""

    schema: str = REPORT_SCHEMA
    created: str
    command: str | None = None
    strategy: str
    params: dict[str, dict[str, Any]]
    steps: list[StepReport]
    recovery: Recovery = field(default_factory=Recovery)
    model: ModelInfo
    dataset: DatasetInfo
    environment: Environment | None = optional()
    baseline: Measurement
    compressed: Measurement
    plots: dict[str, str] = field(default_factory=dict)
    deployment: dict[str, Any] | None = optional()
    # peak memory of the run's process after its strategies and recovery (compressor._util.memory.peak_memory)
    resources: dict[str, Any] | None = optional()
    extra: dict[str, Any] = extra_keys()

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> RunReport:
        foreign = _not_a_report(data)
        if foreign:
            raise SchemaError(f"{where.rstrip('.') or 'the object'} is {foreign}")
        return super().from_dict(data, where)


def _not_a_report(data: Any) -> str | None:
    """Why `data` is not a run report, or None when it claims to be one."""
    if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA:
        return None
    found = data.get("schema") if isinstance(data, dict) else type(data).__name__
    return f"not a run report (schema {found!r}; expected {REPORT_SCHEMA!r})"


def step_params(steps: list[StepReport]) -> dict[str, dict[str, Any]]:
    """The report's `params`: each step's parameters under its strategy name (`name#i` when a name repeats)."""
    params: dict[str, dict[str, Any]] = {}
    for step in steps:
        key = step.strategy if step.strategy not in params else f"{step.strategy}#{len(params) + 1}"
        params[key] = step.params
    return params


def read_run_report(path: str | Path) -> RunReport:
    """The run report in `path`; CompressorError (one line) if it is missing, not JSON, foreign or malformed."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CompressorError(f"run report {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompressorError(f"run report {path} is not readable JSON ({exc})") from None
    foreign = _not_a_report(data)
    if foreign:
        raise CompressorError(f"{path} is {foreign}")
    try:
        return RunReport.from_dict(data)
    except SchemaError as exc:
        raise CompressorError(f"run report {path} is malformed: {exc}") from None


def write_run_report(report: RunReport, path: str | Path) -> Path:
    """Write `report` as JSON to `path` atomically."""
    return write_json_atomic(report.to_dict(), path)


@dataclass(kw_only=True)
class CellRecord(Record):
    """One finished sweep cell (`DIR/cells/KEY.json`): its settings, command, and the run report or the error."""

    schema: str = CELL_SCHEMA
    key: str
    command: list[str] | None = optional()
    cell: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = optional()
    status: str
    report: RunReport | None = optional()
    returncode: int | None = optional()
    error: str | None = optional()
    extra: dict[str, Any] = extra_keys()


def read_cell_records(sweep_dir: Path) -> dict[str, CellRecord]:
    """Recorded cells of a sweep directory (key -> record). A damaged record (unreadable, foreign, malformed: only
    possible by hand-editing, as records are written atomically) is left out, so its cell runs again."""
    records = {}
    for path in sorted((Path(sweep_dir) / "cells").glob("*.json")):
        data = read_cached_json(path)
        if not isinstance(data, dict) or data.get("schema") != CELL_SCHEMA:
            continue
        try:
            record = CellRecord.from_dict(data)
        except SchemaError:
            continue
        records[record.key] = record
    return records


SHOWN_PARAMS = ("amount", "preset", "blocks", "pattern", "importance", "scope", "n", "m")


def _params_text(steps: list[StepReport]) -> str:
    """`step.key=value` for the parameters a reader needs to tell runs apart: the usual ones (amount, scope, ...)
    and any other the run set away from the strategy's default (e.g. `obd.fisher=sampled`)."""
    return " ".join(f"{step.strategy}.{k}={v}" for step in steps for defaults in [_declared_defaults(step.strategy)]
                    for k, v in step.params.items()
                    if (k in SHOWN_PARAMS and v not in ("", None, "none"))
                    or (k in defaults and v != defaults[k]))


@functools.cache
def _declared_defaults(strategy: str) -> dict[str, Any]:
    """The defaults a registered strategy declares for its parameters; {} for one not installed here."""
    from compressor.strategies.registry import get_strategy

    try:
        return {param.name: param.default for param in get_strategy(strategy).params}
    except CompressorError:
        return {}


def _last_amount(steps: list[StepReport]) -> float | None:
    amounts = [step.params["amount"] for step in steps if isinstance(step.params.get("amount"), (int, float))]
    return float(amounts[-1]) if amounts else None


def timed_under_load(report: Any) -> bool | None:
    """Whether any timing in a report dict (baseline, compressed, deployment size) ran under load; None when no
    timing recorded its load (reports written before the check)."""
    flags: list[bool] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            load = node.get("load")
            if isinstance(load, dict) and load.get("checked"):
                flags.append(bool(load.get("under_load")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return any(flags) if flags else None


# in a row only when its run recorded them; not in results.csv
OPTIONAL_COLUMNS = ("correct", "peak_rss_bytes", "int8_kernel_share")


@dataclass(kw_only=True)
class RunRow:
    """One run as a flat row: the columns of results.json, results.csv and a sweep's results.jsonl, in order."""

    pipeline: str
    params: str
    finetune_epochs: float
    accuracy: float
    accuracy_before_recovery: float | None
    f1_macro: float
    sparsity: float
    params_nonzero: int
    macs: int
    deployable_bytes: int
    latency_torch_ms: float | None
    latency_ort_ms: float | None
    latency_int8_ms: float | None
    baseline_accuracy: float
    baseline_deployable_bytes: int
    baseline_latency_torch_ms: float | None
    baseline_latency_ort_ms: float | None
    deployed_latency_ms: float | None
    baseline_deployed_latency_ms: float | None
    fp32_bytes: int | None
    strategy_seconds: float
    arch: str
    dataset: str
    input_size: int
    seed: int
    command: str | None
    source: str
    checkpoint: str | None
    baseline_checkpoint: str | None
    machine: str | None
    git_commit: str | None
    amount: float | None = None  # the last step's `amount` parameter, if any step has one
    samples: int | None = None  # test images the accuracy was measured on (for its binomial standard error)
    num_classes: int | None = None
    baseline_seed: int | None = None  # of the cached baseline's training; None: a given checkpoint or not recorded
    baseline_macs: int | None = None
    # BatchNorm recalibrated after pruning, by the recovery or inside a strategy (a step record with bn_images);
    # None: a row written before this column existed
    bn_recalibrated: bool | None = None
    # another process used more than a tenth of a core during one of the run's timings (None: not checked)
    timed_under_load: bool | None = None
    correct: str | None = None  # which test images the deployed model got right (McNemar pairs); not in the CSV
    # peak resident memory of the run's process through its strategies and recovery (None: not recorded); not in
    # the CSV
    peak_rss_bytes: int | None = None
    # share of the deployed int8 graph's profiled time spent in integer kernels (None: no int8, or not recorded); not
    # in the CSV
    int8_kernel_share: float | None = None

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_report(cls, report: RunReport, source: str = "") -> RunRow:
        base, comp, env = report.baseline, report.compressed, report.environment
        return cls(
            pipeline=report.strategy, params=_params_text(report.steps),
            finetune_epochs=report.recovery.finetune_epochs, accuracy=comp.accuracy,
            accuracy_before_recovery=comp.accuracy_before_recovery, f1_macro=comp.f1_macro, sparsity=comp.sparsity,
            params_nonzero=comp.params_nonzero, macs=comp.macs, deployable_bytes=comp.deployable_bytes,
            latency_torch_ms=comp.latency_torch_ms, latency_ort_ms=comp.latency_ort_ms,
            latency_int8_ms=comp.latency_int8_ms, baseline_accuracy=base.accuracy,
            baseline_deployable_bytes=base.deployable_bytes, baseline_latency_torch_ms=base.latency_torch_ms,
            baseline_latency_ort_ms=base.latency_ort_ms, deployed_latency_ms=comp.deployed_latency_ms,
            baseline_deployed_latency_ms=base.deployed_latency_ms, fp32_bytes=comp.size_bytes,
            strategy_seconds=round(sum(step.seconds for step in report.steps), 1), arch=report.model.arch,
            dataset=report.dataset.name, input_size=report.model.input_size, seed=report.model.seed,
            command=report.command, source=source, checkpoint=comp.checkpoint, baseline_checkpoint=base.checkpoint,
            machine=env.machine_text() if env else None,
            git_commit=None if env is None or env.git_commit is None
            else env.git_commit + (" (uncommitted changes)" if env.git_dirty else ""),
            amount=_last_amount(report.steps), samples=report.dataset.samples, num_classes=report.model.num_classes,
            baseline_seed=report.model.baseline_seed, baseline_macs=base.macs,
            bn_recalibrated=bool(report.recovery.bn_recalibrate
                                 or any("bn_images" in step.record for step in report.steps)),
            timed_under_load=timed_under_load(report.to_dict()), correct=comp.correct,
            peak_rss_bytes=(report.resources or {}).get("peak_rss_bytes"),
            int8_kernel_share=(comp.int8_kernels or {}).get("profile_int8_share"))

    @classmethod
    def csv_columns(cls) -> tuple[str, ...]:
        """The columns of results.csv: all but those only some runs record (the per-image record, peak memory, the
        int8 kernel share)."""
        return tuple(c for c in cls.columns() if c not in OPTIONAL_COLUMNS)

    def as_dict(self) -> dict[str, Any]:
        """The row as a mapping; `correct`, `peak_rss_bytes` and `int8_kernel_share` only when the run recorded
        them (rows of older reports stay as they were)."""
        row = dataclasses.asdict(self)
        for key in OPTIONAL_COLUMNS:
            if row[key] is None:
                del row[key]
        return row
