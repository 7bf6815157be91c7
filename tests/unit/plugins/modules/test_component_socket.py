# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""component in podman_rootless: the service user's units beside a socket-activated service
(a system unit run as the service user plus its root-owned .socket), with podman and both
systemd instances scripted. The rootless preparation itself (setup_engine_mode) is
test_rootless_host.py's; here it hands back the service user's host as it does on a host
whose user exists."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.module_utils import socket_state
from ansible_collections.hearth.matrix.plugins.module_utils.component import Component
from ansible_collections.hearth.matrix.plugins.module_utils.rootless_host import UserHost
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import RootlessAccount
from ansible_collections.hearth.matrix.plugins.modules import component as component_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.test_component import (
    CHANGING_VERBS,
    SYSTEMCTL,
    FakeSystem,
    service,
)

PODMAN = "/usr/bin/podman"
AS_USER = ["/usr/sbin/runuser", "-u", "hearth", "--"]
PROXY = "hearth-nginx-proxy"
SYNAPSE = "hearth-synapse"
INACTIVE = {"ActiveState": "inactive", "UnitFileState": "", "NeedDaemonReload": "no"}
RUNNING = {"ActiveState": "active", "UnitFileState": "enabled", "NeedDaemonReload": "no"}
PROBE = {"version": "1.163.2", "schema_version": 94, "db_version": 94, "db_compat_version": 84}


