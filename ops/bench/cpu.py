"""CPU time of processes by name, read from /proc (for "how many cores did it use")."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(names: tuple[str, ...]) -> dict[str, float]:
    """Total user+system CPU seconds of the live processes whose command name is in ``names``."""
    totals = dict.fromkeys(names, 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        for wanted in names:
            if name == wanted:
                totals[wanted] += (int(fields[11]) + int(fields[12])) / TICKS
    return totals


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before}
