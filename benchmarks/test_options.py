"""The suite's command-line options: defaults, and a clear usage error for every bad value."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from benchmarks.conftest import FULL_SIZES, SMOKE_SIZES, VARIANTS, BenchOptions, parse_options

DEFAULTS = {"--bench-smoke": False, "--bench-sizes": None, "--bench-archs": "resnet18", "--bench-batches": "1,8",
            "--bench-variants": ",".join(VARIANTS), "--bench-threads": None}


def parse(environ: dict[str, str] | None = None, **given: Any) -> BenchOptions:
    values = {**DEFAULTS, **{f"--bench-{key.replace('_', '-')}": value for key, value in given.items()}}
    return parse_options(values.__getitem__, environ or {})


def test_defaults() -> None:
    options = parse()
    assert options == BenchOptions(smoke=False, sizes=FULL_SIZES, archs=("resnet18",), batches=(1, 8),
                                   variants=VARIANTS, threads=torch.get_num_threads())
    assert parse(smoke=True).sizes == SMOKE_SIZES


def test_lists_are_parsed_and_deduplicated() -> None:
    options = parse(sizes="224, 32,224", archs="densenet201,resnet18", batches="4", variants="int8,dense",
                    threads="3")
    assert (options.sizes, options.archs, options.batches, options.variants, options.threads) == (
        (224, 32), ("densenet201", "resnet18"), (4,), ("int8", "dense"), 3)


@pytest.mark.parametrize(("given", "message"), [
    ({"sizes": "0"}, "--bench-sizes takes positive integers"),
    ({"sizes": "32,-224"}, "--bench-sizes takes positive integers"),
    ({"sizes": "32px"}, "--bench-sizes takes positive integers"),
    ({"sizes": ","}, "--bench-sizes needs at least one value"),
    ({"batches": "0"}, "--bench-batches takes positive integers"),
    ({"archs": "resnet50"}, "--bench-archs: unknown 'resnet50'; choose from resnet18, densenet201"),
    ({"variants": "dense,l1"}, "--bench-variants: unknown 'l1'"),
    ({"threads": "0"}, "--bench-threads takes positive integers"),
    ({"threads": "1,2"}, "--bench-threads takes one positive integer"),
])
def test_bad_values_are_usage_errors(given: dict[str, str], message: str) -> None:
    with pytest.raises(pytest.UsageError, match=message):
        parse(**given)


def test_the_old_environment_variables_fail_loudly() -> None:
    with pytest.raises(pytest.UsageError, match="COMPRESSOR_BENCH_SMOKE .* pass --bench-smoke"):
        parse({"COMPRESSOR_BENCH_SMOKE": "1"})
    with pytest.raises(pytest.UsageError, match="COMPRESSOR_BENCH_INPUT .* pass --bench-sizes"):
        parse({"COMPRESSOR_BENCH_INPUT": "224"})
