# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of hearth.matrix.self_check: each unit's state and its container's health.

Reads only: one ``systemctl is-active`` for every unit, one ``<engine> inspect`` for every
container. podman (4.3 in Debian 12) updates a container's health status only from its
transient health timer, which may not have run since a restart; for a podman container that
has a health check and is not reported healthy, ``podman healthcheck run`` runs the check
now (the same command its timer runs; it changes nothing but the health log).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

# argv -> (rc, stdout, stderr), as AnsibleModule.run_command.
Run = Callable[[List[str]], Tuple[int, str, str]]


def service_names(topology: Mapping[str, Any]) -> List[str]:
    """Every unit of the stack in start order (extra services included)."""
    return list(topology.get("start_order") or topology.get("services", {}).keys())


def unit_states(run: Run, systemctl: str, names: Sequence[str]) -> Dict[str, str]:
    """``name`` -> ActiveState (active, inactive, failed ...); one line per unit, in order."""
    if not names:
        return {}
    _rc, out, _err = run([systemctl, "is-active", "--"] + ["%s.service" % name for name in names])
    lines = out.splitlines()
    return {name: (lines[index].strip() if index < len(lines) else "unknown") for index, name in enumerate(names)}


def _health(info: Mapping[str, Any]) -> Tuple[bool, str]:
    """(has a health check, status as the engine last recorded it)."""
    config = info.get("Config") or {}
    check = config.get("Healthcheck") or {}
    has_check = bool(check.get("Test")) and check.get("Test") != ["NONE"]
    state = info.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    return has_check, str(health.get("Status") or "")


def container_states(run: Run, engine: str, engine_path: str, names: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``name`` -> {container, running, health} for each name; health "none" = no health check."""
    result: Dict[str, Dict[str, Any]] = {name: {"container": False, "running": False, "health": "none"} for name in names}
    if not names:
        return result
    # Asked one by one only when the batch fails (a missing container fails the whole call
    # on docker, and podman prints nothing for it).
    infos = _inspect(run, engine_path, list(names))
    for name in names:
        info = infos.get(name)
        if info is None:
            continue
        has_check, status = _health(info)
        running = bool((info.get("State") or {}).get("Running"))
        if has_check and running and engine == "podman" and status != "healthy":
            rc, _out, _err = run([engine_path, "healthcheck", "run", name])
            status = "healthy" if rc == 0 else "unhealthy"
        result[name] = {"container": True, "running": running,
                        "health": (status or "starting") if has_check else "none"}
    return result


def _inspect(run: Run, engine_path: str, names: List[str]) -> Dict[str, Mapping[str, Any]]:
    rc, out, _err = run([engine_path, "container", "inspect"] + names)
    found = _parse(out) if rc == 0 else []
    if len(found) != len(names):
        found = []
        for name in names:
            rc, out, _err = run([engine_path, "container", "inspect", name])
            found.extend(_parse(out)[:1] if rc == 0 else [{}])
    return {name: info for name, info in zip(names, found) if info}


def _parse(text: str) -> List[Mapping[str, Any]]:
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return []
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def read_services(run: Run, systemctl: str, engine: str, engine_path: str, names: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Unit and container state of every service: what check_service() judges."""
    units = unit_states(run, systemctl, names)
    containers = container_states(run, engine, engine_path, names)
    return {name: dict(containers[name], active=units.get(name, "unknown"), engine=engine) for name in names}
