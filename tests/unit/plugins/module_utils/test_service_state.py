# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine and systemd side of a converge, with the host's commands scripted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component, Network, component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import (
    EngineCache,
    HostFacts,
    daemon_reload,
    detect_facts,
    ensure_image,
    ensure_networks,
    network_subnets,
    prefetch,
    remove_leftovers,
    remove_service,
    systemctl,
    unit_states,
    unit_text,
)
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import Finder, ScriptedHost

DOCKER = "/usr/bin/docker"
SYSTEMCTL = "/bin/systemctl"
IMAGE = "ghcr.io/element-hq/synapse:v1.163.2"
IMAGE_ID = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
FACTS = HostFacts(engine="docker", engine_path=DOCKER, sh_path="/bin/sh", systemctl=SYSTEMCTL, openssl="/usr/bin/openssl",
                  systemd_version=252)
INSPECT = [DOCKER, "image", "inspect", "--format", "{{.Id}}", IMAGE]


def component(**fields: Any) -> Component:
    raw: Dict[str, Any] = {"name": "hearth-synapse", "container": {"image": IMAGE, "user": "991:991",
                                                                   "networks": ["hearth"]}}
    raw.update(fields)
    return component_from_dict(raw)


# --- detect_facts -----------------------------------------------------------------------------

def test_detect_facts() -> None:
    host = ScriptedHost(rules=[([SYSTEMCTL, "--version"], (0, "systemd 252 (252.39-1~deb12u2)\n+PAM\n", ""))])
    facts = detect_facts(host, Finder({"podman": "/usr/bin/podman", "systemctl": SYSTEMCTL, "sh": "/usr/bin/sh"}), "podman")
    assert facts == HostFacts(engine="podman", engine_path="/usr/bin/podman", sh_path="/usr/bin/sh", systemctl=SYSTEMCTL,
                              openssl=None, systemd_version=252)
    assert facts.engine_unit == "" and facts.paths.engine == "/usr/bin/podman"
    assert host.calls == [[SYSTEMCTL, "--version"]]


def test_detect_facts_defaults() -> None:
    host = ScriptedHost(rules=[([SYSTEMCTL], (1, "", "no"))])
    facts = detect_facts(host, Finder({"docker": DOCKER, "systemctl": SYSTEMCTL}), "docker")
    assert facts.sh_path == "/bin/sh" and facts.systemd_version == 0 and facts.engine_unit == "docker.service"


def test_missing_engine_names_the_engine_field() -> None:
    with pytest.raises(HostError) as info:
        detect_facts(ScriptedHost(), Finder({"podman": "/usr/bin/podman", "systemctl": SYSTEMCTL}), "docker")
    assert info.value.field == "engine" and "no 'docker' executable" in str(info.value)


def test_missing_systemctl() -> None:
    with pytest.raises(HostError) as info:
        detect_facts(ScriptedHost(), Finder({"docker": DOCKER}), "docker")
    assert info.value.field == "engine" and "systemd" in str(info.value)


# --- ensure_image -----------------------------------------------------------------------------

def test_image_present() -> None:
    host = ScriptedHost(rules=[(INSPECT, (0, IMAGE_ID + "\n", ""))])
    report = Report()
    assert ensure_image(host, FACTS, component(), report) == IMAGE_ID
    assert host.calls == [INSPECT] and report.changes == [] and report.restart_reasons == []


def test_image_missing_is_pulled() -> None:
    host = ScriptedHost(rules=[(INSPECT, (1, "", "No such image"))])
    pulled = {"done": False}

    def run_command(args: Any, **kwargs: Any) -> Any:
        host.calls.append(list(args))
        if list(args) == INSPECT:
            return (0, IMAGE_ID + "\n", "") if pulled["done"] else (1, "", "No such image")
        if list(args) == [DOCKER, "pull", IMAGE]:
            pulled["done"] = True
        return 0, "", ""

    host.run_command = run_command  # type: ignore[method-assign]
    report = Report()
    assert ensure_image(host, FACTS, component(), report) == IMAGE_ID
    assert host.calls == [INSPECT, [DOCKER, "info"], [DOCKER, "pull", IMAGE], INSPECT]
    assert report.changes == ["image %s: pulled" % IMAGE] and report.restart_reasons == ["image"]


