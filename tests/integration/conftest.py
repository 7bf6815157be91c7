# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures: local images, one bed target per engine, the stack converged on it.

Every target gets a per-run unique name and is removed at the end, also after a failure;
leftovers of killed runs are collected by ``bed.gc()`` before a new run starts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml
from pytest_ansible.host_manager.utils import get_host_manager

from harness import (CA_ON_TARGET, REPO_ROOT, PLAYBOOKS, SANDBOX_STACK_VARS, STACK_MATRIX_HOSTNAME, STACK_SERVER_NAME, PlaybookRun,
                     run_playbook)

sys.path.insert(0, str(REPO_ROOT / "tests" / "bed"))
import bed  # noqa: E402  pylint: disable=wrong-import-position

ENGINES = [e for e in os.environ.get("HEARTH_TEST_ENGINES", "docker,podman").split(",") if e]
RUN_ID = os.environ.get("HEARTH_RUN_ID") or uuid.uuid4().hex[:8]

SERVER_NAME = STACK_SERVER_NAME
MATRIX_HOSTNAME = STACK_MATRIX_HOSTNAME
ADMIN_USER = "hearth-admin"
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex

# The short vars file a user writes, plus what the closed test network needs; shared with
# scripts/sandbox so both deploy the same stack.
BASE_VARS: Dict[str, Any] = dict(SANDBOX_STACK_VARS)


@pytest.fixture(scope="session")
def bed_images() -> Dict[str, Any]:
    """Build (or reuse, by content hash) every local image once per session."""
    os.environ.setdefault("HEARTH_BED_OWNER_PID", str(os.getpid()))
    bed.gc()
    return bed.build_images()


@dataclass
class BedTarget:
    target: Any
    workdir: Path
    _hosts: Any = None

    @property
    def engine(self) -> str:
        return self.target.engine

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory.yml"

    def port(self, container_port: int) -> int:
        return int(self.target.ports[str(container_port)])

    def hosts(self) -> Any:
        """pytest-ansible's host manager for this target: real SSH, like the playbooks."""
        if self._hosts is None:
            os.environ.update(ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_DEPRECATION_WARNINGS="False")
            self._hosts = get_host_manager(inventory=str(self.inventory), host_pattern="all")
        return self._hosts

    def sh(self, command: str, check: bool = True) -> Tuple[int, str]:
        """Run a shell command on the target over SSH through pytest-ansible."""
        results = self.hosts().all.shell(command)
        result = next(iter(results.values()))
        rc = int(result.get("rc", 1 if result.get("failed") or result.get("unreachable") else 0))
        out = (result.get("stdout") or "") + (result.get("stderr") or "")
        if result.get("unreachable"):
            out += result.get("msg", "")
        if check and rc != 0:
            raise AssertionError("target command failed (%d): %s\n%s" % (rc, command, out))
        return rc, out

    def engine_cmd(self, args: str, check: bool = True) -> Tuple[int, str]:
        return self.sh("%s %s" % (self.engine, args), check=check)

    def assert_hardened(self, container: str) -> None:
        """Non-root, no capabilities, read-only root, no-new-privileges: from the engine's
        inspect and from what the kernel says about the running process (/proc/1/status); and the
        limits of the role's defaults."""
        _rc, out = self.engine_cmd("inspect %s" % container)
        info = json.loads(out)[0]
        config, host = info["Config"], info["HostConfig"]
        assert config["User"] and config["User"].split(":")[0] not in ("", "0", "root"), config["User"]
        assert host["ReadonlyRootfs"] is True
        assert any("no-new-privileges" in opt for opt in (host.get("SecurityOpt") or [])), host.get("SecurityOpt")
        assert not host.get("CapAdd"), host.get("CapAdd")
        _rc, status = self.engine_cmd("exec %s cat /proc/1/status" % container)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split()[1] != "0", fields["Uid"]
        for cap_set in ("CapEff", "CapPrm", "CapBnd"):
            assert int(fields[cap_set].strip(), 16) == 0, "%s=%s" % (cap_set, fields[cap_set])
        assert fields["NoNewPrivs"].strip() == "1"
        self._assert_limits(container, host)

    @staticmethod
    def _assert_limits(container: str, host: Dict[str, Any]) -> None:
        """Memory limit, CPU weight and pids limit as the role's defaults set them (the site
        playbook passes none of them)."""
        role = container[len("hearth-"):].replace("-", "_")
        defaults = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
        memory = str(defaults["%s_memory" % role])
        units = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
        assert host["Memory"] == int(memory[:-1]) * units[memory[-1].lower()], (container, host["Memory"], memory)
        assert host["CpuShares"] == defaults["%s_cpu_shares" % role] != 1024, (container, host["CpuShares"])
        assert host["PidsLimit"] == defaults["%s_pids_limit" % role], (container, host["PidsLimit"])


