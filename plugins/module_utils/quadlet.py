# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Podman Quadlet files from the same container and unit model (container.py, unit.py).

With ``hearth_podman_quadlet`` a service is a ``<service>.container`` file in
``/etc/containers/systemd``; podman's systemd generator turns it into ``<service>.service``
on every daemon-reload. The hardening (non-root user, no capabilities, no-new-privileges,
read-only root) comes from the same ContainerSpec as the generated unit's argv, so the two
formats cannot drift apart.

Readiness: on podman >= 5.0 a service with a health check gets ``Notify=healthy``, so the
unit is active only once its health command succeeded (units ordered after it wait for
that). Older podman keeps the generated unit's readiness wait as ``ExecStartPost=``.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.component import Network
from ansible_collections.hearth.matrix.plugins.module_utils.container import ContainerSpec, limit_flags, mac_for, shell_join
from ansible_collections.hearth.matrix.plugins.module_utils.unit import (
    INSTANCE_PREFIX,
    MANAGED_MARKER,
    UnitSpec,
    _reload_argv,
    _unique,
    exec_line,
    readiness_line,
)

VARIABLE = "hearth_podman_quadlet"
QUADLET_DIR = "/etc/containers/systemd"
# Quadlet (.container, .network) arrived in podman 4.4; Notify=healthy in 5.0.
MIN_VERSION = (4, 4)
NOTIFY_HEALTHY_VERSION = (5, 0)


