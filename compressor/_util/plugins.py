"""Loading third-party plugins from entry points, the same way for strategies, architectures and datasets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint
from typing import Any


def load_plugins(points: Iterable[EntryPoint], register: Callable[[EntryPoint, Any], None],
                 taken_by: Callable[[EntryPoint], str | None]) -> dict[str, str]:
    """Load and `register` each entry point; the ones that fail (or whose name another source holds) are returned
    by name with the reason, never raised, so a broken plugin does not break the others."""
    errors: dict[str, str] = {}
    for point in points:
        owner = taken_by(point)
        if owner is not None:
            errors[point.name] = f"name already taken by {owner}"
            continue
        try:
            register(point, point.load())
        except Exception as exc:  # noqa: BLE001 - whatever a plugin raises on import is reported, not raised
            errors[point.name] = f"{type(exc).__name__}: {exc}"
    return errors
