"""Evidence that a quantized ONNX model runs int8 kernels: ONNX Runtime's optimized graph and a profile of it.

A QDQ model only pays if ONNX Runtime fuses DequantizeLinear → Conv → QuantizeLinear into integer kernels
(QLinearConv, or ConvInteger/MatMulInteger); a Conv left in float between dequantize and quantize nodes runs the
fp32 kernel plus conversion overhead. This module reads what the session actually executes.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

INT8_COMPUTE = ("QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
                "QGemm", "DynamicQuantizeMatMul", "NhwcQLinearConv", "QLinearAdd", "QLinearGlobalAveragePool")
FLOAT_COMPUTE = ("Conv", "FusedConv", "NhwcFusedConv", "Gemm", "MatMul", "FusedGemm", "FusedMatMul")


def session_options_record(options: Any) -> dict[str, Any]:
    """The ONNX Runtime session options that decide which kernels run, as JSON-able facts."""
    return {"graph_optimization_level": str(options.graph_optimization_level).split(".")[-1],
            "intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "execution_mode": str(options.execution_mode).split(".")[-1]}


def int8_kernel_report(onnx_path: str | Path, input_shape: tuple[int, ...], *, threads: int = 1,
                       profile_runs: int = 5) -> dict[str, Any]:
    """Op counts of the graph ONNX Runtime runs for `onnx_path` and the profiled time per op type.

    `int8_compute_ops` counts integer compute kernels, `float_compute_ops` float ones; `runs_int8` is True when
    every conv/matmul-like node of the optimized graph is an integer kernel.
    """
    import onnx
    import onnxruntime as ort

    from compressor.measure.latency import onnxruntime_session

    with tempfile.TemporaryDirectory(prefix="compressor-int8-") as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        session = onnxruntime_session(onnx_path, threads, optimized_model_path=optimized)
        options = session.get_session_options()
        graph = onnx.load(str(optimized), load_external_data=False).graph
        ops = Counter(node.op_type for node in graph.node)
        profiling = ort.SessionOptions()
        profiling.enable_profiling = True
        profiling.profile_file_prefix = str(Path(scratch) / "profile")
        profiling.intra_op_num_threads = threads
        profiling.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        profiled = ort.InferenceSession(str(onnx_path), profiling, providers=["CPUExecutionProvider"])
        feed = {profiled.get_inputs()[0].name: np.random.default_rng(0).standard_normal(input_shape,
                                                                                         dtype=np.float32)}
        for _ in range(profile_runs):
            profiled.run(None, feed)
        events = json.loads(Path(profiled.end_profiling()).read_text())
    by_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"].get("op_name", "?")] += event["dur"] / 1e3 / profile_runs
    int8_ops = {op: n for op, n in ops.items() if op in INT8_COMPUTE}
    float_ops = {op: n for op, n in ops.items() if op in FLOAT_COMPUTE}
    total = sum(by_op.values()) or 1.0
    return {"optimized_op_counts": dict(sorted(ops.items())), "int8_compute_ops": int8_ops,
            "float_compute_ops": float_ops, "runs_int8": bool(int8_ops) and not float_ops,
            "profile_ms_per_run_by_op": {op: round(ms, 4) for op, ms in by_op.most_common()},
            "profile_int8_share": round(sum(ms for op, ms in by_op.items() if op in INT8_COMPUTE) / total, 4),
            "profile_runs": profile_runs, "input_shape": list(input_shape),
            "session_options": session_options_record(options)}
