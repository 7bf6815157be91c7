# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of podman_rootless: checks before changes, mapping of owners, UserHost."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils import rootless_host as rh
from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import IdMap, IdRange, RootlessUser
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import ScriptedHost

ENTRY = pwd.struct_passwd(("hearth", "x", 999, 997, "", "/var/lib/hearth", "/usr/sbin/nologin"))


@pytest.fixture
def subids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Path]:
    paths = {"uid": tmp_path / "subuid", "gid": tmp_path / "subgid"}
    monkeypatch.setattr(rh, "SUBUID", str(paths["uid"]))
    monkeypatch.setattr(rh, "SUBGID", str(paths["gid"]))
    return paths


def _lookup(known: bool):
    def getpwnam(name: str) -> pwd.struct_passwd:
        if known and name == "hearth":
            return ENTRY
        raise KeyError(name)
    return getpwnam


def _user_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rh.pwd, "getpwnam", _lookup(True))


def test_existing_user_without_range_names_the_variable(subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _user_exists(monkeypatch)
    subids["uid"].write_text("other:100000:65536\n")
    subids["gid"].write_text("hearth:100000:65536\n")
    with pytest.raises(HostError) as caught:
        rh.check_rootless(RootlessUser("hearth", "/var/lib/hearth"))
    message = str(caught.value)
    assert message.startswith("hearth_rootless_user: user hearth has no range in %s" % subids["uid"]) and "\n" not in message


def test_existing_user_with_a_small_range_names_the_variable(subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("hearth:100000:1000\n")
    with pytest.raises(HostError, match="hearth_rootless_user: user hearth has a range of 1000 in .*subgid"):
        rh.check_rootless(RootlessUser("hearth", "/var/lib/hearth"))


def test_existing_user_with_ranges_gives_the_mapping(subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("999:300000:65536\n")
    plan = rh.check_rootless(RootlessUser("hearth", "/elsewhere"))
    assert plan.exists and plan.home == "/var/lib/hearth" and plan.unit_dir == "/var/lib/hearth/.config/systemd/user"
    assert plan.idmap == IdMap(999, 997, IdRange(100000, 65536), IdRange(300000, 65536))


def test_missing_user_is_planned_with_a_free_range(subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rh.pwd, "getpwnam", _lookup(False))
    subids["uid"].write_text("alice:100000:65536\n")
    plan = rh.check_rootless(RootlessUser("hearth", "/var/lib/hearth"))
    assert not plan.exists and plan.idmap.subuid == IdRange(196608, 65536) == plan.idmap.subgid


def test_remap_maps_every_owner() -> None:
    component = component_from_dict({
        "name": "hearth-synapse", "engine": "podman_rootless",
        "directories": [{"path": "/opt/s", "owner": "root", "group": "991", "mode": "0750"}],
        "secrets": [{"path": "/opt/s/k", "owner": "991", "group": "991"}],
        "files": [{"path": "/opt/s/c", "content": "x", "owner": "root", "group": "root"}],
        "service_user": {"name": "hearth-matrix", "uid": 991, "group": "hearth-matrix", "gid": 991, "home": "/opt"},
    })
    mapped = rh.remap(component, IdMap(999, 997, IdRange(100000, 65536), IdRange(200000, 65536)))
    own = mapped.directories[0].own
    assert (own.owner, own.group, own.mode) == ("999", "200990", "0750")
    assert (mapped.secrets[0].own.owner, mapped.secrets[0].own.group) == ("100990", "200990")
    assert (mapped.files[0].own.owner, mapped.files[0].own.group) == ("999", "997")
    assert mapped.service_user is None


def test_user_host_runs_engine_and_systemctl_as_the_user() -> None:
    inner = ScriptedHost()
    host = rh.UserHost(inner, ["runuser", "-u", "hearth", "--"], "/usr/bin/podman", "/bin/systemctl")
    host.run_command(["/usr/bin/podman", "ps"])
    host.run_command(["/bin/systemctl", "daemon-reload"])
    host.run_command(["/usr/bin/openssl", "version"])
    assert inner.calls == [["runuser", "-u", "hearth", "--", "/usr/bin/podman", "ps"],
                           ["runuser", "-u", "hearth", "--", "/bin/systemctl", "--user", "daemon-reload"],
                           ["/usr/bin/openssl", "version"]]
    assert host.check_mode is False


class FakeModule(ScriptedHost):
    def __init__(self, params: Dict[str, Any], missing: Sequence[str] = ()) -> None:
        super().__init__()
        self.params = params
        self.warnings: List[str] = []
        self.missing = set(missing)
        self.check_mode = False

    def get_bin_path(self, name: str, required: bool = False, opt_dirs: Optional[List[str]] = None) -> Optional[str]:
        return None if name in self.missing else "/usr/bin/" + name

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def _proxy(port: int, engine: str = "podman_rootless") -> Any:
    return component_from_dict({
        "name": "hearth-nginx-proxy", "engine": engine, "instance": "nginx_proxy@/opt/x",
        "container": {"image": "nginx", "user": "101:101", "memory": "256m",
                      "ports": [{"host_address": "0.0.0.0", "host_port": port, "container_port": 8443}]},
    })


def test_low_port_above_the_opt_in_fails_before_any_change(subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the opt-in the port is socket-activated; an opt-in too high for it is an error."""
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("hearth:100000:65536\n")
    module = FakeModule({"rootless": {"user": "hearth", "unprivileged_port_start": 1000}, "unit_dir": "/etc/systemd/system"})
    with pytest.raises(HostError) as caught:
        rh.setup_engine_mode(module, [_proxy(443)])
    assert str(caught.value).startswith("hearth_rootless_unprivileged_port_start: must be 443 or lower: "
                                        "hearth-nginx-proxy publishes port 443")
    assert module.calls == []


def test_udp_port_of_a_socket_activated_container_fails_before_any_change(
        subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket activation replaces every published port with a stream socket: a UDP port of
    that container is refused here, not once files and units are being written."""
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("hearth:100000:65536\n")
    module = FakeModule({"rootless": {"user": "hearth"}, "unit_dir": "/etc/systemd/system"})
    turn = component_from_dict({
        "name": "hearth-turn", "engine": "podman_rootless",
        "container": {"image": "coturn", "user": "101:101",
                      "ports": [{"host_address": "0.0.0.0", "host_port": 443, "container_port": 5349},
                                {"host_address": "0.0.0.0", "host_port": 3478, "container_port": 3478,
                                 "protocol": "udp"}]},
    })
    with pytest.raises(HostError) as caught:
        rh.setup_engine_mode(module, [turn])
    assert str(caught.value) == ("hearth_rootless_unprivileged_port_start: is needed for hearth-turn: its udp port "
                                 "3478 cannot be socket-activated (stream sockets only)")
    assert module.calls == []


def test_mixed_modes_are_refused() -> None:
    module = FakeModule({"rootless": None})
    other = component_from_dict({"name": "hearth-synapse", "engine": "podman"})
    with pytest.raises(HostError, match="hearth_engine: mixes podman and podman_rootless"):
        rh.setup_engine_mode(module, [_proxy(8443), other])


def test_rootful_components_pass_unchanged() -> None:
    module = FakeModule({})
    components = [component_from_dict({"name": "hearth-synapse", "engine": "podman"})]
    assert rh.setup_engine_mode(module, components) == (module, components, None)


def test_limits_on_cgroup_v1_are_dropped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rh, "cgroup_v2", lambda: False)
    module = FakeModule({})
    result = rh._unenforceable(module, _proxy(8443))  # pylint: disable=protected-access
    assert result.container is not None and result.container.memory is None
    assert len(module.warnings) == 1 and "nginx_proxy_memory=256m" in module.warnings[0]
    monkeypatch.setattr(rh, "cgroup_v2", lambda: True)
    assert rh._unenforceable(module, _proxy(8443)).container.memory == "256m"  # pylint: disable=protected-access


def test_storage_conf_uses_fuse_overlayfs_when_installed() -> None:
    assert 'mount_program = "/usr/bin/fuse-overlayfs"' in rh.storage_conf("/usr/bin/fuse-overlayfs")
    assert "mount_program" not in rh.storage_conf(None) and 'driver = "overlay"' in rh.storage_conf(None)


def test_docker_rootless_low_port_without_opt_in_names_the_variable(subids: Dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Rootless docker cannot take sockets from systemd: a low port needs the opt-in, said
    before anything runs on the host."""
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("hearth:100000:65536\n")
    module = FakeModule({"rootless": {"user": "hearth"}, "unit_dir": "/etc/systemd/system"})
    with pytest.raises(HostError) as caught:
        rh.setup_engine_mode(module, [_proxy(443, "docker_rootless")])
    assert str(caught.value).startswith("hearth_rootless_unprivileged_port_start: is needed for hearth-nginx-proxy "
                                        "with hearth_engine docker_rootless: it publishes port 443")
    assert "\n" not in str(caught.value) and module.calls == []


def test_docker_rootless_without_rootlesskit_names_the_package(subids: Dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _user_exists(monkeypatch)
    subids["uid"].write_text("hearth:100000:65536\n")
    subids["gid"].write_text("hearth:100000:65536\n")
    module = FakeModule({"rootless": {"user": "hearth"}, "unit_dir": "/etc/systemd/system"},
                        missing=["rootlesskit", "dockerd-rootless.sh"])
    with pytest.raises(HostError) as caught:
        rh.setup_engine_mode(module, [_proxy(8443, "docker_rootless")])
    assert str(caught.value) == ("hearth_engine: docker_rootless needs rootlesskit, dockerd-rootless.sh on the host: "
                                 "install the Debian packages docker.io (/usr/share/docker.io/contrib) or "
                                 "docker-ce-rootless-extras, rootlesskit")
    assert module.calls == []


def test_user_dockerd_is_written_enabled_and_started_once(tmp_path: Path) -> None:
    plan = rh.Plan(uid=os.getuid(), gid=os.getgid(), home=str(tmp_path), exists=True,
                   idmap=IdMap(1000, 1000, IdRange(100000, 65536), IdRange(100000, 65536)))
    os.makedirs(plan.unit_dir)
    module = FakeModule({})
    user = rh.UserHost(module, ["runuser", "-u", "hearth", "--"], "/usr/bin/docker", "/bin/systemctl")
    module.answer(["runuser", "-u", "hearth", "--", "/bin/systemctl", "--user", "is-enabled"], (1, "", ""))
    module.answer(["runuser", "-u", "hearth", "--", "/bin/systemctl", "--user", "is-active"], (3, "", ""))
    report = rh.Report()
    rh.ensure_user_dockerd(module, user, plan, "/bin/systemctl", report)
    text = (Path(plan.unit_dir) / "docker.service").read_text()
    assert "ExecStart=/usr/bin/dockerd-rootless.sh --storage-driver=fuse-overlayfs" in text
    assert "Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns" in text
    verbs = [call[5:] for call in module.calls if call[:4] == ["runuser", "-u", "hearth", "--"]]
    assert verbs == [["--user", "daemon-reload"], ["--user", "is-enabled", "--quiet", "docker.service"],
                     ["--user", "enable", "docker.service"], ["--user", "is-active", "--quiet", "docker.service"],
                     ["--user", "start", "docker.service"]]
    assert report.changed
    # Converged: the unit as it is, enabled and running -> nothing to do, nothing restarted.
    again, quiet = FakeModule({}), rh.Report()
    user = rh.UserHost(again, ["runuser", "-u", "hearth", "--"], "/usr/bin/docker", "/bin/systemctl")
    rh.ensure_user_dockerd(again, user, plan, "/bin/systemctl", quiet)
    assert not quiet.changed and [c[5:7] for c in again.calls] == [["--user", "is-enabled"], ["--user", "is-active"]]


@pytest.mark.parametrize("engine", ["docker_rootless", "podman_rootless"])
def test_check_mode_before_the_user_exists_plans_without_running_anything_as_it(
        engine: str, subids: Dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Check mode on a host without the service user: nothing runs as that user (it cannot),
    the report says what the apply would do, and the engine and the user's systemd answer as
    a new user's would (engine up, images there, no network, no unit)."""
    monkeypatch.setattr(rh.pwd, "getpwnam", _lookup(False))
    monkeypatch.setattr(rh, "LINGER_DIR", str(tmp_path))
    module = FakeModule({"rootless": {"user": "hearth", "unprivileged_port_start": 80}, "unit_dir": "/etc/systemd/system"})
    module.check_mode = True
    host, mapped, report = rh.setup_engine_mode(module, [_proxy(443, engine)])
    assert report is not None
    assert any(change.startswith("rootless user hearth: created") for change in report.changes), report.changes
    assert "image nginx: copied from root's store" in report.changes
    assert ("rootless dockerd: written, enabled and started" in report.changes) == (engine == "docker_rootless")
    engine_path = "/usr/bin/" + engine.split("_")[0]
    assert host.run_command([engine_path, "info"]) == (0, "", "")
    assert host.run_command([engine_path, "image", "inspect", "--format", "{{.Id}}", "a", "b"]) == \
        (0, "(copied on apply)\n(copied on apply)\n", "")
    assert host.run_command([engine_path, "network", "inspect", "hearth"])[0] == 1
    assert host.run_command(["/usr/bin/systemctl", "show", "--property=Id", "x.service"]) == (0, "", "")
    # Nothing ran on the host: no user created, no command as the user.
    assert [call for call in module.calls if "runuser" in call[0] or call[0].endswith(("useradd", "usermod"))] == []
    assert mapped[0].container is not None
