# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""component: files, unit and services converged in one call, with the engine and systemd scripted."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.module_utils.component import secret_ref
from ansible_collections.hearth.matrix.plugins.modules import component as component_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

DOCKER = "/usr/bin/docker"
SYSTEMCTL = "/bin/systemctl"
IMAGE = "ghcr.io/element-hq/synapse:v1.163.2"
IMAGE_ID = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ME, MY_GROUP = str(os.getuid()), str(os.getgid())
# The systemctl verbs that change something (show and --version only read).
CHANGING_VERBS = ("daemon-reload", "enable", "restart", "start", "stop", "disable")


class FakeSystem:
    """A host with docker and systemd: commands are recorded, units keep the state set in ``units``."""

    def __init__(self, binaries: Optional[Dict[str, str]] = None) -> None:
        self.binaries = {"docker": DOCKER, "systemctl": SYSTEMCTL, "sh": "/bin/sh"} if binaries is None else binaries
        self.units: Dict[str, Dict[str, str]] = {}
        self.image_id = IMAGE_ID
        self.calls: List[List[str]] = []

    def running(self, *names: str) -> None:
        for name in names:
            self.units[name] = {"ActiveState": "active", "UnitFileState": "enabled", "NeedDaemonReload": "no"}

    def get_bin_path(self, module: basic.AnsibleModule, arg: str, required: bool = False,
                     opt_dirs: Optional[List[str]] = None) -> Optional[str]:
        return self.binaries.get(arg)

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        argv = [str(arg) for arg in args]
        self.calls.append(argv)
        if argv[:2] == [SYSTEMCTL, "--version"]:
            return 0, "systemd 252 (252.39-1~deb12u2)\n", ""
        if argv[:2] == [SYSTEMCTL, "show"]:
            blocks = []
            for unit in argv[3:]:
                state = self.units.get(unit[:-len(".service")],
                                       {"ActiveState": "inactive", "UnitFileState": "", "NeedDaemonReload": "no"})
                blocks.append("Id=%s\n%s\n" % (unit, "\n".join("%s=%s" % item for item in state.items())))
            return 0, "\n".join(blocks), ""
        if argv[:3] == [DOCKER, "image", "inspect"]:
            return 0, self.image_id + "\n", ""
        return 0, "", ""

    def systemctl_calls(self) -> List[List[str]]:
        return [argv for argv in self.calls if argv[0] == SYSTEMCTL and argv[1] in CHANGING_VERBS]

    def run(self, components: List[Dict[str, Any]], unit_dir: Path, check_mode: bool = False,
            diff: bool = False) -> Dict[str, Any]:
        self.calls = []

        def get_bin_path(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Optional[str]:
            return self.get_bin_path(module, *args, **kwargs)

        def run_command(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Tuple[int, str, str]:
            return self.run_command(module, *args, **kwargs)

        with mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
                mock.patch.object(basic.AnsibleModule, "run_command", run_command):
            return run_module(component_module.main, {"components": copy.deepcopy(components), "unit_dir": str(unit_dir),
                                                      "pending_dir": str(unit_dir.parent / "pending")},
                              check_mode=check_mode, diff=diff)


@pytest.fixture
def system() -> Iterator[FakeSystem]:
    yield FakeSystem()


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    path = tmp_path / "systemd"
    path.mkdir()
    return path


def service(root: Path, name: str = "hearth-synapse", content: str = "server_name: example.org\n",
            **extra: Any) -> Dict[str, Any]:
    config = root / name / "config"
    result: Dict[str, Any] = {
        "name": name,
        "engine": "docker",
        "directories": [{"path": str(root / name), "owner": ME, "group": MY_GROUP, "mode": "0750"},
                        {"path": str(config), "owner": ME, "group": MY_GROUP, "mode": "0750"}],
        "files": [{"path": str(config / "homeserver.yaml"), "content": content, "owner": ME, "group": MY_GROUP,
                   "mode": "0640"}],
        "container": {"image": IMAGE, "user": "991:991", "networks": ["hearth"],
                      "mounts": [{"source": str(config), "target": "/config"}]},
    }
    result.update(extra)
    return result


def files_under(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- a fresh component, then an unchanged second run ------------------------------------------

def test_fresh_component_is_written_enabled_and_started(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    result = system.run([service(tmp_path)], unit_dir)
    assert result["failed"] is False, result
    assert result["changed"] is True
    unit = unit_dir / "hearth-synapse.service"
    text = unit.read_text()
    assert "ExecStart=%s start --attach hearth-synapse" % DOCKER in text
    assert "Requires=docker.service" in text and "# fingerprint: image=%s" % IMAGE_ID[:19] in text
    assert (tmp_path / "hearth-synapse" / "config" / "homeserver.yaml").read_text() == "server_name: example.org\n"
    assert system.systemctl_calls() == [
        [SYSTEMCTL, "daemon-reload"],
        [SYSTEMCTL, "enable", "hearth-synapse.service"],
        [SYSTEMCTL, "restart", "hearth-synapse.service"],
    ]
    assert result["started"] == ["hearth-synapse"] and result["restarted"] == []
    report = result["components"]["hearth-synapse"]
    assert report["changed"] is True and report["started"] is True
    assert "unit %s: written" % unit in report["changes"]
    assert [DOCKER, "network", "inspect", "hearth"] in system.calls
    assert [DOCKER, "pull", IMAGE] not in system.calls  # the image is there


def test_second_run_with_the_service_running_changes_nothing(system: FakeSystem, tmp_path: Path,
                                                             unit_dir: Path) -> None:
    components = [service(tmp_path)]
    system.run(components, unit_dir)
    unit_before = (unit_dir / "hearth-synapse.service").read_text()
    system.running("hearth-synapse")
    result = system.run(components, unit_dir)
    assert result["failed"] is False and result["changed"] is False, result
    assert system.systemctl_calls() == []
    assert result["started"] == [] and result["restarted"] == []
    assert result["components"]["hearth-synapse"] == {"changed": False, "changes": [], "started": False,
                                                      "restarted": False}
    assert (unit_dir / "hearth-synapse.service").read_text() == unit_before


def test_stopped_service_with_unchanged_unit_is_started(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = [service(tmp_path)]
    system.run(components, unit_dir)
    system.running("hearth-synapse")
    system.units["hearth-synapse"]["ActiveState"] = "failed"
    result = system.run(components, unit_dir)
    assert system.systemctl_calls() == [[SYSTEMCTL, "restart", "hearth-synapse.service"]]
    assert result["started"] == ["hearth-synapse"] and result["changed"] is True


def test_unit_written_by_an_interrupted_run_still_restarts(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = [service(tmp_path)]
    system.run(components, unit_dir)
    system.running("hearth-synapse")
    system.units["hearth-synapse"]["NeedDaemonReload"] = "yes"
    result = system.run(components, unit_dir)
    assert system.systemctl_calls() == [[SYSTEMCTL, "daemon-reload"], [SYSTEMCTL, "restart", "hearth-synapse.service"]]
    assert result["restarted"] == ["hearth-synapse"]


# --- what restarts what -------------------------------------------------------------------------

def test_restart_recorded_by_a_run_that_died_before_it_is_done_next_time(
        system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = [service(tmp_path)]
    system.run(components, unit_dir)
    system.running("hearth-synapse")
    pending = unit_dir.parent / "pending"
    pending.mkdir(exist_ok=True)
    (pending / "hearth-synapse").write_text("")
    result = system.run(components, unit_dir)
    assert result["restarted"] == ["hearth-synapse"]
    assert not (pending / "hearth-synapse").exists()
    assert system.run(components, unit_dir)["restarted"] == []


def test_changed_file_restarts_only_its_service(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    postgres = service(tmp_path, "hearth-postgres", content="listen_addresses = '*'\n")
    system.run([postgres, service(tmp_path)], unit_dir)
    system.running("hearth-postgres", "hearth-synapse")
    postgres_unit = (unit_dir / "hearth-postgres.service").read_text()
    result = system.run([postgres, service(tmp_path, content="server_name: example.net\n")], unit_dir)
    assert result["failed"] is False, result
    assert system.systemctl_calls() == [[SYSTEMCTL, "daemon-reload"], [SYSTEMCTL, "restart", "hearth-synapse.service"]]
    assert result["restarted"] == ["hearth-synapse"] and result["started"] == []
    assert result["components"]["hearth-postgres"]["changed"] is False
    assert (unit_dir / "hearth-postgres.service").read_text() == postgres_unit
    assert (tmp_path / "hearth-synapse" / "config" / "homeserver.yaml").read_text() == "server_name: example.net\n"


def test_only_reload_on_ready_changed_reloads_systemd_without_a_restart(
        system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    """Turning the proxy off drops Synapse's "reload the proxy" line: no reason to restart Synapse."""
    with_proxy = dict(service(tmp_path), reload_on_ready=["hearth-nginx-proxy"])
    system.run([with_proxy], unit_dir)
    system.running("hearth-synapse")
    assert "kill --signal=HUP hearth-nginx-proxy" in (unit_dir / "hearth-synapse.service").read_text()
    result = system.run([service(tmp_path)], unit_dir)
    assert result["changed"] is True and result["restarted"] == [], result
    assert system.systemctl_calls() == [[SYSTEMCTL, "daemon-reload"]]
    assert "kill --signal=HUP" not in (unit_dir / "hearth-synapse.service").read_text()


def test_new_image_restarts_the_service(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = [service(tmp_path)]
    system.run(components, unit_dir)
    system.running("hearth-synapse")
    system.image_id = "sha256:" + "f" * 64
    result = system.run(components, unit_dir)
    assert result["restarted"] == ["hearth-synapse"]
    assert [SYSTEMCTL, "restart", "hearth-synapse.service"] in system.systemctl_calls()


def test_file_without_restart_is_written_without_a_restart(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    def with_log_config(text: str) -> Dict[str, Any]:
        component = service(tmp_path)
        component["files"].append({"path": str(tmp_path / "hearth-synapse" / "config" / "log.config"), "content": text,
                                   "restart": False, "owner": ME, "group": MY_GROUP})
        return component

    system.run([with_log_config("level: INFO\n")], unit_dir)
    system.running("hearth-synapse")
    result = system.run([with_log_config("level: DEBUG\n")], unit_dir)
    assert result["changed"] is True and result["restarted"] == [] and system.systemctl_calls() == []
    assert (tmp_path / "hearth-synapse" / "config" / "log.config").read_text() == "level: DEBUG\n"


# --- check mode ------------------------------------------------------------------------------

def test_check_mode_writes_nothing_and_calls_no_changing_systemctl(
        system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    result = system.run([service(tmp_path)], unit_dir, check_mode=True)
    assert result["failed"] is False and result["changed"] is True, result
    assert files_under(tmp_path) == ["systemd"]
    assert system.systemctl_calls() == []
    assert not any(argv[:3] == [DOCKER, "network", "create"] or argv[:2] == [DOCKER, "pull"] for argv in system.calls)
    assert result["started"] == ["hearth-synapse"]  # what would happen


def test_check_mode_with_a_changed_file_reports_the_restart(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    system.run([service(tmp_path)], unit_dir)
    system.running("hearth-synapse")
    before = {p: (tmp_path / p).read_bytes() for p in files_under(tmp_path) if (tmp_path / p).is_file()}
    result = system.run([service(tmp_path, content="changed\n")], unit_dir, check_mode=True)
    assert result["restarted"] == ["hearth-synapse"] and result["changed"] is True
    assert system.systemctl_calls() == []
    assert {p: (tmp_path / p).read_bytes() for p in files_under(tmp_path) if (tmp_path / p).is_file()} == before


# --- absent ---------------------------------------------------------------------------------------

def test_absent_component_loses_its_unit(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    system.run([service(tmp_path)], unit_dir)
    result = system.run([{"name": "hearth-synapse", "state": "absent", "engine": "docker"}], unit_dir)
    assert result["failed"] is False and result["changed"] is True, result
    assert not (unit_dir / "hearth-synapse.service").exists()
    assert (tmp_path / "hearth-synapse" / "config" / "homeserver.yaml").exists()  # data stays
    assert system.systemctl_calls() == [[SYSTEMCTL, "disable", "--now", "hearth-synapse.service"],
                                        [SYSTEMCTL, "daemon-reload"]]
    assert [DOCKER, "rm", "--force", "hearth-synapse"] in system.calls
    again = system.run([{"name": "hearth-synapse", "state": "absent", "engine": "docker"}], unit_dir)
    assert again["changed"] is False and system.systemctl_calls() == []


def test_absent_in_check_mode_keeps_the_unit(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    system.run([service(tmp_path)], unit_dir)
    result = system.run([{"name": "hearth-synapse", "state": "absent"}], unit_dir, check_mode=True)
    assert result["changed"] is True and (unit_dir / "hearth-synapse.service").exists()
    assert system.systemctl_calls() == [] and [DOCKER, "rm", "--force", "hearth-synapse"] not in system.calls


# --- renamed service --------------------------------------------------------------------------

def test_renamed_service_replaces_the_old_unit_and_container(system: FakeSystem, tmp_path: Path,
                                                             unit_dir: Path) -> None:
    first = service(tmp_path, instance="synapse@/srv/synapse")
    system.run([first], unit_dir)
    assert "# instance: synapse@/srv/synapse" in (unit_dir / "hearth-synapse.service").read_text().splitlines()[:3]
    system.running("hearth-synapse")
    # An instance of the same role elsewhere (another base dir) is left alone.
    other = dict(service(tmp_path, name="other-synapse", instance="synapse@/srv/other"))
    system.run([other], unit_dir)
    system.running("other-synapse")
    renamed = dict(first, name="matrix-synapse")
    result = system.run([renamed], unit_dir)
    assert result["changed"] is True, result
    assert not (unit_dir / "hearth-synapse.service").exists()
    assert (unit_dir / "matrix-synapse.service").exists() and (unit_dir / "other-synapse.service").exists()
    assert [DOCKER, "rm", "--force", "hearth-synapse"] in system.calls
    assert [DOCKER, "rm", "--force", "other-synapse"] not in system.calls
    calls = system.systemctl_calls()
    # The old one stops before the new one starts: they share data, address and ports.
    assert calls.index([SYSTEMCTL, "disable", "--now", "hearth-synapse.service"]) \
        < calls.index([SYSTEMCTL, "restart", "matrix-synapse.service"])
    assert "service hearth-synapse: removed (unit and container; data kept)" in \
        result["components"]["matrix-synapse"]["changes"]


def test_renamed_service_in_check_mode_removes_nothing(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    first = service(tmp_path, instance="synapse@/srv/synapse")
    system.run([first], unit_dir)
    system.running("hearth-synapse")
    result = system.run([dict(first, name="matrix-synapse")], unit_dir, check_mode=True)
    assert result["changed"] is True
    assert (unit_dir / "hearth-synapse.service").exists() and not (unit_dir / "matrix-synapse.service").exists()
    assert system.systemctl_calls() == [] and [DOCKER, "rm", "--force", "hearth-synapse"] not in system.calls


def test_unit_without_instance_line_is_never_taken_for_a_renamed_one(system: FakeSystem, tmp_path: Path,
                                                                     unit_dir: Path) -> None:
    (unit_dir / "hand-made.service").write_text("# instance: synapse@/srv/synapse\n[Service]\n")
    system.run([service(tmp_path, instance="synapse@/srv/synapse")], unit_dir)
    assert (unit_dir / "hand-made.service").exists()
    assert [DOCKER, "rm", "--force", "hand-made"] not in system.calls


# --- diff mode --------------------------------------------------------------------------------

def test_diff_mode_lists_diffs_and_never_shows_a_secret(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    password = secrets_dir / "db_password"
    shared = {"name": "hearth-shared-secrets", "engine": "docker",
              "directories": [{"path": str(secrets_dir), "owner": ME, "group": MY_GROUP, "mode": "0700"}],
              "secrets": [{"path": str(password), "owner": ME, "group": MY_GROUP}]}
    synapse = service(tmp_path, content="database:\n  password: %s\n" % secret_ref(str(password)))
    result = system.run([shared, synapse], unit_dir, diff=True)
    assert result["failed"] is False, result
    value = password.read_text().strip()
    assert len(value) == 64
    written = (tmp_path / "hearth-synapse" / "config" / "homeserver.yaml").read_text()
    assert written == "database:\n  password: %s\n" % value
    assert isinstance(result["diff"], list) and all(isinstance(d, dict) for d in result["diff"])
    headers = [d["after_header"] for d in result["diff"]]
    assert str(password) in headers and str(unit_dir / "hearth-synapse.service") in headers
    assert str(tmp_path / "hearth-synapse" / "config" / "homeserver.yaml") in headers
    assert value not in repr(result)
    # The shared secrets (files only) are converged before the service that reads them.
    assert list(result["components"]) == ["hearth-shared-secrets", "hearth-synapse"]


def test_no_diff_key_without_diff_mode(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    assert "diff" not in system.run([service(tmp_path)], unit_dir)


# --- errors ---------------------------------------------------------------------------------------

def test_bad_component_fails_naming_the_field(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    result = system.run([service(tmp_path, state="running")], unit_dir)
    assert result["failed"] is True and result["field"] == "state"
    assert result["msg"].startswith("components: state: ")
    assert system.calls == [] and files_under(tmp_path) == ["systemd"]


def test_missing_engine_fails_before_anything_changes(tmp_path: Path, unit_dir: Path) -> None:
    system = FakeSystem(binaries={"systemctl": SYSTEMCTL})
    result = system.run([service(tmp_path)], unit_dir)
    assert result["failed"] is True and result["field"] == "engine"
    assert files_under(tmp_path) == ["systemd"]


def test_missing_source_file_fails_before_anything_changes(system: FakeSystem, tmp_path: Path, unit_dir: Path) -> None:
    component = service(tmp_path)
    component["files"].append({"path": str(tmp_path / "hearth-synapse" / "tls.crt"), "src": str(tmp_path / "none.crt"),
                               "label": "synapse_tls_certificate"})
    result = system.run([component], unit_dir)
    assert result["failed"] is True and result["field"] == "synapse_tls_certificate"
    assert files_under(tmp_path) == ["systemd"] and system.calls == []


def test_missing_unit_dir_fails_naming_it(system: FakeSystem, tmp_path: Path) -> None:
    result = system.run([service(tmp_path)], tmp_path / "no-such-dir")
    assert result["failed"] is True and result["field"] == "unit_dir"
    assert system.systemctl_calls() == []


def test_empty_component_list(system: FakeSystem, unit_dir: Path) -> None:
    result = system.run([], unit_dir)
    assert result["failed"] is False and result["changed"] is False
    assert result["components"] == {} and system.calls == []


# --- self-signed certificate (real openssl) -----------------------------------------------------

OPENSSL = shutil.which("openssl")


class OpensslSystem(FakeSystem):
    """FakeSystem that runs openssl for real."""

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        argv = [str(arg) for arg in args]
        if argv[0] == OPENSSL:
            self.calls.append(argv)
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        return super().run_command(module, args, **kwargs)


def with_tls(root: Path, domains: List[str]) -> Dict[str, Any]:
    component = service(root)
    tls_dir, ca_dir = root / "hearth-synapse" / "tls", root / "hearth-synapse" / "ca"
    component["directories"] += [{"path": str(tls_dir), "owner": ME, "group": MY_GROUP, "mode": "0750"},
                                 {"path": str(ca_dir), "owner": ME, "group": MY_GROUP, "mode": "0700"}]
    component["tls"] = {"ca_dir": str(ca_dir), "tls_dir": str(tls_dir), "domains": domains,
                        "common_name": domains[0], "key_owner": ME, "key_group": MY_GROUP, "cert_group": MY_GROUP}
    return component


@pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed; the module runs it on the host")
def test_new_certificate_restarts_the_service_and_check_mode_predicts_it(tmp_path: Path, unit_dir: Path) -> None:
    system = OpensslSystem(binaries={"docker": DOCKER, "systemctl": SYSTEMCTL, "sh": "/bin/sh", "openssl": str(OPENSSL)})
    first = system.run([with_tls(tmp_path, ["matrix.example.org"])], unit_dir)
    assert first["failed"] is False, first
    assert (tmp_path / "hearth-synapse" / "tls" / "server.crt").exists()
    system.running("hearth-synapse")
    same = system.run([with_tls(tmp_path, ["matrix.example.org"])], unit_dir)
    assert same["changed"] is False and system.systemctl_calls() == []
    # Another name: check mode must announce the restart the real run then does.
    predicted = system.run([with_tls(tmp_path, ["matrix.example.org", "example.org"])], unit_dir, check_mode=True)
    applied = system.run([with_tls(tmp_path, ["matrix.example.org", "example.org"])], unit_dir)
    assert applied["restarted"] == ["hearth-synapse"]
    assert predicted["restarted"] == applied["restarted"]
