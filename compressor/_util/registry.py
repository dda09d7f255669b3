"""One registry for every kind of named plugin (strategies, architectures, datasets).

Entries are registered by name in code (a decorator) or declared by third-party packages under an entry-point
group; the entry points load on first use, and one that fails to load (or claims a name another source holds) is
reported by name with the reason, never raised, so a broken plugin does not break the others.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from compressor.errors import CompressorError

E = TypeVar("E")


@dataclass
class EntryPointRules(Generic[E]):
    """How one kind turns an entry point into an entry.

    `name(point)` is the registry name it declares; `entry(point, loaded)` builds the entry from the loaded object;
    `own(point, known)` says whether an entry already registered under that name came from the point's own module
    (a plugin that registers itself with the decorator when imported), which is not a conflict.
    """

    entry: Callable[[EntryPoint, Any], E]
    own: Callable[[EntryPoint, E], bool]
    name: Callable[[EntryPoint], str] = lambda point: point.name


class Registry(Generic[E]):
    """Named entries of one kind: `add`, `find`, `names(pattern)`, `entries(pattern)` and `plugin_errors()`."""

    def __init__(self, kind: str, group: str, rules: EntryPointRules[E], *, source: Callable[[E], str],
                 identity: Callable[[E], object], builtins: Callable[[], None] | None = None) -> None:
        self.kind, self.group = kind, group
        self._rules, self._source, self._identity, self._builtins = rules, source, identity, builtins
        self._entries: dict[str, E] = {}
        self._errors: dict[str, str] = {}
        self._discovered = False
        self._points: Callable[[], Iterable[EntryPoint]] = lambda: entry_points(group=group)

    def add(self, name: str, entry: E) -> None:
        """Register `entry` as `name`; the same object again is a no-op, another object under a taken name an error."""
        known = self._entries.get(name)
        if known is not None and self._identity(known) != self._identity(entry):
            raise CompressorError(f"{self.kind} name {name!r} is already registered by {self._source(known)}; "
                                  f"pick another name for {self._source(entry)}")
        self._entries[name] = entry

    def find(self, name: str) -> E | None:
        """The entry registered as exactly `name`, or None."""
        self.discover()
        return self._entries.get(name)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style `pattern`, sorted."""
        self.discover()
        return sorted(name for name in self._entries if fnmatch.fnmatch(name, pattern))

    def entries(self, pattern: str = "*") -> list[E]:
        """Registered entries whose name matches `pattern`, in registration order (built-ins first)."""
        self.discover()
        return [entry for name, entry in self._entries.items() if fnmatch.fnmatch(name, pattern)]

    def plugin_errors(self) -> dict[str, str]:
        """Entry points that failed to load, by name, with the reason."""
        self.discover()
        return dict(self._errors)

    def failure_hint(self, *names: str) -> str:
        """` (its plugin failed to load: REASON)` when one of `names` is an entry point that failed, else ``."""
        reason = next((self._errors[n] for n in names if n in self._errors), None)
        return f" (its plugin failed to load: {reason})" if reason else ""

    def discover(self) -> None:
        """Register the built-ins and then every entry point of the group, once."""
        if self._discovered:
            return
        self._discovered = True
        if self._builtins is not None:
            self._builtins()
        for point in self._points():
            name = self._rules.name(point)
            known = self._entries.get(name)
            if known is not None:
                if not self._rules.own(point, known):
                    self._errors[point.name] = f"name already taken by {self._source(known)}"
                continue
            try:
                loaded = point.load()
                if name not in self._entries:  # else its module registered it with the decorator on import
                    self.add(name, self._rules.entry(point, loaded))
            except Exception as exc:  # noqa: BLE001 - whatever a plugin raises on import is reported, not raised
                self._errors[point.name] = f"{type(exc).__name__}: {exc}"

    @contextlib.contextmanager
    def isolated(self, points: Iterable[EntryPoint] | None = None) -> Iterator[Registry[E]]:
        """For tests: changes inside the block are undone after it; `points` (read when the registry next
        discovers, so a list may still grow) stands in for the installed entry points, filtered by group."""
        self.discover()  # the built-ins and installed plugins stay; fake points come on top of them
        saved = dict(self._entries), dict(self._errors), self._discovered, self._points
        if points is not None:
            self._points = lambda: [point for point in points if point.group == self.group]
            self._discovered = False
        try:
            yield self
        finally:
            self._entries, self._errors = saved[0], saved[1]
            self._discovered, self._points = saved[2], saved[3]