def parse_version(text: str) -> Tuple[int, ...]:
    """'5.4.2' -> (5, 4, 2); () when the text holds no version."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return ()
    return tuple(int(part) for part in match.groups() if part is not None)


def version_refusal(engine: str, version: Tuple[int, ...]) -> Optional[str]:
    """Why Quadlet cannot be used here (one line naming the variable), or None."""
    if engine != "podman":
        return ("%s needs the podman engine (Quadlet is podman's unit format), the engine here is %s: "
                "set it to false or use podman" % (VARIABLE, engine))
    if not version or version < MIN_VERSION:
        found = ".".join(str(part) for part in version) or "an unknown version"
        return ("%s needs podman >= %s (Quadlet), this host has %s: set it to false or upgrade podman "
                "(Debian 13 has 5.4)" % (VARIABLE, ".".join(str(p) for p in MIN_VERSION), found))
    return None


def _value(text: str) -> str:
    """A Quadlet value: systemd expands % specifiers in it, so they are doubled."""
    if "\n" in text:
        raise ValueError("a Quadlet value must be one line, got %r" % (text,))
    return text.replace("%", "%%")


def _quoted(text: str) -> str:
    """One word of a space-separated Quadlet list (Environment=, Exec=, HealthCmd=)."""
    escaped = _value(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % escaped if re.search(r'[\s"\'\\$]', text) or not text else escaped


def _tmpfs(path: str, size: Optional[str], mode: Optional[str]) -> str:
    options = ["rw", "noexec", "nosuid", "nodev"] + (["size=%s" % size] if size else []) + (
        ["mode=%s" % mode] if mode else [])
    return "%s:%s" % (path, ",".join(options))


def network_unit(name: str) -> str:
    """The service Quadlet generates for ``<name>.network``."""
    return "%s-network.service" % name


def container_keys(spec: ContainerSpec) -> List[Tuple[str, str]]:
    """The [Container] section of a spec: the same flags create_argv gives the engine."""
    keys: List[Tuple[str, str]] = [("ContainerName", spec.name), ("Image", spec.image)]
    user, _sep, group = spec.user.partition(":")
    keys.append(("User", user))
    if group:
        keys.append(("Group", group))
    keys.append(("DropCapability", "all"))
    keys += [("AddCapability", cap) for cap in spec.cap_add]
    keys.append(("NoNewPrivileges", "true"))
    keys.append(("ReadOnly", "true" if spec.read_only else "false"))
    for index, network in enumerate(spec.networks):
        if index == 0 and spec.address:
            # The fixed MAC with the fixed address: see container.create_argv.
            network = "%s:ip=%s,mac=%s" % (network, spec.address, mac_for(spec.address))
        keys.append(("Network", network))
    keys += [("AddHost", "%s:%s" % pair) for pair in spec.hosts]
    keys += [("Tmpfs", _tmpfs(t.path, t.size, t.mode)) for t in spec.tmpfs]
    keys += [("Mount", "type=bind,src=%s,dst=%s%s" % (m.source, m.target, ",readonly" if m.read_only else ""))
             for m in spec.mounts]
    for port in spec.ports:
        address = "[%s]" % port.host_address if ":" in port.host_address else port.host_address
        keys.append(("PublishPort", "%s:%d:%d/%s" % (address, port.host_port, port.container_port, port.protocol)))
    if spec.env_file:
        keys.append(("EnvironmentFile", spec.env_file))
    keys += [("Environment", _quoted("%s=%s" % pair)) for pair in spec.env]
    keys += [("Label", _quoted("%s=%s" % pair)) for pair in spec.labels]
    keys += [("Sysctl", "%s=%s" % pair) for pair in spec.sysctls]
    if spec.healthcheck:
        check = spec.healthcheck
        keys += [("HealthCmd", _value(shell_join(check.command))),
                 ("HealthInterval", "%ds" % check.interval), ("HealthTimeout", "%ds" % check.timeout),
                 ("HealthRetries", str(check.retries)), ("HealthStartPeriod", "%ds" % check.start_period)]
    # Limits as engine flags: the same spelling as create_argv, on every podman with Quadlet.
    args = limit_flags(spec)
    if args:
        keys.append(("PodmanArgs", " ".join(args)))
    keys.append(("StopTimeout", str(spec.stop_timeout)))
    if spec.workdir:
        keys.append(("WorkingDir", spec.workdir))
    if spec.entrypoint:
        keys.append(("Entrypoint", spec.entrypoint))
    if spec.command:
        keys.append(("Exec", " ".join(_quoted(arg) for arg in spec.command)))
    return keys


def render_container(spec: UnitSpec, podman_version: Sequence[int]) -> str:
    """The complete ``<service>.container`` file for one service."""
    container = spec.container
    check = container.healthcheck
    notify_healthy = check is not None and tuple(podman_version) >= NOTIFY_HEALTHY_VERSION
    lines = [MANAGED_MARKER]
    if spec.instance:
        lines.append(INSTANCE_PREFIX + spec.instance)
    if spec.fingerprint:
        lines.append("# fingerprint: %s" % spec.fingerprint)
    networks = [network_unit(name) for name in container.networks]
    requires = _unique(list(spec.requires))
    # Wants=, not Requires=, on the networks' units: a network the engine already has (made
    # by the role, not by a .network file) has no such unit, and that is fine.
    wants = _unique(["network-online.target"] + networks + list(spec.wants))
    after = _unique(["network-online.target"] + networks + list(spec.requires) + list(spec.wants) + list(spec.after))
    lines += ["[Unit]", "Description=%s" % _value(spec.description or spec.name)]
    if requires:
        lines.append("Requires=%s" % " ".join(requires))
    lines += ["Wants=%s" % " ".join(wants), "After=%s" % " ".join(after), ""]
    lines.append("[Container]")
    lines += ["%s=%s" % pair for pair in container_keys(container)]
    if notify_healthy and check is not None:
        # The unit is active once the health command succeeded, not when the process started.
        # The startup check probes every second until the first success (the regular one
        # comes only after HealthInterval: a restart of postgres took 12 s instead of 3 s).
        lines += ["HealthStartupCmd=%s" % _value(shell_join(check.command)), "HealthStartupInterval=1s",
                  "HealthStartupTimeout=%ds" % check.timeout, "HealthStartupRetries=%d" % spec.ready_timeout,
                  "HealthStartupSuccess=1", "Notify=healthy"]
    lines += ["", "[Service]"]
    readiness = None if notify_healthy else readiness_line(spec)
    if readiness:
        lines.append(readiness)
    for name in _unique(list(spec.reload_on_ready)):
        lines.append("ExecStartPost=-%s" % exec_line(_reload_argv(spec, name)))
    lines += [
        "Restart=always",
        "RestartSec=%d" % spec.restart_sec,
        "TimeoutStartSec=%d" % (spec.ready_timeout + 180),
        "TimeoutStopSec=%d" % (container.stop_timeout + 30),
        "SyslogIdentifier=%s" % spec.name,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def render_network(network: Network) -> str:
    """``<name>.network``: the network under its own name, with the subnet split like
    ensure_networks does (the upper half for fixed addresses)."""
    lines = [MANAGED_MARKER, "[Network]", "NetworkName=%s" % network.name]
    if network.subnet:
        lines += ["Subnet=%s" % network.subnet, "IPRange=%s" % network.dynamic_range]
    return "\n".join(lines + [""])
