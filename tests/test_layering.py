"""Data flows one way: `supcon` may import `compressor`, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import compressor


def test_compressor_never_imports_supcon() -> None:
    offenders = []
    for path in Path(compressor.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n == "supcon" or n.startswith("supcon.")]
    assert not offenders
