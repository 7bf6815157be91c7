# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one model of a systemd unit that supervises a container.

Every service of the stack gets the same unit shape, rendered from data:

* ``DefaultDependencies=no``: Docker 20.10.0 shipped ``docker.service`` with
  ``After=multi-user.target``. A unit that is ``WantedBy=multi-user.target`` gets an implicit
  ``multi-user.target After=<unit>`` from its default dependencies; together with
  ``<unit> After=docker.service`` that is an ordering cycle, and systemd deletes the start
  job ("... deleted to break ordering cycle"). Without default dependencies the target is no
  longer ordered after us, so no cycle. The default dependencies we still want (sysinit /
  basic ordering, clean stop at shutdown) are added back explicitly.
* Absolute command paths, resolved on the host at deploy time: systemd < v239 has no PATH
  lookup for ``ExecStart=`` and ``docker``/``sh`` live in ``/bin`` or ``/usr/bin``.
* ``create`` (replacing a leftover container of the same name) + one ``network connect`` per
  extra network + ``start --attach``: the attached output is the journal stream, tagged with
  ``SyslogIdentifier=<service>``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    ContainerSpec,
    SpecError,
    create_argv,
    shell_join,
)
from ansible_collections.hearth.matrix.plugins.module_utils.readiness import HOST_NETNS, probe_argv

# Engines whose units probe readiness from the host (readiness.py): the host reaches the
# containers at their address on the stack network (a bridge on the host). Not the rootless
# modes: the stack network lives in the service user's namespace.
HOST_PROBE_ENGINES = ("podman", "docker")
# Engines whose units' processes have no network (DOCKER_CLIENT_SANDBOX): their probe joins
# the host's network namespace, which needs the privileges systemd's "+" prefix gives to
# that one command (the sandbox stays on the engine client). Measured on the bed (docker,
# whole-stack restart): a `docker exec` of the health command per attempt competes for the
# CPU with the services starting up.
NETLESS_UNIT_ENGINES = ("docker",)

_UNIT_NAME_RE = re.compile(r"^[a-zA-Z0-9:_.@-]+\.(service|target|socket|mount|path|timer)$")
_SAFE_ARG_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
MANAGED_MARKER = "# Managed by hearth.matrix (component); local edits are overwritten."
# The unit's instance ("<role>@<base dir>", see component.Component.instance).
INSTANCE_PREFIX = "# instance: "

# Sandbox of the unit's own processes (the engine client, sh and the readiness loop), not of
# the container: that one is hardened by its own flags (container.py).
#
# docker: the unit's processes are only clients of dockerd, talking to /run/docker.sock.
# They need no capability (root owns the socket), no network (a unix socket is not in the
# network namespace), no device, nothing to write and nothing in /home, so all of that is
# taken away. What `systemd-analyze security` still counts is what a client as root keeps:
# the uid 0 itself (PrivateUsers= would make it "nobody", who may not open the socket),
# the socket's access to dockerd (which is the point), and AF_UNIX.
#
# podman: there is no daemon; `podman start --attach` in the unit IS the runtime. It and its
# children (conmon, crun, netavark) create namespaces, mounts, cgroups, the container's
# network and its files under /var/lib/containers and /run, with capabilities and setuid
# helpers. Any of these directives would stop it from doing its job, so the podman unit
# keeps systemd's defaults; the container is hardened by its own flags.
DOCKER_CLIENT_SANDBOX = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "PrivateNetwork=yes",
    "RestrictAddressFamilies=AF_UNIX",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectSystem=strict",
    # read-only, not yes: the docker client reads /root/.docker/config.json (registry logins).
    "ProtectHome=read-only",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
    "UMask=0077",
)

