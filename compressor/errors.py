"""The two exception types the CLI turns into one line: usage errors (exit 2) and runtime failures (exit 1)."""


class CompressorError(Exception):
    """A problem caused by user input (bad option, missing file, unfit strategy), never by a bug: exit code 2."""


class RuntimeFailure(CompressorError):
    """A failure while doing valid work (full disk, diverged training, a failed sweep cell): exit code 1."""
