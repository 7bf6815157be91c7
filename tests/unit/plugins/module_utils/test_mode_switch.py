# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving data between a rootful and a rootless mode: the id translation, the marker, and
the host side (the other mode's units removed, owners moved) on real files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component, component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import IdMap, IdRange
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.mode_switch import (
    MARKER,
    engine_of_unit,
    marker_text,
    parse_marker,
    read_marker,
    roots_of,
    translate,
    translate_tree,
)
from ansible_collections.hearth.matrix.plugins.module_utils.mode_switch_host import mark, switch_modes
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import HostFacts
from ansible_collections.hearth.matrix.plugins.module_utils.unit import INSTANCE_PREFIX, MANAGED_MARKER
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import ScriptedHost

ROOTLESS = IdMap(user_uid=998, user_gid=997, subuid=IdRange(131072, 65536), subgid=IdRange(196608, 65536))
PODMAN = "/usr/bin/podman"
SYSTEMCTL = "/bin/systemctl"
FACTS = HostFacts(engine="podman_rootless", engine_path=PODMAN, sh_path="/bin/sh", systemctl=SYSTEMCTL, openssl=None,
                  systemd_version=252, user_scope=True)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files other owners needs root")


# --- the mapping and the marker ---------------------------------------------------------------

def test_marker_round_trip() -> None:
    assert parse_marker(marker_text(ROOTLESS)) == ROOTLESS
    assert parse_marker(marker_text(None)) is None and parse_marker(None) is None


@pytest.mark.parametrize("text", ["rootless uid=1", "something else", "rootless uid=x gid=1 subuid=1:2 subgid=1:2"])
def test_an_unreadable_marker_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_marker(text)


def test_translate_rootful_to_rootless_and_back() -> None:
    assert translate(991, None, ROOTLESS, "uid") == 131072 + 990
    assert translate(0, None, ROOTLESS, "uid") == 998 and translate(0, None, ROOTLESS, "gid") == 997
    assert translate(991, None, ROOTLESS, "gid") == 196608 + 990
    assert translate(70000, None, ROOTLESS, "uid") == 70000          # no container id of the new range
    assert translate(131072 + 990, ROOTLESS, None, "uid") == 991
    assert translate(998, ROOTLESS, None, "uid") == 0
    assert translate(1000, ROOTLESS, None, "uid") == 1000              # nobody's id under the old mapping
    other = IdMap(1001, 1001, IdRange(300000, 65536), IdRange(300000, 65536))
    assert translate(131072 + 990, ROOTLESS, other, "uid") == 300000 + 990


def test_roots_and_engine_of_unit(tmp_path: Path) -> None:
    assert roots_of("/opt/h/synapse", ["/opt/h/synapse/data", "/srv/media"]) == ["/opt/h/synapse", "/srv/media"]
    unit = tmp_path / "u.service"
    unit.write_text("[Service]\nExecStartPre=-/usr/bin/docker rm x\nExecStart=/usr/bin/docker start --attach x\n")
    assert engine_of_unit(str(unit)) == "/usr/bin/docker"


@needs_root
def test_translate_tree_moves_every_owner_and_keeps_modes_and_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("not ours")
    base = tmp_path / "synapse"
    (base / "keys").mkdir(parents=True)
    key = base / "keys" / "signing.key"
    key.write_text("secret")
    os.chmod(key, 0o600)
    os.chown(key, 991, 991)
    os.chown(base / "keys", 991, 991)
    (base / "link").symlink_to(outside)
    os.chown(outside, 991, 991)
    assert translate_tree([str(base)], None, ROOTLESS) == 4              # base, keys, key, the link itself
    info = os.stat(key)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (131072 + 990, 196608 + 990, 0o600)
    assert os.lstat(base / "link").st_uid == 998 and os.stat(outside).st_uid == 991   # never followed
    assert translate_tree([str(base)], ROOTLESS, None) == 4
    assert (os.stat(key).st_uid, os.stat(base).st_uid) == (991, 0)


# --- the host side -----------------------------------------------------------------------------

def _component(base: Path, engine: str = "podman_rootless") -> Component:
    return component_from_dict({
        "name": "hearth-synapse", "engine": engine, "instance": "synapse@%s" % base,
        "directories": [{"path": str(base), "owner": "root", "group": "991", "mode": "0750"}],
        "container": {"image": "localhost/hearth/synapse:test", "user": "991:991", "networks": ["hearth"]}})


def _dirs(tmp_path: Path) -> Dict[str, str]:
    (tmp_path / "system").mkdir(exist_ok=True)
    return {"unit_dir": str(tmp_path / "system"), "quadlet_dir": str(tmp_path / "quadlet"), "podman": PODMAN}


def _rootful_unit(tmp_path: Path, name: str, base: Path) -> Path:
    unit = tmp_path / "system" / (name + ".service")
    unit.write_text("%s\n%ssynapse@%s\n[Service]\nExecStart=/usr/bin/docker start --attach %s\n"
                    % (MANAGED_MARKER, INSTANCE_PREFIX, base, name))
    return unit


@needs_root
def test_rootful_to_rootless_removes_the_system_unit_and_moves_the_owners(tmp_path: Path) -> None:
    base = tmp_path / "synapse"
    base.mkdir()
    os.chown(base, 0, 991)
    dirs = _dirs(tmp_path)
    unit = _rootful_unit(tmp_path, "my-synapse", base)     # another service name: same instance
    host, reports = ScriptedHost(), {}  # type: ScriptedHost, Dict[str, Report]
    assert switch_modes(host, FACTS, [_component(base)], ROOTLESS, reports, dirs) == []
    assert not unit.exists()
    assert [SYSTEMCTL, "disable", "--now", "my-synapse.service"] in host.calls
    assert ["/usr/bin/docker", "rm", "--force", "my-synapse"] in host.calls     # the engine the unit ran
    assert [SYSTEMCTL, "daemon-reload"] in host.calls                          # the system instance, as root
    assert (os.stat(base).st_uid, os.stat(base).st_gid) == (998, 196608 + 990)
    assert parse_marker(read_marker(str(base))) == ROOTLESS
    assert any("moved from rootful" in change for change in reports["hearth-synapse"].changes)
    host = ScriptedHost()
    assert switch_modes(host, FACTS, [_component(base)], ROOTLESS, {}, dirs) == [] and host.calls == []


@needs_root
def test_check_mode_reports_and_changes_nothing(tmp_path: Path) -> None:
    base = tmp_path / "synapse"
    base.mkdir()
    os.chown(base, 0, 991)
    dirs = _dirs(tmp_path)
    unit = _rootful_unit(tmp_path, "hearth-synapse", base)
    host, reports = ScriptedHost(check_mode=True), {}  # type: ScriptedHost, Dict[str, Report]
    switch_modes(host, FACTS, [_component(base)], ROOTLESS, reports, dirs)
    assert unit.exists() and host.calls == [] and not (base / MARKER).exists()
    assert os.stat(base).st_gid == 991 and reports["hearth-synapse"].changed


def test_a_first_rootless_deployment_is_only_marked(tmp_path: Path) -> None:
    base = tmp_path / "synapse"
    host = ScriptedHost()
    unmarked = switch_modes(host, FACTS, [_component(base)], ROOTLESS, {}, _dirs(tmp_path))
    assert unmarked == [str(base)] and host.calls == []
    base.mkdir()
    mark(host, unmarked, ROOTLESS)
    assert parse_marker(read_marker(str(base))) == ROOTLESS


def test_rootful_runs_without_a_marker_do_nothing(tmp_path: Path) -> None:
    base = tmp_path / "synapse"
    base.mkdir()
    host, reports = ScriptedHost(), {}  # type: ScriptedHost, Dict[str, Report]
    assert switch_modes(host, FACTS, [_component(base, "podman")], None, reports, _dirs(tmp_path)) == []
    assert host.calls == [] and reports == {} and not (base / MARKER).exists()


def _deployed_rootless(tmp_path: Path) -> Path:
    """A base directory marked as last deployed rootless. The user of that mapping is this
    process's own (a real passwd entry): its unit dir under its home has no unit of ours."""
    base = tmp_path / "synapse"
    base.mkdir()
    old = IdMap(os.getuid(), os.getgid(), IdRange(131072, 65536), IdRange(131072, 65536))
    (base / MARKER).write_text(marker_text(old))
    return base


@needs_root
def test_rootless_to_rootful_moves_the_owners_back(tmp_path: Path) -> None:
    base = _deployed_rootless(tmp_path)
    data = base / "data"
    data.mkdir()
    os.chown(data, 131072 + 990, 131072 + 990)
    reports: Dict[str, Report] = {}
    switch_modes(ScriptedHost(), FACTS, [_component(base, "podman")], None, reports, _dirs(tmp_path))
    assert (os.stat(data).st_uid, os.stat(data).st_gid) == (991, 991)
    assert parse_marker(read_marker(str(base))) is None


def test_an_unreadable_marker_names_the_variable(tmp_path: Path) -> None:
    base = tmp_path / "synapse"
    base.mkdir()
    (base / MARKER).write_text("garbage\n")
    with pytest.raises(HostError) as caught:
        switch_modes(ScriptedHost(), FACTS, [_component(base)], ROOTLESS, {}, _dirs(tmp_path))
    assert caught.value.field == "hearth_engine" and "unreadable owner marker" in str(caught.value)


def test_a_system_unit_run_as_the_user_is_not_taken_for_a_rootful_one(tmp_path: Path) -> None:
    """The rootless proxy's socket-activated system unit (User=) stays when entering rootless."""
    base = tmp_path / "synapse"
    base.mkdir()
    dirs = _dirs(tmp_path)
    unit = _rootful_unit(tmp_path, "hearth-synapse", base)
    unit.write_text(unit.read_text() + "User=hearth\n")
    host = ScriptedHost()
    assert switch_modes(host, FACTS, [_component(base)], ROOTLESS, {}, dirs) == [str(base)]
    assert unit.exists() and host.calls == []


@needs_root
def test_leaving_rootless_removes_a_socket_activated_service(tmp_path: Path) -> None:
    base = _deployed_rootless(tmp_path)
    dirs = _dirs(tmp_path)
    unit = _rootful_unit(tmp_path, "hearth-synapse", base)
    socket_file = tmp_path / "system" / "hearth-synapse.socket"
    socket_file.write_text("[Socket]\nListenStream=0.0.0.0:443\n")
    host = ScriptedHost()
    switch_modes(host, FACTS, [_component(base, "podman")], None, {}, dirs)
    assert not unit.exists() and not socket_file.exists()
    assert [SYSTEMCTL, "disable", "--now", "hearth-synapse.socket"] in host.calls