# docker_rootless: the unit runs in the service user's systemd instance, whose manager has no
# privileges to drop capabilities or build mount namespaces for its units on its own; with
# PrivateUsers= it gets a user namespace first, and then the file-system sandbox works
# (measured on the bed, systemd 252: without PrivateUsers=, ProtectSystem=strict is silently
# not applied). The docker client only talks to the user's dockerd through a socket under
# the runtime directory, so it needs none of what this takes away.
ROOTLESS_DOCKER_CLIENT_SANDBOX = (
    "NoNewPrivileges=yes",
    "PrivateUsers=yes",
    "PrivateTmp=yes",
    "ProtectSystem=strict",
)


@dataclass(frozen=True)
class HostPaths:
    """Absolute paths of the commands the unit runs, as found on the target host."""

    engine: str
    sh: str
    # The host's python3, for readiness probes run from the host ("" = probe via the engine).
    python: str = ""

    def validate(self) -> None:
        for field_name, value in (("engine_path", self.engine), ("sh_path", self.sh)):
            if not value or not posixpath.isabs(value):
                raise SpecError(field_name, "must be an absolute path, got %r" % (value,))
        if self.python and not posixpath.isabs(self.python):
            raise SpecError("python_path", "must be an absolute path, got %r" % (self.python,))


@dataclass(frozen=True)
class UnitSpec:
    container: ContainerSpec
    engine: str
    paths: HostPaths
    description: str = ""
    engine_unit: str = ""
    requires: Tuple[str, ...] = ()
    wants: Tuple[str, ...] = ()
    after: Tuple[str, ...] = ()
    restart_sec: int = 5
    ready_timeout: int = 120
    fingerprint: str = ""
    instance: str = ""
    # Containers told to reload (SIGHUP) once this service is ready: a proxy that resolves
    # its upstreams when it loads its config then follows this service's new address.
    reload_on_ready: Tuple[str, ...] = ()
    # "user": the unit runs in a rootless service user's systemd instance, which has no
    # network-online.target or multi-user.target; default.target is its boot goal (linger).
    scope: str = "system"

    @property
    def name(self) -> str:
        return self.container.name


def check_unit_names(field_name: str, names: Sequence[str]) -> Tuple[str, ...]:
    for index, name in enumerate(names):
        if not isinstance(name, str) or not _UNIT_NAME_RE.match(name):
            raise SpecError("%s[%d]" % (field_name, index), "not a systemd unit name: %r" % (name,))
    return tuple(names)


def systemd_quote(arg: str) -> str:
    """Quote one argument for an Exec*= line.

    systemd expands ``%`` specifiers and ``$VAR`` in command lines, so both are doubled; any
    argument with other special characters is double-quoted with C-style escapes. A raw line
    break would end the directive and start a new one in the unit file, so it is escaped too.
    """
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and _SAFE_ARG_RE.match(escaped):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % escaped.replace("\n", "\\n").replace("\r", "\\r")


def exec_line(argv: Sequence[str]) -> str:
    return " ".join(systemd_quote(arg) for arg in argv)


def _unique(items: Sequence[str]) -> List[str]:
    result: List[str] = []
    for item in items:
        if item not in result:
            result.append(item)
    return result


# Readiness polling: every FAST_PROBES first probes come FAST_PROBE_INTERVAL apart, then one
# per second. Most services are ready within a second or two of their start, and a fixed
# 1 s sleep added up to a second to each start, and to each start behind it (a restart of
# the whole stack waits for PostgreSQL, then Synapse). Slow starters fall back to 1 s so
# that a long start does not spend a CPU on `engine exec`.
FAST_PROBES = 10
FAST_PROBE_INTERVAL = "0.2"


def readiness_argv(spec: UnitSpec) -> Optional[List[str]]:
    """The ExecStartPost= argv that waits until the service is ready, or None (no check).

    From the host when it can (a probe declared, a fixed address, an engine in
    HOST_PROBE_ENGINES, python3 found), else the engine-exec loop below."""
    check = spec.container.healthcheck
    if check is None:
        return None
    if check.probe is not None and spec.container.address and _probes_from_host(spec):
        netns = HOST_NETNS if spec.engine in NETLESS_UNIT_ENGINES else ""
        return probe_argv(spec.paths.python, spec.container.address, check.probe, spec.ready_timeout, netns)
    script = _readiness_script(spec)
    return [spec.paths.sh, "-c", script] if script else None


