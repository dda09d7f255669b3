"""Sweeps: a grid of pipelines x amounts x architectures x datasets x fine-tuning, one `compressor run` per cell.

Every cell runs in its own process (its own seed, memory and failure) and is recorded as `DIR/cells/KEY.json`,
written atomically when the cell finishes; `DIR/results.jsonl` is rebuilt atomically from those files. A sweep
killed at any moment therefore resumes where it stopped, and no cell is ever recorded twice. `--shard i/n` runs
every n-th cell, so shards on different machines share the work; merging their directories is a file copy.
`jobs` > 1 runs that many cells at once, each with its share of the CPU threads (and its own GPU when there are
several); with `timing="serial"` a cell times only while no other cell computes (`compressor._util.timing_gate`).
"""

from compressor.report.schema import CELL_SCHEMA  # noqa: F401  (the schema of DIR/cells/KEY.json)
from compressor.sweep.grid import (
    BN_FLAGS,
    Cell,
    Pipeline,
    SweepSpec,
    cell_command,
    check_cell_timeout,
    load_grid,
    override_run_args,
    parse_shard,
    sweep_bn_flag,
    validate,
    write_recovery_file,
)
from compressor.sweep.runner import Timing, job_env, kill_tree, pending_cells, run_cell, run_sweep, write_results

__all__ = ["BN_FLAGS", "CELL_SCHEMA", "Cell", "Pipeline", "SweepSpec", "Timing", "cell_command", "check_cell_timeout",
           "job_env", "kill_tree", "load_grid", "override_run_args", "parse_shard", "pending_cells", "run_cell",
           "run_sweep", "sweep_bn_flag", "validate", "write_recovery_file", "write_results"]
