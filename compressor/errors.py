"""The one exception type for mistakes a user can make; the CLI turns it into a single line and exit code 2."""


class CompressorError(Exception):
    """A problem caused by user input (bad option, missing file, unfit strategy), never by a bug."""
