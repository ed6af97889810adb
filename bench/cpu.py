"""CPU accounting from /proc: a process's CPU time and the whole machine's busy time, in seconds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system time of one process, all its threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime: fields 14 and 15 of proc(5)


def machine_busy_seconds() -> float:
    """CPU time spent by every process on every core (all of /proc/stat's cpu line but idle and iowait)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _processes() -> Iterator[tuple[int, str, int]]:
    """(pid, command name, parent pid) of every live process, from /proc/<pid>/stat (proc(5) fields 1, 2, 4)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process exited while we looked
        name = text[text.index("(") + 1 : text.rindex(")")]
        yield int(stat.parent.name), name, int(text[text.rindex(")") + 2 :].split()[1])


def _cpu_seconds(pids: Iterator[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile
            total += process_cpu_seconds(pid)
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live children: a prefork worker (Celery, uvicorn --workers) works in a child."""
    return _cpu_seconds(p for p, _, parent in _processes() if pid in {p, parent})


def named_cpu_seconds(command: str, *, title: str = "") -> float:
    """CPU time of every live process named ``command`` whose command line contains ``title``.

    PostgreSQL backends show their database in their process title, so other databases' load is left out.
    """
    return _cpu_seconds(p for p, name, _ in _processes() if name == command and title in _cmdline(p))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
