"""CPU time of processes by name or by process tree, read from /proc (for "how many cores did
it use")."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def processes(reaped: bool = False) -> Iterator[tuple[int, str, int, float]]:
    """(pid, command name, parent pid, user+system CPU seconds) of every live process; with
    ``reaped``, plus the CPU of its children that exited and were waited for."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
        yield int(proc.name), name, int(fields[1]), ticks / TICKS


def cpu_by_pid(names: tuple[str, ...]) -> dict[int, tuple[str, float]]:
    """(command name, user+system CPU seconds) of each live process whose name is in ``names``."""
    return {pid: (name, seconds) for pid, name, _, seconds in processes() if name in names}


def cpu_by_tree(roots: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds of each named process and all its descendants (a service's workers, the
    postmaster's backends), children that exited meanwhile included (counted in their parent
    once it waited for them)."""
    tree = {pid: (parent, seconds) for pid, _, parent, seconds in processes(reaped=True)}
    label_of = {pid: label for label, pid in roots.items()}
    totals = dict.fromkeys(roots, 0.0)
    for pid, (_, seconds) in tree.items():
        ancestor = pid
        while ancestor not in label_of and ancestor in tree and ancestor > 1:
            ancestor = tree[ancestor][0]
        if ancestor in label_of:
            totals[label_of[ancestor]] += seconds
    return totals


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
