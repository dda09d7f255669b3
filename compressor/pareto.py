"""Moved to `compressor.report.pareto`; this path stays until the CLI imports from there."""

from compressor.report.pareto import pick_under_budget

__all__ = ["pick_under_budget"]
