# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine and systemd side of a converge: host facts, image, networks, unit, service.

One ``systemctl show`` asks for the state of every unit at once, and starts and restarts go
to systemd as one job transaction, so systemd orders them by the units' own dependencies
and runs what it can in parallel.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component, Network
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import engine_binary, is_rootless
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import Host, HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.unit import (
    INSTANCE_PREFIX,
    MANAGED_MARKER,
    HostPaths,
    UnitSpec,
    render_unit,
)

# The unit the engine's daemon runs as, in the units' own systemd instance: a rootless
# docker's dockerd is the service user's docker.service (rootless_host.py writes it).
ENGINE_UNITS = {"docker": "docker.service", "podman": "", "podman_rootless": "", "docker_rootless": "docker.service"}
RELOAD_LINE_PREFIX = "ExecStartPost=-"


@dataclass(frozen=True)
class HostFacts:
    engine: str
    engine_path: str
    sh_path: str
    systemctl: str
    openssl: Optional[str]
    systemd_version: int
    python: str = ""
    # The units run in a service user's systemd instance (a rootless engine mode).
    user_scope: bool = False

    @property
    def engine_unit(self) -> str:
        return ENGINE_UNITS[self.engine]

    @property
    def paths(self) -> HostPaths:
        return HostPaths(engine=self.engine_path, sh=self.sh_path, python=self.python)


@dataclass
class EngineCache:
    """What one run already knows from the engine: image IDs and existing networks (their
    inspect output), read for all components in one call each instead of one per component."""

    image_ids: Dict[str, str] = field(default_factory=dict)
    networks: Dict[str, str] = field(default_factory=dict)


def prefetch(host: Host, facts: HostFacts, images: Sequence[str], networks: Sequence[str], cache: EngineCache) -> None:
    """One `image inspect` and one `network inspect` for everything the run will look at.

    Only a complete answer is kept (every name found, in the order asked); otherwise the
    per-component calls find out which one is missing.
    """
    wanted = sorted(set(images) - set(cache.image_ids))
    if wanted:
        rc, out, _err = host.run_command([facts.engine_path, "image", "inspect", "--format", "{{.Id}}"] + wanted)
        ids = out.strip().splitlines() if rc == 0 else []
        if len(ids) == len(wanted):
            cache.image_ids.update(zip(wanted, ids))
    wanted = sorted(set(networks) - set(cache.networks))
    if wanted:
        rc, out, _err = host.run_command([facts.engine_path, "network", "inspect"] + wanted)
        try:
            found = json.loads(out) if rc == 0 else []
        except ValueError:
            found = []
        if isinstance(found, list) and len(found) == len(wanted):
            for name, info in zip(wanted, found):
                if isinstance(info, dict) and name in (info.get("Name"), info.get("name")):
                    cache.networks[name] = json.dumps([info])


class BinFinder:
    """Looks up commands on the host (AnsibleModule.get_bin_path)."""

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[List[str]] = None) -> Optional[str]:
        raise NotImplementedError


def detect_facts(host: Host, finder: BinFinder, engine: str) -> HostFacts:
    engine_path = finder.get_bin_path(engine_binary(engine))
    if not engine_path:
        raise HostError("engine", "no '%s' executable on the host: install %s first (installing the engine is "
                        "outside this collection) or choose the other engine (hearth_engine, or <role>_engine "
                        "for a role used alone)" % (engine_binary(engine), engine_binary(engine)))
    systemctl = finder.get_bin_path("systemctl")
    if not systemctl:
        raise HostError("engine", "systemctl not found: the host must run systemd")
    rc, out, _err = host.run_command([systemctl, "--version"])
    match = re.match(r"systemd (\d+)", out or "")
    return HostFacts(
        engine=engine,
        engine_path=engine_path,
        sh_path=finder.get_bin_path("sh") or "/bin/sh",
        systemctl=systemctl,
        openssl=finder.get_bin_path("openssl"),
        systemd_version=int(match.group(1)) if rc == 0 and match else 0,
        # For the readiness probes (readiness.py); without it, units probe via the engine.
        python=finder.get_bin_path("python3") or "",
        user_scope=is_rootless(engine),
    )


