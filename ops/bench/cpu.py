"""CPU time of processes by name, read from /proc (for "how many cores did it use")."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_pid(names: tuple[str, ...]) -> dict[int, tuple[str, float]]:
    """(command name, user+system CPU seconds) of each live process whose name is in ``names``."""
    found: dict[int, tuple[str, float]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name in names:
            fields = stat[stat.rindex(")") + 2:].split()
            found[int(proc.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def cpu_seconds(names: tuple[str, ...]) -> dict[str, float]:
    """Total user+system CPU seconds of the live processes whose command name is in ``names``."""
    totals = dict.fromkeys(names, 0.0)
    for name, seconds in cpu_by_pid(names).values():
        totals[name] += seconds
    return totals


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before}


def cores_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float,
                  names: tuple[str, ...], keep: Callable[[int, str], bool]) -> dict[str, float]:
    """Cores used per command name between two cpu_by_pid() snapshots, counting only the
    processes ``keep`` accepts (e.g. the PostgreSQL backends of one database, not the whole
    shared server); one born meanwhile counts from 0, one that died meanwhile is left out."""
    totals = dict.fromkeys(names, 0.0)
    for pid, (name, seconds_now) in after.items():
        if keep(pid, name):
            totals[name] += seconds_now - (before[pid][1] if pid in before else 0.0)
    return {name: round(total / seconds, 2) for name, total in totals.items()}
