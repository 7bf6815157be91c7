# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quadlet files from the container and unit model: the same hardening as the argv."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import Network
from ansible_collections.hearth.matrix.plugins.module_utils.container import container_spec_from_dict, create_argv
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import (
    VARIABLE,
    container_keys,
    parse_version,
    render_container,
    render_network,
    version_refusal,
)
from ansible_collections.hearth.matrix.plugins.module_utils.unit import INSTANCE_PREFIX, MANAGED_MARKER, HostPaths, UnitSpec

PODMAN = HostPaths(engine="/usr/bin/podman", sh="/usr/bin/sh")
FULL: Dict[str, Any] = {
    "image": "localhost/hearth/synapse:test", "user": "991:991", "networks": ["hearth", "hearth-mail"],
    "address": "10.89.0.140", "hosts": {"hearth-postgres": "10.89.0.141"},
    "tmpfs": [{"path": "/tmp", "size": "64m"}],
    "mounts": [{"source": "/opt/h/config", "target": "/config"},
               {"source": "/opt/h/data", "target": "/data", "read_only": False}],
    "ports": [{"host_address": "127.0.0.1", "host_port": 8008, "container_port": 8008}],
    "env_file": "/opt/h/env", "env": {"A": "one two", "B": "50%"},
    "healthcheck": {"command": ["curl", "-fsS", "http://localhost:8008/health"], "interval": 5},
    "memory": "512m", "cpu_shares": 2048, "pids_limit": 256, "stop_timeout": 20,
    "command": ["run", "--config", "/config/homeserver.yaml"],
}


def spec(container: Dict[str, Any] = None, **kwargs: Any) -> UnitSpec:
    values: Dict[str, Any] = {"container": container_spec_from_dict("hearth-synapse", container or FULL),
                              "engine": "podman", "paths": PODMAN}
    values.update(kwargs)
    return UnitSpec(**values)


def keys(text: str) -> List[Tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line and not line.startswith("#")]


def test_versions() -> None:
    assert parse_version("5.4.2") == (5, 4, 2)
    assert parse_version("podman version 4.3.1\n") == (4, 3, 1)
    assert parse_version("") == ()
    assert version_refusal("podman", (5, 4, 2)) is None
    assert version_refusal("podman", (4, 4)) is None


@pytest.mark.parametrize("engine,version,found", [("podman", (4, 3, 1), "4.3.1"), ("podman", (), "unknown"),
                                                  ("docker", (), "docker")])
def test_refusal_is_one_line_naming_the_variable(engine: str, version: Tuple[int, ...], found: str) -> None:
    message = version_refusal(engine, version)
    assert message is not None and message.startswith(VARIABLE + " ") and "\n" not in message
    assert found in message


def test_hardening_matches_the_argv() -> None:
    """Every hardening flag of create_argv has its Quadlet key."""
    container = container_spec_from_dict("hearth-synapse", FULL)
    argv = create_argv(container, "podman", "/usr/bin/podman")
    found = dict(container_keys(container))
    assert "--cap-drop=ALL" in argv and found["DropCapability"] == "all"
    assert "--security-opt=no-new-privileges" in argv and found["NoNewPrivileges"] == "true"
    assert "--read-only" in argv and found["ReadOnly"] == "true"
    assert "--user=991:991" in argv and (found["User"], found["Group"]) == ("991", "991")
    assert "AddCapability" not in found


def test_container_keys() -> None:
    pairs = container_keys(container_spec_from_dict("hearth-synapse", FULL))
    assert ("ContainerName", "hearth-synapse") in pairs
    # Fixed address and MAC on the primary network, the second network plain.
    assert [v for k, v in pairs if k == "Network"] == ["hearth:ip=10.89.0.140,mac=02:42:0a:59:00:8c", "hearth-mail"]
    assert ("AddHost", "hearth-postgres:10.89.0.141") in pairs
    assert ("Mount", "type=bind,src=/opt/h/config,dst=/config,readonly") in pairs
    assert ("Mount", "type=bind,src=/opt/h/data,dst=/data") in pairs
    assert ("Tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=64m") in pairs
    assert ("PublishPort", "127.0.0.1:8008:8008/tcp") in pairs
    assert ("EnvironmentFile", "/opt/h/env") in pairs
    # Quoted for systemd's word splitting; % doubled (a specifier otherwise).
    assert ("Environment", '"A=one two"') in pairs and ("Environment", "B=50%%") in pairs
    assert ("PodmanArgs", "--memory=512m --cpu-shares=2048 --pids-limit=256") in pairs
    assert ("StopTimeout", "20") in pairs
    assert ("HealthCmd", "curl -fsS http://localhost:8008/health") in pairs
    assert ("Exec", "run --config /config/homeserver.yaml") in pairs


def test_root_exception_adds_the_capability_back() -> None:
    raw = dict(FULL, cap_add=["NET_BIND_SERVICE"], root_reason="binds port 25")
    assert ("AddCapability", "CAP_NET_BIND_SERVICE") in container_keys(container_spec_from_dict("x", raw))


def test_notify_healthy_from_podman_5() -> None:
    """podman >= 5.0: Notify=healthy replaces the readiness loop; older: the loop stays."""
    new = render_container(spec(), (5, 4, 2))
    assert "Notify=healthy" in new and "ExecStartPost" not in new
    assert "HealthStartupCmd=curl -fsS http://localhost:8008/health" in new and "HealthStartupInterval=1s" in new
    old = render_container(spec(), (4, 9))
    assert "Notify=healthy" not in old
    assert "ExecStartPost=/usr/bin/sh -c" in old and "podman exec hearth-synapse curl" in old
    plain = render_container(spec(dict(FULL, healthcheck=None)), (5, 4))
    assert "Notify=" not in plain and "ExecStartPost" not in plain


def test_unit_section_dependencies_and_markers() -> None:
    text = render_container(spec(requires=("hearth-postgres.service",), after=("x.service",),
                                 instance="synapse@/opt/h", fingerprint="image=sha256:1 state=ab",
                                 reload_on_ready=("hearth-nginx-proxy",)), (5, 4))
    lines = text.splitlines()
    # The header renames and removals look for (units_of_instances).
    assert lines[0] == MANAGED_MARKER and lines[1] == INSTANCE_PREFIX + "synapse@/opt/h"
    found = dict(keys(text))
    assert found["Requires"] == "hearth-postgres.service"
    assert found["Wants"] == "network-online.target hearth-network.service hearth-mail-network.service"
    assert found["After"].split() == ["network-online.target", "hearth-network.service", "hearth-mail-network.service",
                                      "hearth-postgres.service", "x.service"]
    assert found["Restart"] == "always" and found["SyslogIdentifier"] == "hearth-synapse"
    assert found["WantedBy"] == "multi-user.target"
    assert "ExecStartPost=-/usr/bin/podman kill --signal=HUP hearth-nginx-proxy" in lines


def test_rendering_is_stable() -> None:
    assert render_container(spec(), (5, 4)) == render_container(spec(), (5, 4))


def test_network_file() -> None:
    text = render_network(Network(name="hearth", subnet="10.89.0.0/24"))
    assert text.splitlines() == [MANAGED_MARKER, "[Network]", "NetworkName=hearth", "Subnet=10.89.0.0/24",
                                 "IPRange=10.89.0.0/25"]
    assert "Subnet" not in render_network(Network(name="plain"))


def test_multiline_value_is_refused() -> None:
    with pytest.raises(ValueError):
        render_container(spec(description="a\nb"), (5, 4))