def test_image_missing_check_mode_does_not_pull() -> None:
    host = ScriptedHost(check_mode=True, rules=[(INSPECT, (1, "", "No such image"))])
    report = Report()
    image_id = ensure_image(host, FACTS, component(), report)
    assert image_id and image_id != IMAGE_ID
    assert [DOCKER, "pull", IMAGE] not in host.calls and report.changes == ["image %s: pulled" % IMAGE]


def test_engine_not_answering() -> None:
    host = ScriptedHost(rules=[(INSPECT, (1, "", "Cannot connect")),
                               ([DOCKER, "info"], (1, "", "Cannot connect to the Docker daemon\n"))])
    with pytest.raises(HostError) as info:
        ensure_image(host, FACTS, component(), Report())
    assert info.value.field == "engine" and "Cannot connect to the Docker daemon" in str(info.value)
    assert [DOCKER, "pull", IMAGE] not in host.calls


def test_image_missing_without_pull() -> None:
    host = ScriptedHost(rules=[(INSPECT, (1, "", ""))])
    with pytest.raises(HostError) as info:
        ensure_image(host, FACTS, component(pull=False), Report())
    assert info.value.field == "image" and [DOCKER, "pull", IMAGE] not in host.calls


def test_pull_failure() -> None:
    host = ScriptedHost(rules=[(INSPECT, (1, "", "")), ([DOCKER, "pull"], (1, "", "manifest unknown\n"))])
    with pytest.raises(HostError) as info:
        ensure_image(host, FACTS, component(), Report())
    assert info.value.field == "image" and "manifest unknown" in str(info.value)


# --- ensure_networks --------------------------------------------------------------------------

def test_networks_created_when_missing() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect", "hearth"], (0, "[]", "")),
                               ([DOCKER, "network", "inspect"], (1, "", "not found"))])
    report = Report()
    ensure_networks(host, FACTS, ["hearth", "hearth-federation"], report)
    assert [DOCKER, "network", "create", "hearth-federation"] in host.calls
    assert [DOCKER, "network", "create", "hearth"] not in host.calls
    assert report.changes == ["network hearth-federation: created"]


def test_networks_check_mode() -> None:
    host = ScriptedHost(check_mode=True, rules=[([DOCKER, "network", "inspect"], (1, "", ""))])
    report = Report()
    ensure_networks(host, FACTS, ["hearth"], report)
    # Read-only calls only: the inspect, and the engine's info before a network is created.
    assert host.calls == [[DOCKER, "network", "inspect", "hearth"], [DOCKER, "info"]]
    assert report.changes == ["network hearth: created"]


def test_network_missing_because_the_engine_does_not_answer() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (1, "", "")),
                               ([DOCKER, "info"], (1, "", "Cannot connect to the Docker daemon"))])
    with pytest.raises(HostError) as info:
        ensure_networks(host, FACTS, ["hearth"], Report())
    assert info.value.field == "engine" and "Cannot connect" in str(info.value)
    assert [DOCKER, "network", "create", "hearth"] not in host.calls


def test_network_create_failure() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (1, "", "")),
                               ([DOCKER, "network", "create"], (1, "", "permission denied"))])
    with pytest.raises(HostError) as info:
        ensure_networks(host, FACTS, ["hearth"], Report())
    assert info.value.field == "networks" and "permission denied" in str(info.value)


PODMAN_INSPECT = '[{"name": "hearth", "subnets": [{"subnet": "10.89.91.0/24", "gateway": "10.89.91.1"}]}]'
DOCKER_INSPECT = '[{"Name": "hearth", "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.89.91.0/24"}]}}]'


