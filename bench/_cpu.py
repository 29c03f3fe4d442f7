"""CPU seconds by process over a stretch of a benchmark (Linux ``/proc``).

On a machine shared with other work a wall time says how busy the machine
was as much as how fast the code is. The CPU the service's own processes
spent per request does not depend on the neighbours nearly as much: with it
a run on a loaded machine still tells what the same work needs on idle cores
(``needed / cores`` is the wall time if nothing else ran and the work spread
perfectly). :class:`Meter` counts the server's processes (a granian master
and its workers, found by the port in their command line), their children
(the invoice checkers), PostgreSQL backends by pid, this process (the
client), and the whole machine (``/proc/stat``) for the share the run got.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

HZ = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, user + system ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def server_groups(port: int) -> dict[str, set[int]]:
    """The server on ``port``: its granian processes, and their children (checkers)."""
    marker = f"--port {port} "
    server = {pid for pid in _pids() if marker in _cmdline(pid) + " "}
    children: set[int] = set()
    for pid in _pids():
        st = _stat(pid)
        if st is not None and st[0] in server and pid not in server:
            children.add(pid)
    return {"server": server, "checkers": children}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Meter:
    """Ticks per group of pids between :meth:`start` and :meth:`stop`."""

    groups: dict[str, set[int]]
    _start: dict[int, int] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)
    _own: float = 0.0

    def start(self) -> None:
        for pids in self.groups.values():
            for pid in pids:
                st = _stat(pid)
                if st is not None:
                    self._start[pid] = st[1]
        self._machine = machine_ticks()
        t = os.times()
        self._own = t.user + t.system

    def add(self, group: str, pids: Iterable[int]) -> None:
        """Processes that appeared during the stretch (counted from their start)."""
        self.groups.setdefault(group, set()).update(pids)

    def stop(self) -> dict[str, float]:
        """CPU seconds per group, ``client`` (this process), ``machine busy`` and
        ``machine`` (all cores' seconds) over the stretch."""
        found: dict[str, float] = {}
        for group, pids in self.groups.items():
            ticks = 0
            for pid in pids:
                st = _stat(pid)
                if st is not None:
                    ticks += st[1] - self._start.get(pid, 0)
            found[group] = ticks / HZ
        t = os.times()
        found["client"] = t.user + t.system - self._own
        busy, total = machine_ticks()
        found["machine busy"] = (busy - self._machine[0]) / HZ
        found["machine"] = (total - self._machine[1]) / HZ
        return found