def ensure_image(host: Host, facts: HostFacts, component: Component, report: Report,
                 cache: Optional[EngineCache] = None) -> str:
    """The image ID (pulled first when missing); part of what decides a restart."""
    if cache is not None and component.image in cache.image_ids:
        return cache.image_ids[component.image]
    inspect = [facts.engine_path, "image", "inspect", "--format", "{{.Id}}", component.image]
    rc, out, _err = host.run_command(inspect)
    if rc == 0 and out.strip():
        return out.strip().splitlines()[0]
    check_engine_answers(host, facts)
    if not component.pull:
        raise HostError("image", "%s is not on the host and pulling is off" % component.image)
    report.changes.append("image %s: pulled" % component.image)
    report.restart_reasons.append("image")
    if host.check_mode:
        return "(pulled on apply)"
    rc, out, err = host.run_command([facts.engine_path, "pull", component.image])
    if rc != 0:
        raise HostError("image", "pulling %s failed: %s" % (component.image, (err or out).strip()[-400:]))
    rc, out, err = host.run_command(inspect)
    if rc != 0:
        raise HostError("image", "%s is still missing after the pull: %s" % (component.image, err.strip()))
    return out.strip().splitlines()[0]


def check_engine_answers(host: Host, facts: HostFacts) -> None:
    rc, out, err = host.run_command([facts.engine_path, "info"])
    if rc != 0:
        raise HostError("engine", "%s does not answer (%s info: %s); is the %s service running?"
                        % (facts.engine, facts.engine, (err or out).strip()[-300:], facts.engine))


def network_subnets(inspect_json: str) -> List[str]:
    """The subnets of a network from ``<engine> network inspect`` (docker's IPAM.Config or
    podman's subnets)."""
    try:
        data: Any = json.loads(inspect_json)
    except ValueError:
        return []
    info = data[0] if isinstance(data, list) and data else data
    if not isinstance(info, dict):
        return []
    entries = (info.get("IPAM") or {}).get("Config") or info.get("subnets") or []
    return [str(entry.get("Subnet") or entry.get("subnet")) for entry in entries
            if isinstance(entry, dict) and (entry.get("Subnet") or entry.get("subnet"))]


def ensure_networks(host: Host, facts: HostFacts, networks: Sequence[Union[str, Network]], report: Report,
                    cache: Optional[EngineCache] = None) -> None:
    for item in networks:
        network = item if isinstance(item, Network) else Network(name=item)
        if cache is not None and network.name in cache.networks:
            rc, out = 0, cache.networks[network.name]
        else:
            rc, out, _err = host.run_command([facts.engine_path, "network", "inspect", network.name])
        if rc == 0:
            if cache is not None:
                cache.networks[network.name] = out
            subnets = network_subnets(out)
            if network.subnet and network.subnet not in subnets:
                # Recreating it would cut every container on it off: the operator decides.
                raise HostError("networks", "network %s exists with subnet %s, not %s: ask for that subnet, or "
                                "remove the network (stop the stack first) so it is created again"
                                % (network.name, ", ".join(subnets) or "(none)", network.subnet))
            continue
        check_engine_answers(host, facts)
        report.changes.append("network %s: created" % network.name)
        if not host.check_mode:
            argv = [facts.engine_path, "network", "create"]
            if network.subnet:
                argv += ["--subnet=%s" % network.subnet, "--ip-range=%s" % network.dynamic_range]
            rc, out, err = host.run_command(argv + [network.name])
            if rc != 0:
                raise HostError("networks", "creating network %s failed: %s" % (network.name, (err or out).strip()))


def unit_text(facts: HostFacts, component: Component, image_id: str, report: Report) -> str:
    """The unit; its fingerprint line changes whenever the image or a restart-relevant file does."""
    return render_unit(unit_spec(facts, component, image_id, report))


def unit_spec(facts: HostFacts, component: Component, image_id: str, report: Report) -> UnitSpec:
    """The unit model of a component (rendered as a unit, or as a Quadlet file)."""
    if component.container is None:
        raise HostError("container", "%s has no container, so no unit" % component.name)
    fingerprint = hashlib.sha256("\n".join([image_id, component.extra_fingerprint] + sorted(report.digests))
                                 .encode("utf-8")).hexdigest()[:16]
    spec = UnitSpec(
        container=component.container,
        engine=component.engine,
        paths=facts.paths,
        description=component.description,
        engine_unit=facts.engine_unit,
        requires=component.requires,
        wants=component.wants,
        after=component.after,
        restart_sec=component.restart_sec,
        ready_timeout=component.ready_timeout,
        fingerprint="image=%s state=%s" % (image_id[:19], fingerprint),
        instance=component.instance,
        reload_on_ready=component.reload_on_ready,
        scope="user" if facts.user_scope else "system",
    )
    return spec


