# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology and container_argv filters: results, and AnsibleFilterError on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.filter.topology import FilterModule, container_argv, topology
from ansible_collections.hearth.matrix.plugins.module_utils.topology import TopologyError, compute_topology

STACK: Dict[str, Any] = {"server_name": "example.org", "components": {"postgres": True, "synapse": True, "nginx_proxy": True}}
CONTAINER: Dict[str, Any] = {"image": "localhost/hearth/postgres:test", "user": "991:991", "networks": ["hearth"]}
FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"


def test_filter_module_exposes_both_filters() -> None:
    filters = FilterModule().filters()
    assert filters == {"topology": topology, "container_argv": container_argv}


def test_topology_filter_returns_the_model_result() -> None:
    assert topology(STACK) == compute_topology(STACK)


@pytest.mark.parametrize("stack, fragment", [
    ({"server_name": "example.org", "components": {"corporal": True, "nginx_proxy": True}}, "components.corporal"),
    ({"server_name": "example.org", "components": {"synapse": True}, "extra_services": [{"name": "a", "after": ["a"]}]},
     "dependency cycle"),
    ({"components": {"synapse": True}}, "server_name"),
    ({"server_name": "example.org", "components": {"synapse": True, "postgres": False}}, "external_database"),
])
def test_topology_filter_errors(stack: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        topology(stack)
    assert str(info.value).startswith("hearth.matrix.topology: ")
    assert fragment in str(info.value)
    assert isinstance(info.value.__cause__, TopologyError)


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_argv_filter(engine: str) -> None:
    argv = container_argv(CONTAINER, "hearth-postgres", engine)
    assert argv[:3] == ["/usr/bin/%s" % engine, "create", "--name=hearth-postgres"]
    assert "--cap-drop=ALL" in argv and argv[-1] == CONTAINER["image"]
    assert container_argv(CONTAINER, "hearth-postgres", engine, "/opt/bin/%s" % engine)[0] == "/opt/bin/%s" % engine


@pytest.mark.parametrize("container, name, engine, path, fragment", [
    (dict(CONTAINER, user="root"), "hearth-postgres", "docker", "", "user: runs as root"),
    (dict(CONTAINER, mounts=[{"source": "data", "target": "/data"}]), "hearth-postgres", "docker", "", "mounts[0].source"),
    (CONTAINER, "bad name", "docker", "", "name:"),
    (CONTAINER, "hearth-postgres", "lxc", "", "engine:"),
    (CONTAINER, "hearth-postgres", "docker", "bin/docker", "engine_path:"),
])
def test_container_argv_filter_errors(container: Dict[str, Any], name: str, engine: str, path: str, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        container_argv(container, name, engine, path)
    assert str(info.value).startswith("hearth.matrix.container_argv: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize("filter_name", ["topology", "container_argv"])
def test_filter_documentation_exists_and_parses(filter_name: str) -> None:
    doc = yaml.safe_load((FILTER_DIR / (filter_name + ".yml")).read_text())
    assert doc["DOCUMENTATION"]["name"] == filter_name
    assert doc["DOCUMENTATION"]["short_description"]
    assert doc["EXAMPLES"] and doc["RETURN"]
