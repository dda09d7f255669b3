"""A gate that lets parallel sweep cells compute together but time alone (`compressor sweep --jobs N --timing serial`).

Every cell process holds the gate shared while it computes (trains, prunes, evaluates) and exclusive while it times,
so a timing never runs beside another cell's work. A cell waiting to time closes a turnstile that new holders must
pass first, so computing cells cannot starve it. Both are `flock` locks on two files next to each other, so the
processes need share nothing but a path, given in the environment (`COMPRESSOR_TIMING_GATE`). Without that
variable, or off POSIX, every call here does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; sweeps there time beside each other, as the load check then records
    fcntl = None  # type: ignore[assignment]

GATE_ENV = "COMPRESSOR_TIMING_GATE"  # the gate's path, set by the sweep for each cell
HELD_ENV = "COMPRESSOR_TIMING_GATE_HELD"  # set while this process times, so child processes it starts pass through


class TimingGate:
    """A writer-preferring shared/exclusive lock between processes: `share()` to compute, `exclusive()` to time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._gate = open(self.path, "a+")  # noqa: SIM115 - held for the life of the process
        self._turnstile = open(self.path.with_name(self.path.name + ".turnstile"), "a+")  # noqa: SIM115
        self.shared = False

    def _pass_turnstile_then(self, mode: int) -> None:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._gate, mode)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    def share(self) -> None:
        """Hold the gate shared (computing): waits while a cell times or waits to."""
        if not self.shared:
            self._pass_turnstile_then(fcntl.LOCK_SH)
            self.shared = True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone for the block (timing), then share it again if it was shared before."""
        was_shared = self.shared
        if was_shared:  # let go first: two cells that both wait to time must not hold each other out
            fcntl.flock(self._gate, fcntl.LOCK_UN)
            self.shared = False
        self._pass_turnstile_then(fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
            if was_shared:
                self.share()

    def close(self) -> None:
        """Release everything (closing the files drops their locks)."""
        self._gate.close()
        self._turnstile.close()
        self.shared = False


_process_gate: TimingGate | None = None


def _gate_from_env() -> TimingGate | None:
    global _process_gate
    path = os.environ.get(GATE_ENV)
    if not path or fcntl is None or os.environ.get(HELD_ENV):
        return None
    if _process_gate is None or _process_gate.path != Path(path):
        _process_gate = TimingGate(Path(path))
    return _process_gate


def join_timing_gate() -> None:
    """Start computing under the sweep's gate, if this process runs in one (a no-op otherwise)."""
    gate = _gate_from_env()
    if gate is not None:
        gate.share()


@contextmanager
def timing_alone() -> Iterator[None]:
    """The block holds the sweep's gate exclusively, so no other cell computes while it times (a no-op outside a
    `--timing serial` sweep, and in child processes of a process that holds it)."""
    gate = _gate_from_env()
    if gate is None:
        yield
        return
    with gate.exclusive():
        os.environ[HELD_ENV] = "1"
        try:
            yield
        finally:
            del os.environ[HELD_ENV]
