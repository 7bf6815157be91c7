# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The socket_activation filter: what nginx listens on, its fd list, and bad input."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.filter.socket_filters import FilterModule, socket_activation

PORTS = [{"host_address": "0.0.0.0", "host_port": 80, "container_port": 8080},
         {"host_address": "0.0.0.0", "host_port": 443, "container_port": 8443},
         {"host_address": "::", "host_port": 443, "container_port": 8443}]


def test_filter_module_exposes_it() -> None:
    assert FilterModule().filters() == {"socket_activation": socket_activation}


def test_activated_listens_on_the_host_addresses_in_fd_order() -> None:
    result = socket_activation(PORTS, "podman_rootless")
    assert result == {"activated": True, "fds": "3;4;5;",
                      "listens": {8080: ["0.0.0.0:80"], 8443: ["0.0.0.0:443", "[::]:443"]}}


@pytest.mark.parametrize("engine, start", [("podman_rootless", 80), ("podman_rootless", "80"), ("podman", None)])
def test_not_activated_listens_on_the_container_ports(engine: str, start: object) -> None:
    result = socket_activation(PORTS, engine, start)
    assert result == {"activated": False, "fds": "", "listens": {8080: ["8080"], 8443: ["8443"]}}


@pytest.mark.parametrize("bad", ["80", [{"host_port": 80}], [80]])
def test_bad_input_raises(bad: object) -> None:
    with pytest.raises(AnsibleFilterError):
        socket_activation(bad, "podman_rootless")  # type: ignore[arg-type]
