"""Reports of runs: the typed schema and its reader, rich tables, summaries over many runs, Pareto picks, plots.

    schema    RunReport / Measurement / CellRecord / RunRow dataclasses, read_run_report, read_cell_records
    tables    rich tables of a run report and of a single-model benchmark
    summary   write_summary: results.json / results.csv / README.md / tradeoffs.png over many runs
    pareto    Pareto fronts and budget picks over rows
    plots     every matplotlib figure (object-oriented API: importing or plotting never switches the backend)

Importing this package does not import matplotlib.
"""

from compressor.report.schema import REPORT_SCHEMA, RunReport, read_run_report, write_run_report
from compressor.report.tables import (
                                      accuracy_table,
                                      bench_renderables,
                                      complexity_table,
                                      deployment_table,
                                      grid_table,
                                      latency_table,
                                      run_table,
                                      sensitivity_table,
                                      size_table,
)

__all__ = ["REPORT_SCHEMA", "RunReport", "accuracy_table", "bench_renderables", "complexity_table",
           "deployment_table", "grid_table", "latency_table", "read_run_report", "run_table", "sensitivity_table",
           "size_table", "write_run_report"]
