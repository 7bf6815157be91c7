# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a service is placed: a generated unit, a Quadlet file or a socket-activated service."""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component, component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError
from ansible_collections.hearth.matrix.plugins.module_utils.placement import Kind, Scope, place, place_services
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import RootlessAccount

UNIT_DIR, QUADLET_DIR = "/etc/systemd/system", "/etc/containers/systemd"
USER_UNIT_DIR = "/var/lib/hearth/.config/systemd/user"
ACCOUNT = RootlessAccount("hearth", 999, "/var/lib/hearth", None)


def _service(name: str = "hearth-nginx-proxy", engine: str = "podman_rootless", ports: Sequence[int] = (80, 443),
             protocol: str = "tcp", **extra: Any) -> Component:
    return component_from_dict(dict({
        "name": name, "engine": engine,
        "container": {"image": "nginx", "user": "101:101",
                      "ports": [{"host_address": "0.0.0.0", "host_port": port, "container_port": 8000 + port,
                                 "protocol": protocol} for port in ports]},
    }, **extra))


def test_rootful_service_is_a_generated_unit_of_the_system_manager() -> None:
    component = _service(engine="docker")
    placement = place(component, None, UNIT_DIR, QUADLET_DIR)
    assert placement.kind is Kind.GENERATED and placement.scope is Scope.ENGINE
    assert placement.unit_path == UNIT_DIR + "/hearth-nginx-proxy.service"
    assert placement.component is component and placement.socket is None
    assert placement.enabled_by_systemctl and placement.name == "hearth-nginx-proxy"


def test_quadlet_service_is_a_container_file_that_systemctl_cannot_enable() -> None:
    placement = place(_service(engine="podman", quadlet=True), None, UNIT_DIR, QUADLET_DIR)
    assert placement.kind is Kind.QUADLET and placement.scope is Scope.ENGINE
    assert placement.unit_path == QUADLET_DIR + "/hearth-nginx-proxy.container"
    assert not placement.enabled_by_systemctl


def test_rootless_low_ports_without_the_opt_in_are_socket_activated() -> None:
    placement = place(_service(), ACCOUNT, USER_UNIT_DIR, QUADLET_DIR)
    assert placement.kind is Kind.SOCKET and placement.scope is Scope.SYSTEM
    # A system unit, not the user's; the sockets replace the published ports.
    assert placement.unit_path == "/etc/systemd/system/hearth-nginx-proxy.service"
    assert placement.component.container is not None and placement.component.container.ports == ()
    assert placement.socket is not None and placement.socket.socket_path == "/etc/systemd/system/hearth-nginx-proxy.socket"
    assert placement.enabled_by_systemctl


@pytest.mark.parametrize("account, ports", [
    (RootlessAccount("hearth", 999, "/var/lib/hearth", 80), (80, 443)),   # the opt-in: the engine binds them
    (ACCOUNT, (8080, 8443)),                                             # no low port
])
def test_other_rootless_services_are_the_users_generated_units(account: RootlessAccount, ports: Sequence[int]) -> None:
    placement = place(_service(ports=ports), account, USER_UNIT_DIR, QUADLET_DIR)
    assert placement.kind is Kind.GENERATED and placement.scope is Scope.ENGINE
    assert placement.unit_path == USER_UNIT_DIR + "/hearth-nginx-proxy.service"
    assert placement.component.container is not None and len(placement.component.container.ports) == len(ports)


def test_a_udp_port_cannot_be_socket_activated() -> None:
    with pytest.raises(HostError, match="^hearth_rootless_unprivileged_port_start: is needed for hearth-turn"):
        place(_service("hearth-turn", ports=(53,), protocol="udp"), ACCOUNT, USER_UNIT_DIR, QUADLET_DIR)


def test_only_started_services_are_placed_in_the_order_given() -> None:
    components = [
        _service("hearth-synapse", engine="docker", ports=()),
        component_from_dict({"name": "hearth-common", "engine": "docker"}),             # files only
        component_from_dict({"name": "hearth-mailer", "engine": "docker", "state": "absent"}),
        _service("hearth-element", engine="docker", ports=(8080,)),
    ]
    placements = place_services(components, None, UNIT_DIR, QUADLET_DIR)
    assert [p.name for p in placements] == ["hearth-synapse", "hearth-element"]
    assert {p.kind for p in placements} == {Kind.GENERATED}