@pytest.mark.parametrize("output, subnets", [
    (PODMAN_INSPECT, ["10.89.91.0/24"]),
    (DOCKER_INSPECT, ["10.89.91.0/24"]),
    ('[{"Name": "hearth", "IPAM": {"Config": []}}]', []),
    ("not json", []),
    ("[]", []),
])
def test_network_subnets_of_both_engines(output: str, subnets: List[str]) -> None:
    assert network_subnets(output) == subnets


def test_network_with_subnet_is_created_with_a_dynamic_lower_half() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (1, "", "no such network"))])
    ensure_networks(host, FACTS, [Network("hearth", "10.89.91.0/24")], Report())
    assert [DOCKER, "network", "create", "--subnet=10.89.91.0/24", "--ip-range=10.89.91.0/25", "hearth"] in host.calls


@pytest.mark.parametrize("output", [PODMAN_INSPECT, DOCKER_INSPECT])
def test_existing_network_with_the_asked_subnet_is_left_alone(output: str) -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (0, output, ""))])
    report = Report()
    ensure_networks(host, FACTS, [Network("hearth", "10.89.91.0/24")], report)
    assert report.changes == [] and host.calls == [[DOCKER, "network", "inspect", "hearth"]]


def test_existing_network_with_another_subnet_is_an_error_not_a_recreate() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (0, PODMAN_INSPECT.replace("91", "7"), ""))])
    with pytest.raises(HostError) as info:
        ensure_networks(host, FACTS, [Network("hearth", "10.89.91.0/24")], Report())
    assert info.value.field == "networks"
    assert "exists with subnet 10.89.7.0/24, not 10.89.91.0/24" in str(info.value)
    assert not [call for call in host.calls if call[2] in ("rm", "create")]


# --- prefetch: one engine call for all images, one for all networks ---------------------------

OTHER = "localhost/hearth/nginx:test"


def test_prefetch_answers_every_later_image_and_network_question() -> None:
    host = ScriptedHost(rules=[
        ([DOCKER, "image", "inspect"], (0, "%s\nsha256:nginx\n" % IMAGE_ID, "")),
        ([DOCKER, "network", "inspect"], (0, DOCKER_INSPECT, ""))])
    cache = EngineCache()
    prefetch(host, FACTS, [IMAGE, OTHER, IMAGE], ["hearth", "hearth"], cache)
    # Sorted and unique, so the answers line up with the names.
    assert host.calls == [[DOCKER, "image", "inspect", "--format", "{{.Id}}", IMAGE, OTHER],
                          [DOCKER, "network", "inspect", "hearth"]]
    host.calls.clear()
    assert ensure_image(host, FACTS, component(), Report(), cache) == IMAGE_ID
    report = Report()
    ensure_networks(host, FACTS, [Network("hearth", "10.89.91.0/24")], report, cache)
    assert host.calls == [] and report.changes == []


def test_prefetch_keeps_nothing_of_an_incomplete_answer() -> None:
    # docker prints the images it found and fails for the missing one: the lines no longer
    # line up with the names, so each component asks on its own.
    host = ScriptedHost(rules=[([DOCKER, "image", "inspect"], (1, "sha256:nginx\n", "No such image")),
                               ([DOCKER, "network", "inspect"], (1, "[]", "no such network"))])
    cache = EngineCache()
    prefetch(host, FACTS, [IMAGE, OTHER], ["hearth"], cache)
    assert cache == EngineCache()
    host.answer(INSPECT, (0, IMAGE_ID + "\n", ""))
    assert ensure_image(host, FACTS, component(), Report(), cache) == IMAGE_ID
    assert host.calls[-1] == INSPECT


def test_prefetch_ignores_a_network_answer_for_another_name() -> None:
    host = ScriptedHost(rules=[([DOCKER, "network", "inspect"], (0, DOCKER_INSPECT, ""))])
    cache = EngineCache()
    prefetch(host, FACTS, [], ["stack"], cache)
    assert cache.networks == {}


# --- unit_states ------------------------------------------------------------------------------

SHOW = """ActiveState=active
NeedDaemonReload=no
UnitFileState=enabled
Id=hearth-postgres.service

Id=hearth-synapse.service
ActiveState=failed
UnitFileState=disabled
NeedDaemonReload=yes

Id=hearth-identity.service
ActiveState=inactive
UnitFileState=
NeedDaemonReload=no
"""