def readiness_line(spec: UnitSpec) -> Optional[str]:
    """The ExecStartPost= line of the readiness wait, or None (no check)."""
    argv = readiness_argv(spec)
    if argv is None:
        return None
    privileged = "+" if _probes_from_host(spec) and spec.engine in NETLESS_UNIT_ENGINES else ""
    return "ExecStartPost=%s%s" % (privileged, exec_line(argv))


def _probes_from_host(spec: UnitSpec) -> bool:
    check = spec.container.healthcheck
    return bool(check is not None and check.probe is not None and spec.container.address
                and spec.paths.python and spec.engine in HOST_PROBE_ENGINES)


def _readiness_script(spec: UnitSpec) -> Optional[str]:
    """A shell loop that waits until the container's health command succeeds.

    Units ordered After= this one start only once ExecStartPost= has finished, so this turns
    "process started" into "service ready" (e.g. Synapse waits for pg_isready). It gives up
    after about ready_timeout seconds of probing.
    """
    check = spec.container.healthcheck
    if check is None:
        return None
    probe = shell_join([spec.paths.engine, "exec", spec.name] + list(check.command))
    fast_seconds = FAST_PROBES * float(FAST_PROBE_INTERVAL)
    attempts = FAST_PROBES + max(0, spec.ready_timeout - int(fast_seconds))
    return (
        "i=0; until %s >/dev/null 2>&1; do i=$((i+1)); "
        # systemd exports MAINPID to ExecStartPost=: stop waiting once the container is gone.
        "if [ -n \"$MAINPID\" ] && ! kill -0 \"$MAINPID\" 2>/dev/null; then "
        "echo 'exited before it was ready' >&2; exit 1; fi; "
        "if [ $i -ge %d ]; then echo 'not ready after %ds' >&2; exit 1; fi; "
        "if [ $i -lt %d ]; then sleep %s; else sleep 1; fi; done"
        % (probe, attempts, spec.ready_timeout, FAST_PROBES, FAST_PROBE_INTERVAL)
    )


def _reload_argv(spec: UnitSpec, container: str) -> List[str]:
    """SIGHUP to ``container``; without a health check, first wait until this container runs
    (Type=simple: ExecStartPost may start before the engine has started the container, and
    the reload must see its name on the network)."""
    signal = [spec.paths.engine, "kill", "--signal=HUP", container]
    if spec.container.healthcheck is not None:
        return signal
    running = shell_join([spec.paths.engine, "inspect", "--format", "{{.State.Running}}", spec.name])
    return [spec.paths.sh, "-c",
            "i=0; until [ \"$(%s 2>/dev/null)\" = true ]; do i=$((i+1)); "
            "if [ $i -ge 100 ]; then exit 1; fi; sleep 0.1; done; exec %s" % (running, shell_join(signal))]


# `create`, and only when that fails, `rm --force` and `create` again. A container left over
# from a crash or an older unit makes `create` fail (its name is taken); after a clean stop
# ExecStopPost= has already removed it. A separate `ExecStartPre=-<engine> rm --force` before
# every `create` cost one more engine client (and, on docker, one more sandboxed Exec) per
# start: 0.25 s alone, 1.1-1.3 s each when the whole stack restarts on 2 cores (journal of a
# docker restart on the bed), and twice on Synapse's critical path (its own and PostgreSQL's).
# Summed downtime of a whole-stack restart on the bed, A/B alternating on one target, other
# work running (load 3.5-7), median of 6-9 restarts: docker 37.0 -> 34.0 s, podman 31.3 ->
# 29.0 s. One `run` instead of `create` + `start --attach` (one client less again) measured
# no better (docker median 33.8 s, podman 31.0-39.3 s) and is not used.
_CREATE_OR_REPLACE = '"$0" "$@" 2>/dev/null || { "$0" rm --force %s >/dev/null 2>&1; exec "$0" "$@"; }'