def restart_relevant(unit: Optional[str]) -> Optional[str]:
    """The unit without the lines that only tell others to reload (reload_on_ready): adding or
    dropping those needs a daemon-reload, not a restart of this service."""
    if unit is None:
        return None
    return "\n".join(line for line in unit.splitlines() if not line.startswith(RELOAD_LINE_PREFIX))


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_unit(path: str, text: str) -> None:
    fd, tmp_path = tempfile.mkstemp(prefix=".hearth-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_path, 0o644)
        os.rename(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def unit_states(host: Host, facts: HostFacts, names: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """ActiveState, UnitFileState, NeedDaemonReload of each service, in one systemctl call."""
    if not names:
        return {}
    units = [name + ".service" for name in names]
    rc, out, err = host.run_command([facts.systemctl, "show", "--property=Id,ActiveState,UnitFileState,NeedDaemonReload"]
                                    + units)
    if rc != 0:
        raise HostError("systemd", "systemctl show failed: %s" % err.strip())
    states: Dict[str, Dict[str, str]] = {}
    current: Dict[str, str] = {}
    for line in (out + "\n\n").splitlines():
        if not line.strip():
            if current.get("Id"):
                states[current["Id"][:-len(".service")] if current["Id"].endswith(".service") else current["Id"]] = current
            current = {}
            continue
        key, _sep, value = line.partition("=")
        current[key] = value
    return {name: states.get(name, {}) for name in names}


def systemctl(host: Host, facts: HostFacts, verb: str, names: Sequence[str]) -> None:
    """One systemctl call for all the services (one job transaction for start/restart)."""
    if not names or host.check_mode:
        return
    rc, out, err = host.run_command([facts.systemctl, verb] + [name + ".service" for name in names])
    if rc != 0:
        raise HostError("systemd", "systemctl %s %s failed: %s" % (verb, " ".join(names), (err or out).strip()))


def daemon_reload(host: Host, facts: HostFacts) -> None:
    if host.check_mode:
        return
    rc, out, err = host.run_command([facts.systemctl, "daemon-reload"])
    if rc != 0:
        raise HostError("systemd", "systemctl daemon-reload failed: %s" % (err or out).strip())


def remove_service(host: Host, facts: HostFacts, name: str, unit_path: str, report: Report,
                   what: str = "unit", stop: Sequence[str] = ("disable", "--now")) -> bool:
    """Stop (and disable) the service, remove its file (``what``: a unit, or a Quadlet file
    whose generated unit has no enablement: ``stop=("stop",)``) and its container; data
    directories stay."""
    before = read_text(unit_path)
    if before is None:
        return False
    report.changes.append("service %s: removed (%s and container; data kept)" % (name, what))
    report.diffs.append({"before_header": unit_path, "after_header": unit_path, "before": before, "after": ""})
    if not host.check_mode:
        # A unit that is already stopped or was never enabled is fine.
        host.run_command([facts.systemctl, *stop, name + ".service"])
        os.unlink(unit_path)
        host.run_command([facts.engine_path, "rm", "--force", name])
    return True


def remove_leftovers(host: Host, facts: HostFacts, unit_dir: str, units: Sequence[str], files: Sequence[str],
                     report: Report) -> bool:
    """What a feature that is now turned off left on the host (e.g. the ACME renewal timer):
    each unit stopped, disabled and deleted, each file deleted, when present. Returns whether
    a unit went (the caller then reloads systemd once)."""
    removed_unit = False
    for unit in units:
        path = os.path.join(unit_dir, unit)
        if not os.path.lexists(path):
            continue
        report.changes.append("unit %s: removed (turned off)" % unit)
        removed_unit = True
        if not host.check_mode:
            host.run_command([facts.systemctl, "disable", "--now", unit])
            os.unlink(path)
    for path in files:
        if os.path.lexists(path):
            report.changes.append("file %s: removed (turned off)" % path)
            if not host.check_mode:
                os.unlink(path)
    return removed_unit


def units_of_instances(unit_dir: str, instances: Mapping[str, str],
                       suffix: str = ".service") -> List[Tuple[str, str, str]]:
    """Our units (name, path, instance) that belong to one of ``instances`` (instance -> the service
    name it has now) under another name: left behind when ``<role>_service_name`` changed.

    Only units with our marker on the first line and an instance line are looked at; the
    header is read, not the whole file.
    """
    found: List[Tuple[str, str, str]] = []
    try:
        entries = sorted(os.listdir(unit_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.endswith(suffix):
            continue
        path = os.path.join(unit_dir, entry)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            head = [handle.readline().rstrip("\n"), handle.readline().rstrip("\n")]
        if head[0] != MANAGED_MARKER or not head[1].startswith(INSTANCE_PREFIX):
            continue
        name = entry[:-len(suffix)]
        instance = head[1][len(INSTANCE_PREFIX):]
        if instance in instances and instances[instance] != name:
            found.append((name, path, instance))
    return found