def test_unit_states_parses_every_unit_in_one_call() -> None:
    host = ScriptedHost(rules=[([SYSTEMCTL, "show"], (0, SHOW, ""))])
    states = unit_states(host, FACTS, ["hearth-synapse", "hearth-postgres", "hearth-identity", "hearth-element"])
    assert host.calls == [[SYSTEMCTL, "show", "--property=Id,ActiveState,UnitFileState,NeedDaemonReload",
                           "hearth-synapse.service", "hearth-postgres.service", "hearth-identity.service",
                           "hearth-element.service"]]
    assert states["hearth-postgres"] == {"Id": "hearth-postgres.service", "ActiveState": "active",
                                         "UnitFileState": "enabled", "NeedDaemonReload": "no"}
    assert states["hearth-synapse"]["ActiveState"] == "failed" and states["hearth-synapse"]["NeedDaemonReload"] == "yes"
    assert states["hearth-identity"]["UnitFileState"] == ""
    assert states["hearth-element"] == {}  # not in the output at all
    assert list(states) == ["hearth-synapse", "hearth-postgres", "hearth-identity", "hearth-element"]


def test_unit_states_without_names_runs_nothing() -> None:
    host = ScriptedHost()
    assert unit_states(host, FACTS, []) == {} and host.calls == []


def test_unit_states_failure() -> None:
    host = ScriptedHost(rules=[([SYSTEMCTL, "show"], (1, "", "Failed to connect to bus\n"))])
    with pytest.raises(HostError) as info:
        unit_states(host, FACTS, ["hearth-synapse"])
    assert info.value.field == "systemd" and "Failed to connect to bus" in str(info.value)


# --- systemctl, daemon_reload -----------------------------------------------------------------

def test_systemctl_one_call_for_all_services() -> None:
    host = ScriptedHost()
    systemctl(host, FACTS, "restart", ["hearth-postgres", "hearth-synapse"])
    systemctl(host, FACTS, "enable", [])
    assert host.calls == [[SYSTEMCTL, "restart", "hearth-postgres.service", "hearth-synapse.service"]]


def test_systemctl_and_daemon_reload_do_nothing_in_check_mode() -> None:
    host = ScriptedHost(check_mode=True)
    systemctl(host, FACTS, "restart", ["hearth-synapse"])
    daemon_reload(host, FACTS)
    assert host.calls == []


def test_daemon_reload() -> None:
    host = ScriptedHost()
    daemon_reload(host, FACTS)
    assert host.calls == [[SYSTEMCTL, "daemon-reload"]]


@pytest.mark.parametrize("call", [lambda h: systemctl(h, FACTS, "restart", ["hearth-synapse"]),
                                  lambda h: daemon_reload(h, FACTS)])
def test_systemctl_failure_names_systemd(call: Any) -> None:
    host = ScriptedHost(default=(1, "", "Job failed\n"))
    with pytest.raises(HostError) as info:
        call(host)
    assert info.value.field == "systemd" and "Job failed" in str(info.value)


# --- remove_service ---------------------------------------------------------------------------

def test_remove_service(tmp_path: Path) -> None:
    unit = tmp_path / "hearth-identity.service"
    unit.write_text("[Unit]\n")
    host = ScriptedHost()
    report = Report()
    assert remove_service(host, FACTS, "hearth-identity", str(unit), report) is True
    assert not unit.exists()
    assert host.calls == [[SYSTEMCTL, "disable", "--now", "hearth-identity.service"],
                          [DOCKER, "rm", "--force", "hearth-identity"]]
    assert report.diffs == [{"before_header": str(unit), "after_header": str(unit), "before": "[Unit]\n", "after": ""}]
    assert len(report.changes) == 1


def test_remove_service_check_mode(tmp_path: Path) -> None:
    unit = tmp_path / "hearth-identity.service"
    unit.write_text("[Unit]\n")
    host = ScriptedHost(check_mode=True)
    report = Report()
    assert remove_service(host, FACTS, "hearth-identity", str(unit), report) is True
    assert unit.exists() and host.calls == [] and report.changed


