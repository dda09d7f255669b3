"""Registry: built-ins are listed with parameters; plugins are found through entry points; errors are clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compressor.errors import CompressorError
from compressor.strategies.registry import build_strategy, get_strategy, list_strategies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "compressor-plugin-random"


def test_l1_is_listed_with_typed_parameters_and_defaults() -> None:
    info = get_strategy("l1")
    assert info in list_strategies("l*")
    params = {p.name: p for p in info.params}
    assert params["amount"].default == 0.5 and params["amount"].type is float and params["amount"].help
    assert params["scope"].type_name == "global|layer"
    assert info.description.startswith("L1-magnitude")


def test_string_params_are_converted_to_their_types() -> None:
    strategy = build_strategy("l1", {"amount": "0.3", "scope": "layer", "include_classifier": "yes"})
    assert (strategy.amount, strategy.scope, strategy.include_classifier) == (0.3, "layer", True)


@pytest.mark.parametrize("params, message", [
    ({"amount": "half"}, "l1.amount must be a number; got 'half'"),
    ({"include_classifier": "maybe"}, "l1.include_classifier must be true or false"),
    ({"sparsity": "0.5"}, "strategy 'l1' has no parameter 'sparsity'; its parameters are: amount, scope"),
])
def test_bad_params_name_the_value_and_what_is_accepted(params: dict, message: str) -> None:
    with pytest.raises(CompressorError, match=message):
        build_strategy("l1", params)


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(CompressorError, match=r"unknown strategy 'l0'; choose one of: .*l1"):
        get_strategy("l0")


def _dist_info(site: Path, name: str, entry_points: str) -> None:
    dist = site / f"{name}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[compressor.strategies]\n{entry_points}\n")


def _compressor(args: list[str], pythonpath: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run([sys.executable, "-m", "compressor", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


PRUNE_WITH_PLUGIN = """
from compressor import StrategyContext, build_strategy
from compressor.data import load_dataset
from compressor.measure.complexity import weight_sparsity
from compressor.models.zoo import build_model
model = build_model("resnet18", 10, 1)
context = StrategyContext.for_dataset(load_dataset("digits"), input_size=32, seed=0)
build_strategy("random", {"amount": "0.3"}).apply(model, context)
print(round(weight_sparsity(model)["sparsity"], 2))
"""


def test_example_plugin_is_found_through_its_entry_point_and_prunes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist_info(site, "compressor_plugin_random", "random = compressor_random:RandomUnstructured")
    path = [site, EXAMPLE, ROOT]
    listing = _compressor(["list"], path, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "random" in listing.stdout and "Zero a uniformly random fraction" in listing.stdout
    assert "l1" in listing.stdout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    pruned = subprocess.run([sys.executable, "-c", PRUNE_WITH_PLUGIN], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.strip() == "0.3"


def test_a_broken_plugin_is_reported_by_name_and_does_not_break_the_others(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist_info(site, "broken_plugin", "broken = no_such_module:Strategy")
    listing = _compressor(["list"], [site, ROOT], tmp_path)
    assert listing.returncode == 0
    assert "plugin 'broken' failed to load" in listing.stderr and "no_such_module" in listing.stderr
    assert "l1" in listing.stdout
