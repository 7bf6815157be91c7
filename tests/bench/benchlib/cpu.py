# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the CPU goes while wrk runs: CPU time per request of each group of processes.

The bed's targets are containers on this machine's kernel, so every process of the stack
(Synapse, nginx, the engine, journald) is in this machine's /proc. A snapshot before and
after a wrk round, divided by the requests wrk counted, says what each request cost each
group, which a req/s figure alone cannot: e.g. whether the proxy path is slower because
nginx works or because Synapse does more per request when nginx runs beside it.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Dict, Tuple

# Groups by the process's command name (comm); Synapse by its command line, as its comm
# is "python" like other processes'. Everything else is "rest".
SYNAPSE_MARK = "synapse.app.homeserver"
GROUPS: Dict[str, Tuple[str, ...]] = {
    "nginx": ("nginx",),
    "engine log path": ("dockerd", "docker", "containerd", "containerd-shim", "conmon", "podman"),
    "journald": ("systemd-journal",),
}
# wrk ends before a round's second snapshot, so /proc cannot tell its time: the benchmark's
# own finished children can (getrusage), and in a round wrk is the only one.
WRK = "wrk"
CHILDREN_PID = -1
GROUP_ORDER = ("synapse",) + tuple(GROUPS) + (WRK, "rest")

# pid -> (group, CPU seconds, user and system, of all its threads)
Snapshot = Dict[int, Tuple[str, float]]


def group_of(comm: str, cmdline: str) -> str:
    if SYNAPSE_MARK in cmdline:
        return "synapse"
    for group, comms in GROUPS.items():
        if comm in comms:
            return group
    return "rest"


def parse_stat(stat: str, ticks_per_second: int) -> Tuple[str, float]:
    """(comm, utime + stime in seconds) of a /proc/<pid>/stat line (comm may hold spaces
    and parentheses, so it is what lies between the first "(" and the last ")")."""
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return comm, (int(fields[11]) + int(fields[12])) / ticks_per_second


def children_seconds() -> float:
    """CPU time (user and system) of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snapshot(proc: Path = Path("/proc")) -> Snapshot:
    """Every process in ``proc``, and under CHILDREN_PID this process's ended children (wrk)."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: Snapshot = {CHILDREN_PID: (WRK, children_seconds())}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, seconds = parse_stat((entry / "stat").read_text(), ticks)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue  # gone in between, or a kernel thread without a readable line
        result[int(entry.name)] = (group_of(comm, cmdline), seconds)
    return result


def microseconds_per_request(before: Snapshot, after: Snapshot, requests: int) -> Dict[str, float]:
    """CPU microseconds per request of each group between two snapshots. A process counts
    only if it lived through both (same pid, same group): a pid reused in between is not
    the same process, and one that started or ended in between is left out."""
    if requests <= 0:
        raise ValueError("no requests to divide by")
    spent: Dict[str, float] = {group: 0.0 for group in GROUP_ORDER}
    for pid, (group, seconds) in after.items():
        earlier = before.get(pid)
        if earlier is not None and earlier[0] == group and seconds >= earlier[1]:
            spent[group] += seconds - earlier[1]
    return {group: round(total * 1e6 / requests, 1) for group, total in spent.items()}
