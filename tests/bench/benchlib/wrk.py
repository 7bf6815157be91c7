# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run wrk (Debian's package) and read its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Dict, List

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    latency_ms: Dict[str, float]   # "50", "75", "90", "99" -> milliseconds
    errors: int                    # socket errors + non-2xx/3xx responses


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError("not a wrk duration: %r" % text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    """The report of `wrk --latency`."""
    percentiles = {match.group(1): _milliseconds(match.group(2))
                   for match in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M)}
    if set(percentiles) != {"50", "75", "90", "99"}:
        raise ValueError("wrk output has no latency distribution (run with --latency):\n" + output)
    requests = re.search(r"^\s*(\d+) requests in ", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not requests or not rate:
        raise ValueError("wrk output has no request count:\n" + output)
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(count) for count in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(requests=int(requests.group(1)), requests_per_second=float(rate.group(1)),
                     latency_ms=percentiles, errors=errors)


def wrk_argv(url: str, host_header: str, connections: int, seconds: int, threads: int = 1) -> List[str]:
    return ["wrk", "--latency", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
            "-H", "Host: %s" % host_header, url]


def run_wrk(url: str, host_header: str, connections: int, seconds: int) -> WrkResult:
    proc = subprocess.run(wrk_argv(url, host_header, connections, seconds), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError("wrk failed (exit %d):\n%s" % (proc.returncode, proc.stdout))
    return parse(proc.stdout)


def time_wait_sockets(proc_net_tcp: str) -> Dict[str, int]:
    """TCP sockets in TIME_WAIT (state 06) in a /proc/net/tcp dump, by whose connection it was.

    A socket in TIME_WAIT is a connection this side closed first, shortly before. Its local
    port tells which side of the proxy it was on: a port this namespace listens on (a socket
    in state 0A) means a client's connection ("clients"); any other port, a connection nginx
    opened to an upstream ("upstreams"). After a wrk round the upstream ones are the requests
    still in flight when wrk stopped (nginx closes the upstream connection of a response its
    client abandoned); many more than wrk's connections would mean the pool is not kept.
    """
    rows = [line.split() for line in proc_net_tcp.splitlines()[1:]]
    rows = [fields for fields in rows if len(fields) > 3 and ":" in fields[1]]

    def local_port(fields: List[str]) -> str:
        return fields[1].rsplit(":", 1)[1]

    listening = {local_port(fields) for fields in rows if fields[3] == "0A"}
    counts = {"upstreams": 0, "clients": 0}
    for fields in rows:
        if fields[3] == "06":
            counts["clients" if local_port(fields) in listening else "upstreams"] += 1
    return counts
