"""`compressor` command line: a thin typer layer over the Python API.

`options` holds what every command shares; `compress` (run, bench, train), `listing` (list), `results` (report,
sweep) and `competition` (export, score) hold the commands, which are registered on `app` here. Exit codes: 0 success,
1 runtime failure, 2 usage error, 130 interrupted (see `options.run_app`).
"""

from __future__ import annotations

from compressor.cli.competition import export_command, score_command
from compressor.cli.compress import bench_command, run_command, train_command
from compressor.cli.listing import list_command
from compressor.cli.options import new_app, record_argv, run_app
from compressor.cli.results import report_command, sweep_command

app = new_app("Compress image classifiers and measure what each recipe costs and buys.")
app.command("run")(run_command)
app.command("bench")(bench_command)
app.command("train")(train_command)
app.command("list")(list_command)
app.command("report")(report_command)
app.command("sweep")(sweep_command)
app.command("export")(export_command)
app.command("score")(score_command)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and exit code 1 (runtime failure) or 2 (usage error), never a
    traceback."""
    record_argv(argv)
    run_app(app, "compressor", argv)
