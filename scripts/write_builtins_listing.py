"""Rewrite compressor/cli/builtins.json, what `compressor list` prints for the built-ins without importing torch.

Run it after adding or changing a built-in strategy, architecture or dataset, with no plugin installed;
tests/cli/test_listing.py fails until the file equals the live registries.

    usage: .venv/bin/python scripts/write_builtins_listing.py
"""

from compressor.cli.listing import write_builtins

if __name__ == "__main__":
    print(write_builtins())
