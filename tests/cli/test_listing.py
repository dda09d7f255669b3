"""`compressor list` answers from the committed listing of the built-ins, which must equal the live registries, and
falls back to the registries when a plugin is installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compressor.cli import listing


def test_the_committed_builtins_equal_the_live_registries() -> None:
    assert not listing.plugins_installed(), "the test environment must have no plugin installed"
    assert json.loads(listing.BUILTINS.read_text()) == listing.live_catalog(), \
        "compressor/cli/builtins.json is stale: run `python scripts/write_builtins_listing.py`"


def test_the_plugin_groups_are_the_registries_groups() -> None:
    from compressor.data.registry import ENTRY_POINT_GROUP as DATASETS
    from compressor.models.zoo import ENTRY_POINT_GROUP as ARCHITECTURES
    from compressor.strategies.registry import ENTRY_POINT_GROUP as STRATEGIES

    assert listing.PLUGIN_GROUPS == (STRATEGIES, ARCHITECTURES, DATASETS)


def test_listing_the_builtins_imports_neither_torch_nor_a_strategy(tmp_path: Path) -> None:
    code = ("import sys; from compressor.cli import main\n"
            "try:\n    main(['list', '--json'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'compressor.strategies') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(Path(listing.__file__).resolve().parents[2])}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(result.stdout) == listing.live_catalog()["listing"]


def test_an_installed_plugin_makes_list_read_the_live_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "plugins_installed", lambda: True)
    monkeypatch.setattr(listing, "BUILTINS", Path("/nonexistent/never-read.json"))
    assert listing.catalog() == listing.live_catalog()
