"""Fixtures and options for the latency suites: trained digits baselines and their compressed variants, exported.

Options (pytest command line; `pytest benchmarks --help` lists them under "options of the latency suites"):
  --bench-smoke           one-epoch baselines in a temporary cache, one round per benchmark (`make test`)
  --bench-sizes 32,224    input sizes (px) to time at; accuracy is always measured at the model's training size
  --bench-archs resnet18  architectures (resnet18, densenet201)
  --bench-batches 1,8     batch sizes
  --bench-variants ...    a subset of VARIANTS (default all)
  --bench-threads N       torch and ONNX Runtime intra-op threads (default: torch's count, i.e. all cores unless
                          OMP_NUM_THREADS says otherwise)

Every variant is built once per session from the trained digits baseline, with the framework's own
`apply_steps` and `recover` (BatchNorm re-estimated after structural steps, as `compressor run` does by default),
and exported to ONNX at each bench size; `int8` and `chain` end with int8, so their deployed artifact is the
quantized ONNX model (calibrated with `int8_plan`'s batches, as `compressor run` does) and they exist only under
ONNX Runtime.

With `--benchmark-compare --benchmark-compare-fail=...` (`make bench-compare`), the run also fails when none of the
benchmarks that ran is in the saved run it compares with (pytest-benchmark alone would pass, comparing nothing),
and the summary says how many were compared.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from compressor.api import int8_plan
from compressor.data import Dataset, default_cache_dir, load_dataset
from compressor.measure.accuracy import evaluate, onnx_forward, torch_forward
from compressor.measure.complexity import complexity
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.harness import Int8Plan
from compressor.measure.latency import onnxruntime_session
from compressor.measure.size import write_artifacts
from compressor.models.baselines import BaselineRequest, get_baseline
from compressor.models.checkpoint import Checkpoint, dataset_for_arch
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.recover import recover
from compressor.strategies.registry import StrategyContext
from compressor.strategies.steps import Step, apply_steps

ARCHS = ("resnet18", "densenet201")


# int8 calibration pinned to minmax: the method moves scales, not the graph, so latency does not depend on it
# (the framework's default, auto, would quantize three times per variant to choose)
INT8 = Step("int8", {"calibration": "minmax"})


# variant name -> the pipeline applied to a copy of the trained baseline (the order is the pipeline's order)
PIPELINES: dict[str, tuple[Step, ...]] = {
    "dense": (),
    "l1-0.5": (Step("l1", {"amount": 0.5}),),
    "channels-0.5": (Step("channels", {"amount": 0.5}),),
    "channels-0.7": (Step("channels", {"amount": 0.7}),),
    "blocks-0.5": (Step("blocks", {"amount": 0.5}),),
    "int8": (INT8,),
    "chain": (Step("blocks", {"amount": 0.5}), Step("l1", {"amount": 0.5}), INT8),
}
VARIANTS = tuple(PIPELINES)
FULL_SIZES = (32, 224)
SMOKE_SIZES = (32, 64)  # the training size and one other, so the "export at a size of its own" path runs too
SEED = 0

_REMOVED_ENV = {"COMPRESSOR_BENCH_SMOKE": "--bench-smoke", "COMPRESSOR_BENCH_INPUT": "--bench-sizes N"}


@dataclass(frozen=True)
class BenchOptions:
    """The suite's options, parsed and checked."""

    smoke: bool = False
    sizes: tuple[int, ...] = FULL_SIZES
    archs: tuple[str, ...] = ("resnet18",)
    batches: tuple[int, ...] = (1, 8)
    variants: tuple[str, ...] = VARIANTS
    threads: int = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compressor benchmarks", "options of the latency suites in benchmarks/")
    group.addoption("--bench-smoke", action="store_true", default=False,
                    help="one-epoch baselines in a temporary cache and one round per benchmark (for `make test`); "
                         f"sizes default to {','.join(map(str, SMOKE_SIZES))}")
    group.addoption("--bench-sizes", default=None, metavar="PX[,PX...]",
                    help=f"input sizes in px to time at (default {','.join(map(str, FULL_SIZES))}; "
                         f"{','.join(map(str, SMOKE_SIZES))} with --bench-smoke)")
    group.addoption("--bench-archs", default="resnet18", metavar="ARCH[,ARCH...]",
                    help=f"architectures, of {', '.join(ARCHS)} (default resnet18; densenet201 is slow at 224 px)")
    group.addoption("--bench-batches", default="1,8", metavar="N[,N...]", help="batch sizes (default 1,8)")
    group.addoption("--bench-variants", default=",".join(VARIANTS), metavar="NAME[,NAME...]",
                    help=f"model variants, of {', '.join(VARIANTS)} (default all)")
    group.addoption("--bench-threads", default=None, metavar="N",
                    help="intra-op threads of torch and ONNX Runtime (default: torch's thread count, i.e. all "
                         "cores unless OMP_NUM_THREADS says otherwise)")


