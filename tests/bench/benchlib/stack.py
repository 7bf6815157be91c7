# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One bed target with the full stack: converge it, look at its units, reboot it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import bed  # tests/bed
from harness import FULL_STACK_VARS, PLAYBOOKS, SANDBOX_STACK_VARS, PlaybookRun, run_playbook

from .services import UnitState, all_active, parse_show, restarted, show_argv

# The stack measured: every component on (see harness.FULL_STACK_VARS for the stand-ins).
STACK_UNITS = ["hearth-postgres.service", "hearth-synapse.service", "hearth-mailer.service",
               "hearth-identity.service", "hearth-corporal.service", "hearth-element.service",
               "hearth-nginx-proxy.service"]


OPTIONAL_COMPONENTS = ("mailer", "identity", "corporal", "element")

# Facts of site.yml's play plus one trivial module call per service (see the file).
FLOOR_PLAYBOOK = Path(__file__).resolve().parents[1] / "floor.yml"


class BenchFailure(AssertionError):
    """A correctness check inside the benchmark failed (never a timing)."""


@dataclass
class Converge:
    seconds: float
    tasks: int            # tasks that ran (ok, which includes changed)
    changed: int
    skipped: int
    restarted: List[str]  # units with a new invocation afterwards


@dataclass
class BenchStack:
    target: Any           # bed Target
    engine: str
    extra: Dict[str, Any] = field(default_factory=dict)
    # A rootless mode's service user: its systemd instance and engine run the stack.
    user: str = ""

    @property
    def inventory(self) -> Path:
        return self.target.workdir / "inventory.yml"

    def stack_vars(self, overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        values = dict(SANDBOX_STACK_VARS, **FULL_STACK_VARS)
        values.update({"hearth_%s_enabled" % name: True for name in OPTIONAL_COMPONENTS})
        values["hearth_engine"] = self.engine
        values.update(self.extra)     # may name another mode of the target's engine
        values.update(overrides or {})
        return values

    def as_user(self, argv: List[str]) -> List[str]:
        """``argv`` as the service user, with its systemd instance and engine (rootless)."""
        if not self.user:
            return argv
        return ["sh", "-c", 'cd / && uid=$(id -u %s) && exec runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/$uid '
                'DOCKER_HOST=unix:///run/user/$uid/docker.sock "$@"' % (self.user, self.user), "sh"] + argv

    def units(self) -> Dict[str, UnitState]:
        argv = show_argv(STACK_UNITS)
        if self.user:
            if bed.exec_in_target(self.target, ["id", "-u", self.user], check=False).returncode != 0:
                return {}   # a rootless mode before its first converge: no user, no units
            argv = self.as_user(argv[:1] + ["--user"] + argv[1:])
        proc = bed.exec_in_target(self.target, argv)
        return parse_show(proc.stdout.decode())

    def playbook(self, name: Union[str, Path], overrides: Optional[Mapping[str, Any]] = None,
                 env: Optional[Mapping[str, Optional[str]]] = None) -> PlaybookRun:
        """A playbook of playbooks/ by name, or any playbook by path, with the stack's vars."""
        path = name if isinstance(name, Path) else PLAYBOOKS / name
        run = run_playbook(self.inventory, path, self.stack_vars(overrides), env=env)
        if run.rc != 0 or run.failed:
            raise BenchFailure("%s failed (exit %d):\n%s" % (path.name, run.rc, run.tail(60)))
        return run

    def enabled_units(self) -> List[str]:
        values = self.stack_vars()
        return [unit for unit in STACK_UNITS
                if values.get("hearth_%s_enabled" % unit[len("hearth-"):-len(".service")], True)]

    def converge(self, overrides: Optional[Mapping[str, Any]] = None,
                 env: Optional[Mapping[str, Optional[str]]] = None) -> Converge:
        before = self.units()
        run = self.playbook("site.yml", overrides, env)
        after = self.units()
        if not all_active(after, self.enabled_units()):
            raise BenchFailure("not every unit is active after the converge: %s" % after)
        recap = next(iter(run.recap.values()))
        return Converge(seconds=run.seconds, tasks=recap["ok"], changed=recap["changed"],
                        skipped=recap["skipped"], restarted=restarted(before, after))

    def floor(self, env: Optional[Mapping[str, Optional[str]]] = None) -> Converge:
        """The floor playbook with the same inventory, vars and ansible.cfg as a converge."""
        run = self.playbook(FLOOR_PLAYBOOK, {"hearth_bench_floor_services": STACK_UNITS}, env)
        recap = next(iter(run.recap.values()))
        return Converge(seconds=run.seconds, tasks=recap["ok"], changed=recap["changed"],
                        skipped=recap["skipped"], restarted=[])

    def wait_all_active(self, timeout: float = 300) -> Dict[str, UnitState]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = self.units()
            except Exception:  # pylint: disable=broad-except  # target still booting: ask again
                states = {}
            if all_active(states, STACK_UNITS):
                return states
            if time.monotonic() > deadline:
                raise BenchFailure("units not all active after %.0f s: %s" % (timeout, states))
            time.sleep(0.2)

    def read(self, path: str) -> str:
        return bed.exec_in_target(self.target, ["cat", path]).stdout.decode()
