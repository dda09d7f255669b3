"""`compressor list`: the strategies (with parameters), architectures and datasets, answered without importing torch.

The built-ins register when their modules import, and those import torch (about 3 s). `builtins.json` beside this
module is the listing of an install without plugins; `list` prints it while no plugin entry point is installed, and
reads the live registries when one is. tests/cli/test_listing.py keeps the file equal to the registries;
`python scripts/write_builtins_listing.py` rewrites it after a built-in changes.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from compressor.cli.options import err, out, plain_lines

BUILTINS = Path(__file__).with_name("builtins.json")
# the entry-point groups of compressor.strategies.registry, compressor.models.zoo and compressor.data.registry,
# spelled out so that asking whether a plugin is installed imports none of them (a test checks they agree)
PLUGIN_GROUPS = ("compressor.strategies", "compressor.architectures", "compressor.datasets")
STRATEGY_COLUMNS = ("strategy", "parameter", "type", "default", "description")


def _json_value(value: Any) -> Any:
    """`value` if JSON can hold it as it is, else its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def failed_plugins() -> list[dict[str, str]]:
    """Every entry point (strategy, architecture, dataset) that failed to load: its kind, name and the reason."""
    from compressor.data import dataset_plugin_errors
    from compressor.models.zoo import arch_plugin_errors
    from compressor.strategies.registry import plugin_errors

    return [{"kind": kind, "name": name, "reason": reason}
            for kind, errors in (("strategy", plugin_errors()), ("architecture", arch_plugin_errors()),
                                 ("dataset", dataset_plugin_errors()))
            for name, reason in errors.items()]


def live_catalog() -> dict[str, Any]:
    """`{"listing": what list --json prints, "default_reprs": {strategy: {parameter: repr(default)}}}` from the
    registries (imports every strategy, hence torch)."""
    from compressor.data import list_datasets
    from compressor.models.zoo import ARCH_FORMS, list_archs
    from compressor.strategies.registry import list_strategies

    infos = list_strategies()
    strategies = [{"name": info.name, "description": info.description, "source": info.source,
                   "params": [{"name": p.name, "type": p.type_name, "default": _json_value(p.default), "help": p.help}
                              for p in info.params]}
                  for info in infos]
    listing = {"strategies": strategies, "architectures": list(list_archs()), "architecture_forms": ARCH_FORMS,
               "datasets": list(list_datasets()), "plugin_errors": failed_plugins()}
    return {"listing": listing,
            "default_reprs": {info.name: {p.name: repr(p.default) for p in info.params} for info in infos}}


def plugins_installed() -> bool:
    """Whether any strategy, architecture or dataset plugin is installed (an entry point in one of the groups)."""
    return any(entry_points(group=group) for group in PLUGIN_GROUPS)


def catalog() -> dict[str, Any]:
    """The committed listing of the built-ins while no plugin is installed (no torch import), else the live one."""
    if not plugins_installed() and BUILTINS.is_file():
        return json.loads(BUILTINS.read_text())
    return live_catalog()


def listing() -> dict[str, Any]:
    """What `compressor list --json` prints: strategies with their parameters, architectures, datasets, and the
    plugins that failed to load."""
    return catalog()["listing"]


def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print strategies (with parameters), architectures and "
                                                         "datasets as one JSON document")] = False,
) -> None:
    """List strategies (with parameters and defaults), architectures and datasets.

    On a terminal the strategies are a table; piped, every row is one tab-separated line that is never wrapped.
    """
    found = catalog()
    listed, reprs = found["listing"], found["default_reprs"]
    if as_json:
        plain_lines([json.dumps(listed, indent=2)])
        return
    for failed in listed["plugin_errors"]:
        err.print(f"{failed['kind']} plugin {failed['name']!r} failed to load: {failed['reason']}", style="yellow",
                  markup=False, soft_wrap=True)
    tail = [f"architectures: {', '.join(listed['architectures'])}; also torchvision:NAME, timm:NAME, "
            "package.module:factory", f"datasets: {', '.join(listed['datasets'])}"]
    rows = [[(s["name"], "", "", "", s["description"])]
            + [(s["name"], p["name"], p["type"], reprs[s["name"]][p["name"]], p["help"]) for p in s["params"]]
            for s in listed["strategies"]]
    if not out.is_terminal:
        plain_lines(["\t".join(STRATEGY_COLUMNS), *("\t".join(row) for group in rows for row in group), *tail])
        return
    from rich.table import Table

    table = Table(title="strategies")
    for column in STRATEGY_COLUMNS:
        table.add_column(column, style="bold" if column == "strategy" else None)
    for group in rows:
        for i, (name, *rest) in enumerate(group):
            table.add_row(name if i == 0 else "", *rest, end_section=i == len(group) - 1)
    out.print(table)
    for line in tail:
        out.print(line, soft_wrap=True)


def write_builtins() -> Path:
    """Rewrite builtins.json from the live registries (run without plugins installed)."""
    from compressor._util.fileio import write_atomic

    if plugins_installed():
        raise SystemExit("a plugin is installed: builtins.json must list the built-ins alone; uninstall it first")
    text = json.dumps(live_catalog(), indent=1) + "\n"
    return write_atomic(BUILTINS, lambda tmp: tmp.write_text(text))
