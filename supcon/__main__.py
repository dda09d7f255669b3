"""`python -m supcon` runs the command line (also under torchrun)."""

from supcon.cli import main

main()
