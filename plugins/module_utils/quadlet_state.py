# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of Quadlet services: the podman version, file paths, switching formats.

A service is either a generated unit (``<unit_dir>/<service>.service``) or a Quadlet file
(``<quadlet_dir>/<service>.container``) from which systemd generates ``<service>.service``.
A unit file in ``/etc/systemd/system`` wins over a generated one, so when the format changes
the other file is removed (its service is restarted from the new one, data untouched).
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import Host, HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import (
    VARIABLE,
    parse_version,
    render_network,
    version_refusal,
)
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import HostFacts, read_text, remove_service, write_unit
from ansible_collections.hearth.matrix.plugins.module_utils.unit import MANAGED_MARKER


def podman_version(host: Host, facts: HostFacts) -> Tuple[int, ...]:
    rc, out, _err = host.run_command([facts.engine_path, "version", "--format", "{{.Client.Version}}"])
    return parse_version(out) if rc == 0 else ()


def check_quadlet(host: Host, facts: HostFacts) -> Tuple[int, ...]:
    """The podman version, or HostError naming the variable when Quadlet cannot work here.
    Called before anything on the host changes."""
    version = podman_version(host, facts) if facts.engine == "podman" else ()
    refusal = version_refusal(facts.engine, version)
    if refusal is not None:
        raise HostError(VARIABLE, refusal[len(VARIABLE) + 1:])
    return version


def unit_file(component: Component, unit_dir: str, quadlet_dir: str) -> str:
    """Where the service's own file lives in the format it uses now."""
    if component.quadlet:
        return os.path.join(quadlet_dir, component.name + ".container")
    return os.path.join(unit_dir, component.name + ".service")


def other_format_file(component: Component, unit_dir: str, quadlet_dir: str) -> Optional[str]:
    """Our file of the same service in the other format, if there is one."""
    path = (os.path.join(unit_dir, component.name + ".service") if component.quadlet
            else os.path.join(quadlet_dir, component.name + ".container"))
    text = read_text(path)
    return path if text is not None and text.startswith(MANAGED_MARKER) else None


def drop_other_format(host: Host, facts: HostFacts, component: Component, path: str, report: Report) -> None:
    """Stop the service as its old file says, then remove that file (the caller starts it
    from the new one). Stopped first: a unit of the other format stops the container its own
    way, and systemd killing the old runtime mid-cleanup left podman's network state behind
    ("failed to delete container veth"), so the first start of the new unit failed."""
    report.changes.append("unit %s: removed (the service is now %s)" % (
        path, "a Quadlet file" if component.quadlet else "a generated unit"))
    report.diffs.append({"before_header": path, "after_header": path, "before": read_text(path) or "", "after": ""})
    if host.check_mode:
        return
    host.run_command([facts.systemctl, "stop", component.name + ".service"])
    if path.endswith(".service"):
        # Its [Install] symlink; a generated unit cannot be enabled or disabled.
        host.run_command([facts.systemctl, "disable", os.path.basename(path)])
    os.unlink(path)


def remove_quadlet_service(host: Host, facts: HostFacts, name: str, path: str, report: Report) -> bool:
    """Stop the service and remove its Quadlet file and container; data directories stay.
    A generated unit has no enablement to undo: without its file it is gone after the
    daemon-reload that follows."""
    return remove_service(host, facts, name, path, report, what="Quadlet file", stop=("stop",))


def ensure_network_files(host: Host, component: Component, quadlet_dir: str, report: Report) -> bool:
    """``<name>.network`` for the networks a files-only component declares (the stack's), or
    none without Quadlet; True when a file changed. A changed network file restarts nothing:
    podman keeps an existing network as it is."""
    written = False
    for network in component.networks:
        path = os.path.join(quadlet_dir, network.name + ".network")
        before = read_text(path)
        if not component.quadlet:
            # Back to generated units: our network file goes, the network itself stays.
            if before is not None and before.startswith(MANAGED_MARKER):
                written = True
                report.changes.append("network file %s: removed" % path)
                report.diffs.append({"before_header": path, "after_header": path, "before": before, "after": ""})
                if not host.check_mode:
                    os.unlink(path)
            continue
        text = render_network(network)
        if before == text:
            continue
        written = True
        report.changes.append("network file %s: %s" % (path, "written" if before is None else "updated"))
        report.diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
        if not host.check_mode:
            os.makedirs(quadlet_dir, mode=0o755, exist_ok=True)
            write_unit(path, text)
    return written