def test_remove_service_already_gone(tmp_path: Path) -> None:
    host = ScriptedHost()
    report = Report()
    assert remove_service(host, FACTS, "hearth-identity", str(tmp_path / "hearth-identity.service"), report) is False
    assert host.calls == [] and not report.changed


def test_remove_leftovers_takes_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "hearth-matrix-acme.timer").write_text("[Timer]\n")
    settings = tmp_path / "acme.json"
    settings.write_text("{}")
    host = ScriptedHost()
    report = Report()
    removed = remove_leftovers(host, FACTS, str(tmp_path), ["hearth-matrix-acme.timer", "hearth-matrix-acme.service"],
                               [str(settings), str(tmp_path / "gone.py")], report)
    assert removed is True
    assert host.calls == [[SYSTEMCTL, "disable", "--now", "hearth-matrix-acme.timer"]]
    assert not (tmp_path / "hearth-matrix-acme.timer").exists() and not settings.exists()
    assert report.changes == ["unit hearth-matrix-acme.timer: removed (turned off)",
                              "file %s: removed (turned off)" % settings]


def test_remove_leftovers_nothing_there_or_check_mode(tmp_path: Path) -> None:
    host = ScriptedHost()
    report = Report()
    assert remove_leftovers(host, FACTS, str(tmp_path), ["hearth-matrix-acme.timer"], [str(tmp_path / "x")], report) is False
    assert host.calls == [] and not report.changed
    (tmp_path / "hearth-matrix-acme.timer").write_text("[Timer]\n")
    checking = ScriptedHost(check_mode=True)
    assert remove_leftovers(checking, FACTS, str(tmp_path), ["hearth-matrix-acme.timer"], [], report) is True
    assert checking.calls == [] and report.changed and (tmp_path / "hearth-matrix-acme.timer").exists()


# --- unit_text fingerprint --------------------------------------------------------------------

def fingerprint_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("# fingerprint: ")]
    assert len(lines) == 1, text
    return lines[0]


def text_for(image_id: str = IMAGE_ID, digests: Any = ("/opt/a=1", "/opt/b=2"), **fields: Any) -> str:
    report = Report()
    report.digests.extend(digests)
    return unit_text(FACTS, component(**fields), image_id, report)


def test_unit_text_is_stable() -> None:
    assert text_for() == text_for()
    assert text_for(digests=["/opt/a=1", "/opt/b=2"]) == text_for(digests=["/opt/b=2", "/opt/a=1"])  # order-free
    assert "image=%s " % IMAGE_ID[:19] in fingerprint_line(text_for())
    assert "ExecStart=%s start --attach hearth-synapse" % DOCKER in text_for()


@pytest.mark.parametrize("changed", [
    {"image_id": "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"},
    {"image_id": IMAGE_ID[:-1] + "0"},  # same 19-character prefix, other image
    {"digests": ["/opt/a=1", "/opt/b=3"]},
    {"digests": ["/opt/a=1"]},
    {"fingerprint": "v2"},
])
def test_unit_text_changes_with_image_and_digests(changed: Dict[str, Any]) -> None:
    assert fingerprint_line(text_for(**changed)) != fingerprint_line(text_for())


def test_unit_text_ignores_what_is_not_in_the_digests() -> None:
    report = Report()
    report.digests.append("/opt/a=1")
    report.changes.append("file /opt/log.config: updated")
    report.restart_reasons.append("something")
    assert unit_text(FACTS, component(), IMAGE_ID, report) == text_for(digests=["/opt/a=1"])


def test_write_and_read_unit(tmp_path: Path) -> None:
    from ansible_collections.hearth.matrix.plugins.module_utils.service_state import read_text, write_unit
    path = tmp_path / "x.service"
    assert read_text(str(path)) is None
    write_unit(str(path), "[Unit]\n")
    assert read_text(str(path)) == "[Unit]\n" and oct(os.stat(str(path)).st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.service"]
