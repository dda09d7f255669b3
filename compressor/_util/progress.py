"""Progress reporting handed to strategies through their context: a callback, so they never own a progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[..., None]


class ProgressCallback(Protocol):
    """`with progress("what", total) as advance: ... advance()`; tasks may nest (one display shows them all)."""

    def __call__(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Advance]: ...


@contextlib.contextmanager
def silent_progress(description: str, total: int | None = None) -> Iterator[Advance]:
    """A progress callback that shows nothing (the default for the Python API and tests)."""
    yield lambda steps=1: None


class RichProgress:
    """A progress callback drawing every open task in one transient rich display on `console`."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._open = 0

    @contextlib.contextmanager
    def __call__(self, description: str, total: int | None = None) -> Iterator[Advance]:
        if self._progress is None:
            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=self.console, transient=True)
            self._progress.start()
        progress = self._progress
        self._open += 1
        task = progress.add_task(description, total=total)
        try:
            yield lambda steps=1: progress.advance(task, steps)
        finally:
            progress.remove_task(task)
            self._open -= 1
            if self._open == 0:
                progress.stop()
                self._progress = None
