# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of the self-check: unit states and container health, from recorded answers."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.self_check_host import read_services, service_names

HEALTHY = {"Test": ["CMD-SHELL", "true"]}


def container(running: bool = True, health: str = "healthy", check: bool = True, podman_key: bool = False) -> Dict[str, Any]:
    state: Dict[str, Any] = {"Running": running}
    state["Healthcheck" if podman_key else "Health"] = {"Status": health}
    return {"Config": {"Healthcheck": HEALTHY} if check else {}, "State": state}


class Host:
    def __init__(self, answers: Dict[Tuple[str, ...], Tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: List[List[str]] = []

    def run(self, argv: List[str]) -> Tuple[int, str, str]:
        self.calls.append(argv)
        return self.answers.get(tuple(argv), (1, "", "no such command"))


NAMES = ["hearth-postgres", "hearth-synapse"]
UNITS = ("/bin/systemctl", "is-active", "--", "hearth-postgres.service", "hearth-synapse.service")


def test_service_names_in_start_order() -> None:
    assert service_names({"start_order": ["a", "b"], "services": {"b": {}, "a": {}}}) == ["a", "b"]
    assert service_names({"services": {"b": {}, "a": {}}}) == ["b", "a"]


def test_docker_states_from_one_inspect() -> None:
    host = Host({
        UNITS: (3, "active\ninactive\n", ""),
        ("/usr/bin/docker", "container", "inspect") + tuple(NAMES):
            (0, json.dumps([container(), container(running=False, health="unhealthy")]), ""),
    })
    states = read_services(host.run, "/bin/systemctl", "docker", "/usr/bin/docker", NAMES)
    assert states == {
        "hearth-postgres": {"active": "active", "container": True, "running": True, "health": "healthy", "engine": "docker"},
        "hearth-synapse": {"active": "inactive", "container": True, "running": False, "health": "unhealthy",
                           "engine": "docker"},
    }
    assert len(host.calls) == 2


def test_missing_container_is_asked_one_by_one() -> None:
    host = Host({
        UNITS: (0, "active\nactive\n", ""),
        ("/usr/bin/docker", "container", "inspect", "hearth-postgres"): (0, json.dumps([container(check=False)]), ""),
    })
    states = read_services(host.run, "/bin/systemctl", "docker", "/usr/bin/docker", NAMES)
    assert states["hearth-postgres"]["health"] == "none" and states["hearth-postgres"]["container"] is True
    assert states["hearth-synapse"] == {"active": "active", "container": False, "running": False, "health": "none",
                                        "engine": "docker"}


def test_podman_runs_the_check_when_not_reported_healthy() -> None:
    host = Host({
        UNITS: (0, "active\nactive\n", ""),
        ("/usr/bin/podman", "container", "inspect") + tuple(NAMES):
            (0, json.dumps([container(health="", podman_key=True), container(health="starting")]), ""),
        ("/usr/bin/podman", "healthcheck", "run", "hearth-postgres"): (0, "", ""),
        ("/usr/bin/podman", "healthcheck", "run", "hearth-synapse"): (1, "unhealthy", ""),
    })
    states = read_services(host.run, "/bin/systemctl", "podman", "/usr/bin/podman", NAMES)
    assert states["hearth-postgres"]["health"] == "healthy"
    assert states["hearth-synapse"]["health"] == "unhealthy"


def test_no_services_runs_nothing() -> None:
    host = Host({})
    assert read_services(host.run, "/bin/systemctl", "docker", "/usr/bin/docker", []) == {}
    assert not host.calls
