"""The per-variant checks of test_latency.py fail when a variant is not what it claims (they are not vacuous)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks.test_latency import check_variant

DENSE = {"sparsity": 0.0, "macs": 1000, "params_total": 100, "size_onnx_bytes": 400}


def subject(name: str, strategies: list[str], **info: Any) -> Any:
    variant = SimpleNamespace(name=name, steps=[{"strategy": s, "params": {}} for s in strategies])
    return SimpleNamespace(variant=variant, extra_info={**DENSE, **info})


DENSE_SUBJECT = subject("dense", [])


@pytest.mark.parametrize(("claimed", "message"), [
    (subject("dense", [], sparsity=0.3), "the dense model has 30.0% zero weights"),
    (subject("l1-0.5", ["l1"], sparsity=0.1), "only 10.0% of the weights are zero"),
    (subject("channels-0.5", ["channels"], macs=1000, params_total=50), "1000 MACs, dense has 1000"),
    (subject("blocks-0.5", ["blocks"], macs=500, params_total=100), "as many parameters as dense"),
    (subject("int8", ["int8"], **{"size_onnx-int8_bytes": 300}), "not under half the fp32 one"),
    (subject("chain", ["blocks", "l1", "int8"], sparsity=0.5, macs=1200, params_total=50,
             **{"size_onnx-int8_bytes": 100}), "1200 MACs"),
])
def test_a_variant_that_is_not_what_it_claims_fails(claimed: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_variant(claimed, DENSE_SUBJECT)


def test_variants_that_are_what_they_claim_pass() -> None:
    check_variant(DENSE_SUBJECT, DENSE_SUBJECT)
    check_variant(subject("chain", ["blocks", "l1", "int8"], sparsity=0.5, macs=500, params_total=50,
                          **{"size_onnx-int8_bytes": 100}), DENSE_SUBJECT)
