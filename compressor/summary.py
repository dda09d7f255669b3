"""Moved to `compressor.report.summary`; this path stays until the CLI imports from there."""

from compressor.report.summary import write_summary

__all__ = ["write_summary"]