class RootlessSystem(FakeSystem):
    """podman_rootless: the engine and ``systemctl --user`` run as the service user (the
    UserHost prefix), everything else as root. Each systemd instance keeps its own unit
    states; ``log`` records (scope, argv without the prefix)."""

    def __init__(self) -> None:
        super().__init__({"podman": PODMAN, "systemctl": SYSTEMCTL, "sh": "/bin/sh"})
        self.user_units: Dict[str, Dict[str, str]] = {}
        self.log: List[Tuple[str, List[str]]] = []

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        argv = [str(arg) for arg in args]
        scope = "system"
        if argv[:len(AS_USER)] == AS_USER:
            scope, argv = "user", argv[len(AS_USER):]
            if argv[1:2] == ["--user"]:
                argv = argv[:1] + argv[2:]
        self.log.append((scope, argv))
        if argv[:3] == [PODMAN, "image", "inspect"]:
            names = [arg for arg in argv[3:] if not arg.startswith("--") and arg != "{{.Id}}"]
            return 0, "".join(self.image_id + "\n" for _name in names), ""
        if argv[:2] == [PODMAN, "run"]:     # image_check's probe
            return 0, json.dumps(PROBE) + "\n", ""
        if argv[:2] == [SYSTEMCTL, "show"]:
            units = self.user_units if scope == "user" else self.units
            states = [(unit, units.get(unit[:-len(".service")], INACTIVE)) for unit in argv[3:]]
            blocks = ["Id=%s\n%s\n" % (unit, "\n".join("%s=%s" % item for item in state.items()))
                      for unit, state in states]
            return 0, "\n".join(blocks), ""
        return 0, "", ""

    def changing(self) -> List[Tuple[str, List[str]]]:
        """The systemctl calls that change something, as (scope, [verb, units...])."""
        return [(scope, argv[1:]) for scope, argv in self.log if argv[0] == SYSTEMCTL and argv[1] in CHANGING_VERBS]

    def run_rootless(self, components: List[Dict[str, Any]], dirs: Dict[str, Path], port_start: Optional[int] = None,
                     check_mode: bool = False, diff: bool = False) -> Dict[str, Any]:
        self.log = []

        def get_bin_path(module: basic.AnsibleModule, arg: str, *args: Any, **kwargs: Any) -> Optional[str]:
            return self.binaries.get(arg)

        def run_command(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Tuple[int, str, str]:
            return self.run_command(module, *args, **kwargs)

        def setup_engine_mode(module: Any, wanted: List[Component]) -> Tuple[Any, List[Component], None]:
            host = UserHost(module, AS_USER, PODMAN, SYSTEMCTL)
            host.params = dict(module.params, unit_dir=str(dirs["user"]))
            host.idmap = None
            host.account = RootlessAccount("hearth", 999, str(dirs["home"]), port_start)
            return host, wanted, None

        system_dir = str(dirs["system"])
        with mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
                mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
                mock.patch.object(component_module, "setup_engine_mode", setup_engine_mode), \
                mock.patch.object(socket_state.socket_plan, "__defaults__", (system_dir,)), \
                mock.patch.object(socket_state.remove_socket_service, "__defaults__", (system_dir,)):
            return run_module(component_module.main, {
                "components": copy.deepcopy(components), "unit_dir": system_dir,
                "quadlet_dir": str(dirs["quadlet"]), "pending_dir": str(dirs["pending"])},
                check_mode=check_mode, diff=diff)


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[Dict[str, Path]]:
    found = {"system": tmp_path / "etc-systemd", "home": tmp_path / "home", "quadlet": tmp_path / "containers-systemd",
             "pending": tmp_path / "pending", "srv": tmp_path / "srv"}
    found["user"] = found["home"] / ".config" / "systemd" / "user"
    for key in ("system", "user", "quadlet"):
        found[key].mkdir(parents=True)
    yield found


def synapse(dirs: Dict[str, Path], **extra: Any) -> Dict[str, Any]:
    return service(dirs["srv"], SYNAPSE, engine="podman_rootless", **extra)


def proxy(dirs: Dict[str, Path], ports: Tuple[int, ...] = (80, 443), content: str = "listen 443;\n") -> Dict[str, Any]:
    component = service(dirs["srv"], PROXY, content=content, engine="podman_rootless")
    component["container"]["ports"] = [{"host_address": "0.0.0.0", "host_port": port, "container_port": 8000 + port}
                                       for port in ports]
    return component


def running(system: RootlessSystem) -> None:
    """Both services up, each in its own systemd instance."""
    system.user_units[SYNAPSE] = dict(RUNNING)
    system.units[PROXY] = dict(RUNNING)


SOCKET_START = [("system", ["stop", PROXY + ".service"]), ("system", ["enable", PROXY + ".socket"]),
                ("system", ["restart", PROXY + ".socket"]), ("system", ["start", PROXY + ".service"])]


def test_fresh_socket_activated_service_starts_after_the_users_job_transaction(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    result = system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    assert result["failed"] is False, result
    socket_text = (dirs["system"] / (PROXY + ".socket")).read_text()
    assert "ListenStream=0.0.0.0:80\nListenStream=0.0.0.0:443\n" in socket_text
    unit = (dirs["system"] / (PROXY + ".service")).read_text()
    assert "User=hearth" in unit and "WantedBy=multi-user.target" in unit and "--publish" not in unit
    assert not (dirs["user"] / (PROXY + ".service")).exists() and (dirs["user"] / (SYNAPSE + ".service")).exists()
    assert system.changing() == [
        ("system", ["daemon-reload"]),          # the socket-activated service's files, as they are written
        ("user", ["daemon-reload"]),
        ("user", ["enable", SYNAPSE + ".service"]),
        ("user", ["restart", SYNAPSE + ".service"]),   # the one job transaction of the user's units
        ("system", ["enable", PROXY + ".service"]),
    ] + SOCKET_START
    assert result["started"] == [SYNAPSE, PROXY] and result["restarted"] == []
    assert result["components"][PROXY]["changes"][-2:] == ["service %s: enabled (with its socket)" % PROXY,
                                                           "service %s: restarted with its socket" % PROXY]
    assert result["components"][PROXY]["started"] is True
    assert not list(dirs["pending"].iterdir())


def test_converged_rootless_stack_is_left_alone(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    components = [synapse(dirs), proxy(dirs)]
    system.run_rootless(components, dirs)
    running(system)
    result = system.run_rootless(components, dirs)
    assert result["changed"] is False and system.changing() == []
    assert result["components"][PROXY] == {"changed": False, "changes": [], "started": False, "restarted": False}


def test_changed_config_restarts_the_socket_activated_service_after_the_transaction(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    running(system)
    result = system.run_rootless([synapse(dirs, content="changed\n"), proxy(dirs, content="listen 8443;\n")], dirs)
    assert system.changing() == [("system", ["daemon-reload"]), ("user", ["daemon-reload"]),
                                 ("user", ["restart", SYNAPSE + ".service"]), ("system", ["restart", PROXY + ".service"])]
    assert result["restarted"] == [SYNAPSE, PROXY] and result["started"] == []
    assert result["components"][PROXY]["changes"][-1] == "service %s: restarted" % PROXY
    assert not list(dirs["pending"].iterdir())


def test_changed_socket_restarts_socket_and_service(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    running(system)
    result = system.run_rootless([synapse(dirs), proxy(dirs, ports=(80, 443, 8448))], dirs)
    assert system.changing() == [("system", ["daemon-reload"])] + SOCKET_START
    assert result["restarted"] == [PROXY]
    assert "unit %s: updated" % (dirs["system"] / (PROXY + ".socket")) in result["components"][PROXY]["changes"]


def test_restart_recorded_by_a_run_that_died_is_done(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    components = [synapse(dirs), proxy(dirs)]
    system.run_rootless(components, dirs)
    running(system)
    (dirs["pending"] / PROXY).write_text("")
    result = system.run_rootless(components, dirs)
    assert result["restarted"] == [PROXY]
    # Nothing on disk changed: no daemon-reload, only the restart that was due.
    assert system.changing() == [("system", ["restart", PROXY + ".service"])]
    assert not (dirs["pending"] / PROXY).exists()


def test_unit_written_by_a_run_that_died_before_the_reload_is_reloaded_and_restarted(dirs: Dict[str, Path]) -> None:
    """The file on disk is already the new one (no change now), but systemd still runs the
    old unit and there is no pending marker: systemd's NeedDaemonReload says so."""
    system = RootlessSystem()
    components = [synapse(dirs), proxy(dirs)]
    system.run_rootless(components, dirs)
    running(system)
    system.units[PROXY]["NeedDaemonReload"] = "yes"
    result = system.run_rootless(components, dirs)
    assert system.changing() == [("system", ["daemon-reload"]), ("system", ["restart", PROXY + ".service"])]
    assert result["restarted"] == [PROXY] and result["changed"] is True
    assert result["components"][PROXY]["changes"] == ["service %s: restarted" % PROXY]


def test_check_mode_reports_the_restart_of_a_unit_not_reloaded(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    components = [synapse(dirs), proxy(dirs)]
    system.run_rootless(components, dirs)
    running(system)
    system.units[PROXY]["NeedDaemonReload"] = "yes"
    result = system.run_rootless(components, dirs, check_mode=True)
    assert result["restarted"] == [PROXY] and system.changing() == []


def test_opt_in_replaces_the_socket_by_a_user_unit(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    running(system)
    result = system.run_rootless([synapse(dirs), proxy(dirs)], dirs, port_start=80)
    assert result["failed"] is False, result
    assert not (dirs["system"] / (PROXY + ".socket")).exists() and not (dirs["system"] / (PROXY + ".service")).exists()
    assert "--publish" in (dirs["user"] / (PROXY + ".service")).read_text()
    assert system.changing() == [
        ("system", ["disable", "--now", PROXY + ".service"]), ("system", ["disable", "--now", PROXY + ".socket"]),
        ("user", ["daemon-reload"]), ("user", ["enable", PROXY + ".service"]),
        ("user", ["restart", PROXY + ".service"]),
        ("system", ["daemon-reload"]),        # the socket and its unit are gone
    ]
    assert result["started"] == [PROXY]


def test_socket_activation_again_removes_the_user_unit(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs, port_start=80)
    system.user_units[SYNAPSE] = dict(RUNNING)
    system.user_units[PROXY] = dict(RUNNING)
    result = system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    assert not (dirs["user"] / (PROXY + ".service")).exists() and (dirs["system"] / (PROXY + ".socket")).exists()
    assert system.changing() == [("user", ["disable", "--now", PROXY + ".service"]), ("system", ["daemon-reload"]),
                                 ("user", ["daemon-reload"]), ("system", ["enable", PROXY + ".service"])] + SOCKET_START
    assert ("user", [PODMAN, "rm", "--force", PROXY]) in system.log
    assert result["started"] == [PROXY]


def test_absent_removes_the_socket_and_its_unit(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    result = system.run_rootless([{"name": PROXY, "state": "absent", "engine": "podman_rootless"}], dirs)
    assert result["changed"] is True
    assert not (dirs["system"] / (PROXY + ".socket")).exists() and not (dirs["system"] / (PROXY + ".service")).exists()
    assert system.changing() == [("system", ["disable", "--now", PROXY + ".service"]),
                                 ("system", ["disable", "--now", PROXY + ".socket"]), ("system", ["daemon-reload"])]
    assert (dirs["srv"] / PROXY / "config" / "homeserver.yaml").exists()   # data stays


def test_check_mode_changes_nothing_and_predicts_the_starts(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    result = system.run_rootless([synapse(dirs), proxy(dirs)], dirs, check_mode=True, diff=True)
    assert result["failed"] is False and result["changed"] is True, result
    assert result["started"] == [SYNAPSE, PROXY]
    assert system.changing() == [] and not dirs["srv"].exists() and not dirs["pending"].exists()
    assert not list(dirs["system"].iterdir()) and not list(dirs["user"].iterdir())
    headers = [d["after_header"] for d in result["diff"]]
    assert str(dirs["system"] / (PROXY + ".socket")) in headers and str(dirs["system"] / (PROXY + ".service")) in headers


def test_check_mode_of_a_socket_change_reports_the_restart(dirs: Dict[str, Path]) -> None:
    system = RootlessSystem()
    system.run_rootless([synapse(dirs), proxy(dirs)], dirs)
    running(system)
    before = (dirs["system"] / (PROXY + ".socket")).read_text()
    result = system.run_rootless([synapse(dirs), proxy(dirs, ports=(80, 443, 8448))], dirs, check_mode=True)
    assert result["restarted"] == [PROXY] and system.changing() == []
    assert (dirs["system"] / (PROXY + ".socket")).read_text() == before


def test_new_image_of_a_socket_activated_service_is_checked_against_its_system_unit(dirs: Dict[str, Path]) -> None:
    """Which image runs now is in the fingerprint of the system unit (there is no user unit)."""
    system = RootlessSystem()
    checked = dict(proxy(dirs), image_check={"kind": "synapse_schema", "variable": "nginx_proxy_image",
                                             "config": "/config/homeserver.yaml"})
    system.run_rootless([checked], dirs)
    probes = [argv for _scope, argv in system.log if argv[:2] == [PODMAN, "run"]]
    assert probes == []     # fresh install: nothing to protect
    running(system)
    system.image_id = "sha256:" + "f" * 64
    result = system.run_rootless([checked], dirs)
    probes = [(scope, argv) for scope, argv in system.log if argv[:2] == [PODMAN, "run"]]
    assert len(probes) == 1 and probes[0][0] == "user" and system.image_id in probes[0][1], system.log
    assert result["restarted"] == [PROXY]
