"""Was anything else running while we timed? CPU time the rest of the machine used during a timing window.

Two snapshots of /proc (at the start and end of the window) give the machine's busy CPU time, this process's own
CPU time and each other process's; the difference is what other processes (short-lived ones included, through the
machine's total) and the hypervisor (steal) took while the timing ran. Nothing runs during the window itself, so
the check costs the timing nothing. Where /proc does not exist (not Linux) the load is recorded as unknown.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")
UNDER_LOAD_CORES = 0.1  # other processes busy for more than a tenth of a core on average: "timed under load"
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time (seconds) of the machine, of the hypervisor's steal, of this process, and of every other process."""

    wall: float
    busy: float
    steal: float
    own: float
    others: dict[int, tuple[str, float]] = field(default_factory=dict)


def _process_seconds(stat_text: str) -> tuple[str, float]:
    """(name, user + system seconds) from a /proc/PID/stat line (the name may hold spaces and brackets)."""
    name = stat_text[stat_text.index("(") + 1:stat_text.rindex(")")]
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return name, (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of the line)


def snapshot(proc: Path = PROC) -> CpuSnapshot | None:
    """The machine's CPU accounting now; None where /proc/stat cannot be read."""
    try:
        cpu = (proc / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (cpu + ["0"] * 8)[:8])
    own = os.getpid()
    others: dict[int, tuple[str, float]] = {}
    own_seconds = 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, seconds = _process_seconds((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we read
        if int(entry.name) == own:
            own_seconds = seconds
        else:
            others[int(entry.name)] = (name, seconds)
    return CpuSnapshot(time.monotonic(), (user + nice + system + irq + softirq) / TICKS, steal / TICKS, own_seconds,
                       others)


def other_load(start: CpuSnapshot | None, end: CpuSnapshot | None, top: int = 3) -> dict[str, Any]:
    """What the rest of the machine used between two snapshots, in cores (CPU seconds per second of wall time)."""
    if start is None or end is None or end.wall <= start.wall:
        return {"checked": False, "under_load": None}
    wall = end.wall - start.wall
    others = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / wall
    busiest = sorted(((name, seconds - start.others[pid][1]) for pid, (name, seconds) in end.others.items()
                      if pid in start.others and seconds > start.others[pid][1]), key=lambda item: -item[1])[:top]
    return {"checked": True, "wall_seconds": round(wall, 3), "other_cores": round(others, 3),
            "steal_cores": round(max(0.0, end.steal - start.steal) / wall, 3),
            "busiest": [{"process": name, "cores": round(seconds / wall, 3)} for name, seconds in busiest],
            "under_load": others > UNDER_LOAD_CORES, "threshold_cores": UNDER_LOAD_CORES}


@contextmanager
def watch_load() -> Iterator[dict[str, Any]]:
    """`with watch_load() as load:` ... after the block, `load` holds `other_load` of the block's window."""
    load: dict[str, Any] = {}
    start = snapshot()
    try:
        yield load
    finally:
        load.update(other_load(start, snapshot()))
