# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of socket activation (socket_activation.py): which component gets it, its
.socket file, the system unit in place of the user unit, and removing both."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import (
    HostFacts,
    read_text,
    remove_service,
    write_unit,
)
from ansible_collections.hearth.matrix.plugins.module_utils.socket_activation import (
    SYSTEM_UNIT_DIR,
    activated,
    render_socket,
    socket_name,
    system_unit,
)


@dataclass(frozen=True)
class RootlessAccount:
    """The service user as the host has it (setup_engine_mode's plan)."""

    name: str
    uid: int
    home: str
    port_start: Optional[int]


@dataclass(frozen=True)
class SocketPlan:
    component: Component     # without published ports: the sockets replace them
    unit_path: str
    socket_path: str
    socket_text: str
    transform: Callable[[str], str]


def socket_activated(component: Component, port_start: Optional[int]) -> bool:
    """Whether a component is socket-activated (with ``port_start``, the rootless opt-in);
    HostError naming the opt-in when it would be but publishes a port that is not TCP: the
    sockets replace every published port, and systemd passes stream sockets only."""
    spec = component.container
    if spec is None or component.state != "started":
        return False
    if not activated(component.engine, [p.host_port for p in spec.ports], port_start):
        return False
    bad = [p for p in spec.ports if p.protocol != "tcp"]
    if bad:
        raise HostError("hearth_rootless_unprivileged_port_start", "is needed for %s: its %s port %d cannot be "
                        "socket-activated (stream sockets only)" % (component.name, bad[0].protocol, bad[0].host_port))
    return True


def socket_plan(component: Component, account: Optional[RootlessAccount], unit_dir: str = SYSTEM_UNIT_DIR
                ) -> Optional[SocketPlan]:
    """The plan for a started, socket-activated component, else None."""
    spec = component.container
    if account is None or spec is None or not socket_activated(component, account.port_start):
        return None
    text = render_socket(component.name, component.description or component.name,
                         [(p.host_address, p.host_port) for p in spec.ports])
    return SocketPlan(
        component=replace(component, container=replace(spec, ports=())),
        unit_path=os.path.join(unit_dir, component.name + ".service"),
        socket_path=os.path.join(unit_dir, socket_name(component.name)),
        socket_text=text,
        transform=lambda unit: system_unit(unit, account.name, account.uid, account.home, component.name),
    )


def ensure_socket(host: Any, plan: SocketPlan, report: Report) -> bool:
    """The .socket file; True when it changed (the socket must be restarted)."""
    before = read_text(plan.socket_path)
    if before == plan.socket_text:
        return False
    report.changes.append("unit %s: %s" % (plan.socket_path, "written" if before is None else "updated"))
    report.diffs.append({"before_header": plan.socket_path, "after_header": plan.socket_path,
                         "before": before or "", "after": plan.socket_text})
    if not host.check_mode:
        write_unit(plan.socket_path, plan.socket_text)
    return True


def restart_socket(host: Any, facts: HostFacts, name: str) -> None:
    """A changed socket takes its new addresses only when restarted, and systemd refuses to
    restart a socket whose service runs: stop the service, restart the socket, start it."""
    if host.check_mode:
        return
    for verb, unit in (("stop", name + ".service"), ("enable", socket_name(name)), ("restart", socket_name(name)),
                       ("start", name + ".service")):
        rc, out, err = host.run_command([facts.systemctl, verb, unit])
        if rc != 0:
            raise HostError("systemd", "systemctl %s %s failed: %s" % (verb, unit, (err or out).strip()))


def remove_socket_service(system: Any, facts: HostFacts, name: str, report: Report,
                          unit_dir: str = SYSTEM_UNIT_DIR) -> bool:
    """The system unit and .socket of a socket-activated service (state absent, or the opt-in
    now set): service and socket stopped and disabled, both files removed, data kept."""
    path = os.path.join(unit_dir, socket_name(name))
    if read_text(path) is None:
        # No socket of ours: a system unit of that name is a rootful mode's (migration's job).
        return False
    remove_service(system, facts, name, os.path.join(unit_dir, name + ".service"), report)
    report.changes.append("unit %s: removed" % path)
    if not system.check_mode:
        system.run_command([facts.systemctl, "disable", "--now", socket_name(name)])
        os.unlink(path)
    return True
