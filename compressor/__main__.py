"""`python -m compressor` runs the CLI."""

from compressor.cli import main

main()
