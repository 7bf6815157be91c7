# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_argv filter: results, and AnsibleFilterError on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.filter.core import FilterModule, container_argv

CONTAINER: Dict[str, Any] = {"image": "localhost/hearth/postgres:test", "user": "991:991", "networks": ["hearth"]}
FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"


def test_filter_module_exposes_container_argv_only() -> None:
    # The topology is the action hearth.matrix.stack's job (its errors name hearth_* variables).
    assert FilterModule().filters() == {"container_argv": container_argv}


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


@pytest.mark.parametrize("filter_name", ["container_argv"])
def test_filter_documentation_exists_and_parses(filter_name: str) -> None:
    doc = yaml.safe_load((FILTER_DIR / (filter_name + ".yml")).read_text())
    assert doc["DOCUMENTATION"]["name"] == filter_name
    assert doc["DOCUMENTATION"]["short_description"]
    assert doc["EXAMPLES"] and doc["RETURN"]
