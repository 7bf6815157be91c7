# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Socket activation of a rootless container's low ports: the decision, the .socket unit,
the system unit run as the service user, and the host side (socket_state.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import HostFacts
from ansible_collections.hearth.matrix.plugins.module_utils.socket_activation import (
    activated,
    fd_list,
    listen_address,
    render_socket,
    system_unit,
)
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import (
    RootlessAccount,
    ensure_socket,
    remove_socket_service,
    restart_socket,
    socket_plan,
)
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import ScriptedHost

USER_UNIT = """# Managed by hearth.matrix (component); local edits are overwritten.
[Unit]
Description=proxy
DefaultDependencies=no
After=basic.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=simple
ExecStart=/usr/bin/podman start --attach hearth-nginx-proxy
Restart=always

[Install]
WantedBy=default.target
"""
ACCOUNT = RootlessAccount("hearth", 999, "/var/lib/hearth", None)
FACTS = HostFacts(engine="podman_rootless", engine_path="/usr/bin/podman", sh_path="/bin/sh",
                  systemctl="/bin/systemctl", openssl=None, systemd_version=252)


@pytest.mark.parametrize("engine, ports, start, expected", [
    ("podman_rootless", [80, 443, 8448], None, True),
    ("podman_rootless", [80, 443], 80, False),          # the opt-in: the engine binds them
    ("podman_rootless", [8080, 8443], None, False),     # nothing below 1024
    ("podman", [80, 443], None, False),                 # rootful binds any port
    ("docker", [80], None, False),
    ("docker_rootless", [80, 443], None, False),     # no fd reaches a docker container
])
def test_activated_only_rootless_low_ports_without_opt_in(engine: str, ports: List[int], start: Any,
                                                          expected: bool) -> None:
    assert activated(engine, ports, start) is expected


def test_listen_addresses_and_fd_list() -> None:
    assert listen_address("0.0.0.0", 443) == "0.0.0.0:443"
    assert listen_address("::", 443) == "[::]:443"
    assert listen_address("[::1]", 80) == "[::1]:80"
    assert fd_list(3) == "3;4;5;" and fd_list(0) == ""


def test_socket_lists_each_address_in_order() -> None:
    text = render_socket("hearth-nginx-proxy", "proxy", [("0.0.0.0", 80), ("::", 443)])
    assert "ListenStream=0.0.0.0:80\nListenStream=[::]:443\n" in text
    assert "Service=hearth-nginx-proxy.service" in text and "WantedBy=sockets.target" in text
    assert "BindIPv6Only=ipv6-only" in text


def test_system_unit_runs_as_the_user_after_its_manager() -> None:
    text = system_unit(USER_UNIT, "hearth", 999, "/var/lib/hearth", "hearth-nginx-proxy")
    lines = text.splitlines()
    assert "After=basic.target user@999.service hearth-nginx-proxy.socket" in lines
    assert "Requires=user@999.service hearth-nginx-proxy.socket" in lines
    assert lines[lines.index("Type=simple") + 1:lines.index("Type=simple") + 4] == [
        "User=hearth", "WorkingDirectory=/var/lib/hearth",
        "Environment=HOME=/var/lib/hearth XDG_RUNTIME_DIR=/run/user/999"]
    assert "WantedBy=multi-user.target" in lines and "WantedBy=default.target" not in lines
    assert text.endswith("\n")


def _proxy(ports: List[int], protocol: str = "tcp", state: str = "started") -> Any:
    return component_from_dict({
        "name": "hearth-nginx-proxy", "engine": "podman_rootless", "state": state, "description": "proxy",
        "container": {"image": "nginx", "user": "101:101",
                      "ports": [{"host_address": "0.0.0.0", "host_port": port, "container_port": 8000 + port,
                                 "protocol": protocol} for port in ports]},
    })


def test_plan_drops_the_published_ports_and_targets_the_system_dir(tmp_path: Path) -> None:
    plan = socket_plan(_proxy([80, 443]), ACCOUNT, str(tmp_path))
    assert plan is not None and plan.component.container is not None
    assert plan.component.container.ports == ()
    assert plan.unit_path == str(tmp_path / "hearth-nginx-proxy.service")
    assert plan.socket_path == str(tmp_path / "hearth-nginx-proxy.socket")
    assert "ListenStream=0.0.0.0:80\nListenStream=0.0.0.0:443\n" in plan.socket_text
    assert "User=hearth" in plan.transform(USER_UNIT)


def test_no_plan_with_the_opt_in_rootful_or_absent() -> None:
    assert socket_plan(_proxy([80]), RootlessAccount("hearth", 999, "/var/lib/hearth", 80)) is None
    assert socket_plan(_proxy([80]), None) is None
    assert socket_plan(_proxy([80], state="absent"), ACCOUNT) is None


def test_udp_low_port_names_the_opt_in() -> None:
    with pytest.raises(HostError) as caught:
        socket_plan(_proxy([53], protocol="udp"), ACCOUNT)
    assert str(caught.value).startswith("hearth_rootless_unprivileged_port_start: is needed for hearth-nginx-proxy")


def test_ensure_socket_writes_once_and_honours_check_mode(tmp_path: Path) -> None:
    plan = socket_plan(_proxy([80]), ACCOUNT, str(tmp_path))
    assert plan is not None
    report = Report()
    assert ensure_socket(ScriptedHost(check_mode=True), plan, report) is True
    assert not os.path.exists(plan.socket_path) and report.diffs
    assert ensure_socket(ScriptedHost(), plan, Report()) is True
    assert Path(plan.socket_path).read_text() == plan.socket_text
    assert ensure_socket(ScriptedHost(), plan, Report()) is False


def test_restart_socket_stops_the_service_first() -> None:
    host = ScriptedHost()
    restart_socket(host, FACTS, "hearth-nginx-proxy")
    assert [call[1:] for call in host.calls] == [
        ["stop", "hearth-nginx-proxy.service"], ["enable", "hearth-nginx-proxy.socket"],
        ["restart", "hearth-nginx-proxy.socket"], ["start", "hearth-nginx-proxy.service"]]


def test_remove_takes_service_and_socket_but_not_a_rootful_unit(tmp_path: Path) -> None:
    (tmp_path / "hearth-nginx-proxy.service").write_text("rootful unit")
    host = ScriptedHost()
    # No socket of ours: the unit is a rootful mode's, left to the migration.
    assert remove_socket_service(host, FACTS, "hearth-nginx-proxy", Report(), str(tmp_path)) is False
    assert (tmp_path / "hearth-nginx-proxy.service").exists() and host.calls == []
    (tmp_path / "hearth-nginx-proxy.socket").write_text("socket")
    report = Report()
    assert remove_socket_service(host, FACTS, "hearth-nginx-proxy", report, str(tmp_path)) is True
    assert list(tmp_path.iterdir()) == []
    assert ["/bin/systemctl", "disable", "--now", "hearth-nginx-proxy.socket"] in host.calls