def _start_target(engine: str, purpose: str, components: Optional[List[str]] = None,
                  os_name: str = "bookworm") -> BedTarget:
    workdir = Path(tempfile.mkdtemp(prefix="hearth-%s-%s-" % (purpose, engine)))
    name = "%s-%s-%s" % (RUN_ID, purpose, engine)
    target = bed.up(name, engine, workdir, owner_pid=os.getpid(), components=components, os_name=os_name)
    return BedTarget(target=target, workdir=workdir)


def _stop_target(bed_target: BedTarget) -> None:
    try:
        bed.down(bed_target.target)
    finally:
        shutil.rmtree(bed_target.workdir, ignore_errors=True)


@contextlib.contextmanager
def target_factory(engine: str, purpose: str, components: Optional[List[str]] = None,
                   os_name: str = "bookworm") -> Iterator[BedTarget]:
    """A target; ``components``: the bed images loaded into it (default: every component's);
    ``os_name``: its Debian release (bed.py's TARGET_IMAGES)."""
    bed_target = _start_target(engine, purpose, components, os_name)
    try:
        yield bed_target
    finally:
        _stop_target(bed_target)


@contextlib.contextmanager
def parallel_targets(engine: str, purposes: List[str], components: Optional[List[str]] = None) -> Iterator[List[BedTarget]]:
    """Several targets started at the same time (bed.up locks the image cache it shares), all
    removed at the end, also when one of them failed to start. ``components``: as for
    target_factory."""
    with concurrent.futures.ThreadPoolExecutor(len(purposes)) as pool:
        futures = [pool.submit(_start_target, engine, purpose, components) for purpose in purposes]
        concurrent.futures.wait(futures)
    started = [future.result() for future in futures if future.exception() is None]
    try:
        for future in futures:
            future.result()  # the first failure, if any
        yield started
    finally:
        for bed_target in started:
            _stop_target(bed_target)


@dataclass
class Stack:
    """The whole stack converged by hearth.matrix.site on one target."""

    bed: BedTarget
    extra_vars: Dict[str, Any]
    ca_file: Path
    runs: List[PlaybookRun] = field(default_factory=list)

    @property
    def engine(self) -> str:
        return self.bed.engine

    @property
    def base_url(self) -> str:
        return "https://%s:%d" % (MATRIX_HOSTNAME, self.bed.port(443))

    @property
    def federation_url(self) -> str:
        return "https://%s:%d" % (MATRIX_HOSTNAME, self.bed.port(8448))

    def vars(self, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        merged = dict(self.extra_vars)
        merged.update(overrides or {})
        return merged

    def converge(self, overrides: Optional[Dict[str, Any]] = None, playbook: str = "site.yml",
                 args: Optional[List[str]] = None) -> PlaybookRun:
        run = run_playbook(self.bed.inventory, PLAYBOOKS / playbook, self.vars(overrides), args=args)
        self.runs.append(run)
        return run

    def register(self, user: str, password: str, admin: bool = False) -> PlaybookRun:
        return run_playbook(self.bed.inventory, PLAYBOOKS / "register_user.yml", self.vars({
            "hearth_user_name": user, "hearth_user_password": password, "hearth_user_admin": admin,
        }))

    def started_at(self, container: str) -> str:
        _rc, out = self.bed.engine_cmd("inspect --format '{{.State.StartedAt}}' %s" % container)
        return out.strip()


def converged_stack(bed_target: BedTarget, extra: Optional[Dict[str, Any]] = None) -> Stack:
    extra_vars = dict(BASE_VARS)
    extra_vars["hearth_engine"] = bed_target.engine
    extra_vars.update(extra or {})
    stack = Stack(bed=bed_target, extra_vars=extra_vars, ca_file=bed_target.workdir / "ca.crt")
    run = stack.converge()
    assert run.rc == 0 and run.failed == 0, "first converge failed:\n" + run.tail(80)
    _rc, ca_pem = bed_target.sh("cat " + CA_ON_TARGET)
    stack.ca_file.write_text(ca_pem)
    registered = stack.register(ADMIN_USER, ADMIN_PASSWORD, admin=True)
    assert registered.rc == 0, "register_user failed:\n" + registered.tail(60)
    return stack


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def stack(engine: str, bed_images: Dict[str, Any]) -> Iterator[Stack]:
    """A target with the base stack (postgres, synapse, nginx_proxy) converged."""
    with target_factory(engine, "stack") as bed_target:
        yield converged_stack(bed_target)


@pytest.fixture(scope="module")
def fresh_target(engine: str, bed_images: Dict[str, Any]) -> Iterator[BedTarget]:
    """A target with nothing deployed, for role-reuse and bad-input tests."""
    with target_factory(engine, "fresh") as bed_target:
        yield bed_target
