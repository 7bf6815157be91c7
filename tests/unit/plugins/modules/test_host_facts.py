# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_facts: paths, versions and engine state, with the host's commands mocked."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import host_facts
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

DEBIAN_BINARIES = {
    "docker": "/usr/bin/docker",
    "podman": "/usr/bin/podman",
    "sh": "/bin/sh",
    "systemctl": "/bin/systemctl",
    "systemd-sysusers": "/bin/systemd-sysusers",
}
SYSTEMCTL_VERSION = "systemd 252 (252.39-1~deb12u2)\n+PAM +AUDIT +SELINUX default-hierarchy=unified\n"


class FakeHost:
    """get_bin_path/run_command answers of a host, and the commands that were run."""

    def __init__(self, binaries: Dict[str, str], answers: Dict[str, Tuple[int, str, str]]) -> None:
        self.binaries = binaries
        self.answers = answers
        self.calls: List[List[str]] = []

    def get_bin_path(self, module: basic.AnsibleModule, name: str, required: bool = False, opt_dirs: Optional[List[str]] = None) -> Optional[str]:
        return self.binaries.get(name)

    def run_command(self, module: basic.AnsibleModule, args: List[str], **kwargs: Any) -> Tuple[int, str, str]:
        self.calls.append(list(args))
        return self.answers.get(os.path.basename(args[0]), (127, "", "not found"))


def gather(host: FakeHost, engine: str = "docker", cgroup_v2: bool = True, euid: int = 0, **kwargs: Any) -> Dict[str, Any]:
    real_exists = os.path.exists

    def exists(path: Any) -> bool:
        if path == "/sys/fs/cgroup/cgroup.controllers":
            return cgroup_v2
        return real_exists(path)

    def get_bin_path(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Optional[str]:
        return host.get_bin_path(module, *args, **kwargs)

    def run_command(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        return host.run_command(module, *args, **kwargs)

    with mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
            mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(host_facts.os.path, "exists", exists), \
            mock.patch.object(host_facts.os, "geteuid", lambda: euid):
        return run_module(host_facts.main, {"engine": engine}, **kwargs)


@pytest.fixture
def debian() -> Iterator[FakeHost]:
    yield FakeHost(dict(DEBIAN_BINARIES), {"systemctl": (0, SYSTEMCTL_VERSION, ""), "docker": (0, "Server: ...", ""),
                                           "podman": (0, "host: ...", "")})


def test_docker_host(debian: FakeHost) -> None:
    result = gather(debian)
    assert result["changed"] is False and result["failed"] is False
    assert result["ansible_facts"]["hearth_host"] == {
        "engine": "docker",
        "engine_path": "/usr/bin/docker",
        "engine_argv": ["/usr/bin/docker"],
        "engine_running": True,
        "engine_unit": "docker.service",
        "sh_path": "/bin/sh",
        "systemd_version": 252,
        "cgroup_version": 2,
        "rootless": False,
        "sysusers_path": "/bin/systemd-sysusers",
    }
    assert ["/usr/bin/docker", "info"] in debian.calls
    assert ["/bin/systemctl", "--version"] in debian.calls


def test_podman_host_cgroup_v1_rootless(debian: FakeHost) -> None:
    facts = gather(debian, engine="podman", cgroup_v2=False, euid=1000)["ansible_facts"]["hearth_host"]
    assert facts["engine_path"] == "/usr/bin/podman"
    assert facts["engine_unit"] == ""
    assert facts["cgroup_version"] == 1
    assert facts["rootless"] is True


def test_engine_not_installed(debian: FakeHost) -> None:
    del debian.binaries["docker"]
    facts = gather(debian)["ansible_facts"]["hearth_host"]
    assert facts["engine_path"] == "" and facts["engine_running"] is False
    assert not any(call[0].endswith("docker") for call in debian.calls)


def test_engine_installed_but_not_answering(debian: FakeHost) -> None:
    debian.answers["docker"] = (1, "", "Cannot connect to the Docker daemon")
    facts = gather(debian)["ansible_facts"]["hearth_host"]
    assert facts["engine_path"] == "/usr/bin/docker" and facts["engine_running"] is False


@pytest.mark.parametrize("binaries_removed, answer, version", [
    (["systemctl"], None, 0),
    ([], (1, "", "failed"), 0),
    ([], (0, "garbage", ""), 0),
    ([], (0, "systemd 219\n", ""), 219),
])
def test_systemd_version(debian: FakeHost, binaries_removed: List[str], answer: Any, version: int) -> None:
    for name in binaries_removed:
        del debian.binaries[name]
    if answer is not None:
        debian.answers["systemctl"] = answer
    assert gather(debian)["ansible_facts"]["hearth_host"]["systemd_version"] == version


def test_usr_merged_paths_are_reported_as_found(debian: FakeHost) -> None:
    debian.binaries.update({"sh": "/usr/bin/sh", "docker": "/usr/local/bin/docker"})
    facts = gather(debian)["ansible_facts"]["hearth_host"]
    assert facts["sh_path"] == "/usr/bin/sh" and facts["engine_path"] == "/usr/local/bin/docker"


def test_check_mode_gathers_the_same(debian: FakeHost) -> None:
    assert gather(debian, check_mode=True)["ansible_facts"] == gather(debian)["ansible_facts"]


def test_engine_is_required_and_checked(debian: FakeHost) -> None:
    result = gather(debian, engine="lxc")
    assert result["failed"] is True and "engine" in result["msg"]