def create_line_argv(spec: UnitSpec) -> List[str]:
    """The ExecStartPre= argv that creates the container, replacing a leftover of that name.

    The first attempt's errors are silenced (a taken name is expected there); the retry
    after the removal reports them."""
    argv = create_argv(spec.container, spec.engine, spec.paths.engine)
    return [spec.paths.sh, "-c", _CREATE_OR_REPLACE % shell_join([spec.name])] + argv


def render_unit(spec: UnitSpec) -> str:
    """The complete unit file text for one container service."""
    spec.paths.validate()
    engine = spec.paths.engine
    name = spec.name
    engine_units = [spec.engine_unit] if spec.engine_unit else []
    requires = _unique(engine_units + list(spec.requires))
    system = spec.scope != "user"
    wants = _unique((["network-online.target"] if system else []) + list(spec.wants))
    base = ["sysinit.target", "basic.target", "network-online.target"] if system else ["basic.target"]
    after = _unique(base + engine_units
                    + list(spec.requires) + list(spec.wants) + list(spec.after))
    stop_grace = spec.container.stop_timeout

    lines = [MANAGED_MARKER]
    if spec.instance:
        lines.append(INSTANCE_PREFIX + spec.instance)
    if spec.fingerprint:
        # A change of configuration or image changes this line, hence the unit, hence a restart.
        lines.append("# fingerprint: %s" % spec.fingerprint)
    lines += [
        "[Unit]",
        "Description=%s" % (spec.description or name),
        "DefaultDependencies=no",
    ]
    if requires:
        lines.append("Requires=%s" % " ".join(requires))
    if wants:
        lines.append("Wants=%s" % " ".join(wants))
    lines.append("After=%s" % " ".join(after))
    lines += ["Conflicts=shutdown.target", "Before=shutdown.target", ""]

    lines += ["[Service]", "Type=simple"]
    if spec.engine == "docker":
        lines += list(DOCKER_CLIENT_SANDBOX)
    elif spec.engine == "docker_rootless":
        # The user's dockerd (docker_rootless.py); %t is the user's runtime directory.
        lines += list(ROOTLESS_DOCKER_CLIENT_SANDBOX) + ["Environment=DOCKER_HOST=unix://%t/docker.sock"]
    lines.append("ExecStartPre=%s" % exec_line(create_line_argv(spec)))
    for network in spec.container.extra_networks:
        lines.append("ExecStartPre=%s" % exec_line([engine, "network", "connect", network, name]))
    lines.append("ExecStart=%s" % exec_line([engine, "start", "--attach", name]))
    readiness = readiness_line(spec)
    if readiness:
        lines.append(readiness)
    for container in _unique(list(spec.reload_on_ready)):
        # After the readiness wait, so the name resolves to the new address and the service
        # answers there. "-": a proxy that is not running (yet) is fine, it resolves its
        # upstreams when it starts.
        lines.append("ExecStartPost=-%s" % exec_line(_reload_argv(spec, container)))
    lines.append("ExecStop=%s" % exec_line([engine, "stop", "--time=%d" % stop_grace, name]))
    lines.append("ExecStopPost=-%s" % exec_line([engine, "rm", "--force", name]))
    lines += [
        "Restart=always",
        "RestartSec=%d" % spec.restart_sec,
        "TimeoutStartSec=%d" % (spec.ready_timeout + 180),
        "TimeoutStopSec=%d" % (stop_grace + 30),
        "SyslogIdentifier=%s" % name,
        "",
        "[Install]",
        "WantedBy=%s" % ("multi-user.target" if system else "default.target"),
        "",
    ]
    return "\n".join(lines)
