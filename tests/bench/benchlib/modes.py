# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine modes beyond rootful docker and podman, side by side with them in one run:
fresh converge, no-change converge and the proxy overhead, on a fresh target each.

The other figures (restart, reboot, transports, exposure) stay with the two rootful
engines: they measure systemd and the engine client, which a mode changes only in scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import bed  # tests/bed

from .measure import BENCH_ID, check_no_change, converge_record, fresh_ssh, proxy_overhead
from .stack import BenchFailure, BenchStack

# mode -> (the target's engine, its Debian release, the stack variables that choose the mode,
# the service user whose systemd instance runs the units, "" for the system's).
MODES: Dict[str, Tuple[str, str, Dict[str, Any], str]] = {
    "podman_rootless": ("podman", "bookworm",
                        {"hearth_engine": "podman_rootless", "hearth_rootless_unprivileged_port_start": 80}, "hearth"),
    # Rootless docker cannot take sockets from systemd: the opt-in is its only way to 443.
    "docker_rootless": ("docker", "bookworm",
                        {"hearth_engine": "docker_rootless", "hearth_rootless_unprivileged_port_start": 80}, "hearth"),
    # Quadlet needs podman >= 4.4: Debian 13's (Debian 12 has 4.3).
    "podman_quadlet": ("podman", "trixie", {"hearth_podman_quadlet": True}, ""),
}


def mode_run(mode: str, workdir: Path, connections: int, seconds: int, rounds: int,
             log: Callable[[str], None]) -> Dict[str, Any]:
    """A fresh target in ``mode``: fresh and no-change converge, then the proxy overhead
    (corporal off, as for the rootful engines). Always removes the target."""
    engine, os_name, extra, user = MODES[mode]
    target = bed.up("bench-%s-%s" % (BENCH_ID, mode.replace("_", "-")), engine, workdir / mode, os_name=os_name)
    stack = BenchStack(target=target, engine=engine, extra=dict(extra), user=user)
    try:
        fresh = stack.converge(env=fresh_ssh())
        if fresh.changed == 0:
            raise BenchFailure("%s: the fresh converge changed nothing" % mode)
        again = stack.converge(env=fresh_ssh())
        check_no_change(again, "%s no-change converge" % mode)
        records: Dict[str, Any] = {"fresh_converge": converge_record(fresh), "no_change_converge": converge_record(again)}
        log("%s: converges fresh %.1f s, no-change %.1f s (%d tasks)"
            % (mode, fresh.seconds, again.seconds, again.tasks))
        if rounds:
            stack.extra["hearth_corporal_enabled"] = False
            stack.converge(env=fresh_ssh())
            try:
                proxy = proxy_overhead(stack, connections, seconds, rounds)
            except BenchFailure as error:
                # A mode whose port publishing drops requests under load (docker_rootless's
                # slirp4netns: listen backlog 1) has no valid ratio; the error is its figure.
                records["proxy"] = {"error": str(error)}
                log("%s proxy: %s" % (mode, error))
                return records
            records["proxy"] = {"connections": connections, "seconds": seconds, "corporal": "off", "rounds": proxy}
            rates = {name: [round(r["requests_per_second"]) for r in rows] for name, rows in proxy.items()}
            log("%s proxy: %s" % (mode, rates))
        return records
    finally:
        bed.down(target)