def _items(option: str, raw: str) -> list[str]:
    items = [item.strip() for item in str(raw).split(",") if item.strip()]
    if not items:
        raise pytest.UsageError(f"{option} needs at least one value; got {raw!r}")
    return list(dict.fromkeys(items))


def _positive_ints(option: str, raw: str) -> tuple[int, ...]:
    values = []
    for item in _items(option, raw):
        try:
            value = int(item)
        except ValueError:
            raise pytest.UsageError(f"{option} takes positive integers separated by commas; got {item!r}") from None
        if value <= 0:
            raise pytest.UsageError(f"{option} takes positive integers separated by commas; got {value}")
        values.append(value)
    return tuple(values)


def _choices(option: str, raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = _items(option, raw)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise pytest.UsageError(f"{option}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}")
    return tuple(items)


def parse_options(getoption: Callable[[str], Any], environ: dict[str, str] | None = None) -> BenchOptions:
    """The suite's options from `config.getoption`; a bad value is a `pytest.UsageError` naming the option."""
    environ = os.environ if environ is None else environ
    for name, replacement in _REMOVED_ENV.items():
        if environ.get(name):
            raise pytest.UsageError(f"{name} is no longer read by benchmarks/; pass {replacement} instead")
    smoke = bool(getoption("--bench-smoke"))
    sizes_raw = getoption("--bench-sizes")
    sizes = (_positive_ints("--bench-sizes", sizes_raw) if sizes_raw is not None
             else SMOKE_SIZES if smoke else FULL_SIZES)
    threads_raw = getoption("--bench-threads")
    threads = torch.get_num_threads()
    if threads_raw is not None:
        if len(_items("--bench-threads", threads_raw)) != 1:
            raise pytest.UsageError(f"--bench-threads takes one positive integer; got {threads_raw!r}")
        threads = _positive_ints("--bench-threads", threads_raw)[0]
    return BenchOptions(smoke=smoke, sizes=sizes, archs=_choices("--bench-archs", getoption("--bench-archs"), ARCHS),
                        batches=_positive_ints("--bench-batches", getoption("--bench-batches")),
                        variants=_choices("--bench-variants", getoption("--bench-variants"), VARIANTS),
                        threads=threads)


OPTIONS = pytest.StashKey[BenchOptions]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[OPTIONS] = parse_options(config.getoption)


def bench_options_of(config: pytest.Config) -> BenchOptions:
    """The parsed options of this session (parsed when pytest loaded this conftest)."""
    return config.stash[OPTIONS]


@pytest.fixture(scope="session")
def bench_options(request: pytest.FixtureRequest) -> BenchOptions:
    return bench_options_of(request.config)


_NOTHING_COMPARED = pytest.StashKey[str]()


def _comparison(config: pytest.Config) -> tuple[int, int, list[str]] | None:
    """With --benchmark-compare: (benchmarks that ran, how many of them the saved run has, its files); else None.

    Reads pytest-benchmark's session object (`config._benchmarksession`, there since 3.x); None if it changed."""
    session = getattr(config, "_benchmarksession", None)
    mapping = getattr(session, "compared_mapping", None)
    if not config.getoption("benchmark_compare", None) or not isinstance(mapping, dict):
        return None
    saved = {name for names in mapping.values() for name in names}
    ran = [bench.fullname for bench in getattr(session, "benchmarks", []) if bench]
    return len(ran), sum(name in saved for name in ran), [str(path) for path in mapping]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """`--benchmark-compare-fail` passes vacuously when the saved run has none of these benchmarks (renamed
    parametrizations, an old run): fail instead, so `make bench-compare` is never green without comparing."""
    counts = _comparison(session.config)
    if counts is None or not session.config.getoption("benchmark_compare_fail", None):
        return
    ran, compared, files = counts
    if ran and not compared and exitstatus == pytest.ExitCode.OK:
        session.config.stash[_NOTHING_COMPARED] = (
            f"none of the {ran} benchmarks that ran is in the saved run ({', '.join(files) or 'none found'}): "
            "nothing was compared; save a run with these benchmarks first (`make bench`)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> Any:
    """After pytest-benchmark's tables (and even when its regression check raises): what was compared."""
    try:
        return (yield)
    finally:
        counts = _comparison(config)
        if counts is not None:
            ran, compared, files = counts
            terminalreporter.write_line(f"benchmark comparison: {compared} of {ran} benchmarks compared with "
                                        f"{', '.join(files) or 'no saved run'}")
        if _NOTHING_COMPARED in config.stash:
            terminalreporter.write_line(f"ERROR: {config.stash[_NOTHING_COMPARED]}", red=True)


def ends_with_int8(variant: str) -> bool:
    """Whether the variant's deployed artifact is the int8 ONNX model (so it exists only under ONNX Runtime)."""
    steps = PIPELINES[variant]
    return bool(steps) and steps[-1].strategy == "int8"


@dataclass
class Variant:
    """One compressed (or dense) model built from the trained baseline, with the facts that do not depend on size."""

    arch: str
    name: str
    model: nn.Module
    dataset: Dataset
    spec_in_channels: int
    num_classes: int
    train_size: int
    steps: list[dict[str, Any]]  # each applied step: strategy and its full parameters
    int8: Int8Plan | None
    file_bytes: dict[str, int]  # state_dict artifacts (fp32, fp32-sparse, fp16, fp16-sparse)
    accuracy: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchModel:
    """A variant ready to time at one input size: torch module, deployed ONNX file and the facts to attach."""

    variant: Variant
    input_size: int
    onnx_path: Path  # the deployed ONNX model: int8 when the pipeline ends with int8
    extra_info: dict[str, Any]

    @property
    def model(self) -> nn.Module:
        return self.variant.model

    @property
    def in_channels(self) -> int:
        return self.variant.spec_in_channels

    def session(self, threads: int) -> Any:
        """A fresh ONNX Runtime session on the deployed ONNX model."""
        return onnxruntime_session(self.onnx_path, threads)


class BenchSuite:
    """Builds baselines, variants and per-size exports lazily, each once per session."""

    def __init__(self, options: BenchOptions, digits: Dataset, cache_dir: Path | None, scratch: Path) -> None:
        self.options, self.digits, self.cache_dir, self.scratch = options, digits, cache_dir, scratch
        self._baselines: dict[str, tuple[Checkpoint, Dataset]] = {}
        self._variants: dict[tuple[str, str], Variant] = {}
        self._exports: dict[tuple[str, str, int], tuple[Path, Path]] = {}
        self._subjects: dict[tuple[str, str, int], BenchModel] = {}

    def baseline(self, arch: str) -> tuple[Checkpoint, Dataset]:
        """The trained digits baseline of `arch` (cached on disk; one epoch in a temporary cache when smoke)."""
        if arch not in self._baselines:
            dataset, _ = dataset_for_arch(self.digits, arch)
            request = BaselineRequest(arch=arch, epochs=1 if self.options.smoke else None, seed=SEED)
            checkpoint, _ = get_baseline(request, dataset, cache_dir=self.cache_dir, show_progress=False)
            checkpoint.model.cpu().eval()
            self._baselines[arch] = (checkpoint, dataset)
        return self._baselines[arch]

    def variant(self, arch: str, name: str) -> Variant:
        """The baseline with `name`'s pipeline applied the way `compressor run` applies it (no fine-tuning)."""
        key = (arch, name)
        if key not in self._variants:
            checkpoint, dataset = self.baseline(arch)
            spec, steps = checkpoint.spec, list(PIPELINES[name])
            model = copy.deepcopy(checkpoint.model)
            records: list[dict[str, Any]] = []
            plan = None
            if steps:
                torch.manual_seed(SEED)
                context = StrategyContext.for_dataset(dataset, spec.input_size, seed=SEED,
                                                      cache_dir=self.cache_dir or default_cache_dir())
                model, records, deploy = apply_steps(model, steps, context)
                recover(model, dataset.train, spec.input_size, RecoveryConfig(seed=SEED).resolved(steps))
                plan = int8_plan(deploy["int8"], dataset.train, SEED) if "int8" in deploy else None
            model.cpu().eval()
            directory = self.scratch / f"{arch}-{name}"
            files = write_artifacts(model, directory, in_channels=spec.in_channels, input_size=spec.input_size,
                                    onnx=False)
            self._variants[key] = Variant(
                arch=arch, name=name, model=model, dataset=dataset, spec_in_channels=spec.in_channels,
                num_classes=spec.num_classes, train_size=spec.input_size,
                steps=[{"strategy": r["strategy"], "params": r["params"]} for r in records], int8=plan,
                file_bytes={kind: path.stat().st_size for kind, (path, _) in files.items()})
        return self._variants[key]

    def exports(self, arch: str, name: str, size: int) -> tuple[Path, Path]:
        """The fp32 ONNX export at `size` px and the deployed one (the int8 quantization of it, or the same file)."""
        key = (arch, name, size)
        if key not in self._exports:
            variant = self.variant(arch, name)
            directory = self.scratch / f"{arch}-{name}" / f"{size}px"
            fp32 = export_onnx(variant.model, directory / "model.onnx", variant.spec_in_channels, size)
            deployed = fp32
            if variant.int8 is not None:
                deployed = quantize_onnx_int8(fp32, directory / "model.int8.onnx", variant.int8.calibration(size),
                                              per_channel=variant.int8.per_channel, method=variant.int8.method)
            self._exports[key] = (fp32, deployed)
        return self._exports[key]

    def accuracy(self, arch: str, name: str) -> dict[str, float]:
        """Test accuracy at the training size, of the deployed model (the int8 ONNX model for int8 pipelines)."""
        variant = self.variant(arch, name)
        if not variant.accuracy:
            split, size = variant.dataset.test, variant.train_size
            fp32 = evaluate(torch_forward(variant.model), split, size)
            result = {"accuracy": fp32["accuracy"], "f1_macro": fp32["f1_macro"]}
            if variant.int8 is not None:
                _, deployed = self.exports(arch, name, size)
                int8 = evaluate(onnx_forward(onnxruntime_session(deployed, self.options.threads)), split, size)
                result = {"accuracy": int8["accuracy"], "f1_macro": int8["f1_macro"],
                          "accuracy_fp32": fp32["accuracy"]}
            variant.accuracy = result
        return variant.accuracy

    def subject(self, arch: str, name: str, size: int) -> BenchModel:
        """`name` of `arch` exported at `size` px, with accuracy, sparsity, MACs and file sizes described."""
        key = (arch, name, size)
        if key not in self._subjects:
            variant = self.variant(arch, name)
            fp32, deployed = self.exports(arch, name, size)
            cx = complexity(variant.model, variant.spec_in_channels, size)
            info = {
                "arch": arch, "variant": name, "dataset": "digits", "input_size": size,
                "train_input_size": variant.train_size, "smoke": self.options.smoke,
                "pipeline": "+".join(s["strategy"] for s in variant.steps) or "none", "steps": variant.steps,
                **self.accuracy(arch, name),
                **{k: cx[k] for k in ("sparsity", "params_total", "params_nonzero", "macs", "macs_sparse")},
                **{f"size_{kind}_bytes": size_bytes for kind, size_bytes in variant.file_bytes.items()},
                "size_onnx_bytes": fp32.stat().st_size,
            }
            if variant.int8 is not None:
                info.update({"size_onnx-int8_bytes": deployed.stat().st_size,
                             "int8_calibration": variant.int8.method,
                             "int8_per_channel": variant.int8.per_channel})
            self._subjects[key] = BenchModel(variant, size, deployed, info)
        return self._subjects[key]


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def bench_suite(bench_options: BenchOptions, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> BenchSuite:
    cache = tmp_path_factory.mktemp("bench-cache") if bench_options.smoke else None
    return BenchSuite(bench_options, digits, cache, tmp_path_factory.mktemp("bench-models"))


@pytest.fixture(scope="session")
def bench_model(bench_suite: BenchSuite) -> Callable[[str, str, int], BenchModel]:
    """`bench_model(arch, variant, size)`: the variant exported at `size` px and described (built once)."""
    return bench_suite.subject

