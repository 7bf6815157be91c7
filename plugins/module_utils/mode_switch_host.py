# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a change of engine mode does on the host (see mode_switch.py for the rules): the
other mode's services of each component removed, the owners of its data translated, the
mapping recorded."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import IdMap, RootlessUser, run_as_argv
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.mode_switch import (
    base_dir_of,
    engine_of_unit,
    parse_marker,
    read_marker,
    roots_of,
    runs_as_user,
    same_mapping,
    translate_tree,
    user_unit_dir_of,
    write_marker,
)
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet_state import remove_quadlet_service
from ansible_collections.hearth.matrix.plugins.module_utils.rootless_host import UserHost
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import (
    HostFacts,
    daemon_reload,
    remove_service,
    units_of_instances,
)
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import remove_socket_service

VARIABLE = "hearth_engine"


def _describe(idmap: Optional[IdMap]) -> str:
    return "rootful" if idmap is None else "rootless (uid %d, subuid %d)" % (idmap.user_uid, idmap.subuid.start)


def _remove_rootful(system: Any, facts: HostFacts, component: Component, dirs: Dict[str, str], report: Report) -> bool:
    """The system units (generated or Quadlet) of the component's instance, and their containers."""
    removed = False
    wanted = {component.instance: ""}   # no service name matches "": every unit of the instance
    for name, path, _instance in units_of_instances(dirs["unit_dir"], wanted):
        if runs_as_user(path):
            continue
        root = replace(facts, engine_path=engine_of_unit(path) or facts.engine_path, user_scope=False)
        removed = remove_service(system, root, name, path, report) or removed
    for name, path, _instance in units_of_instances(dirs["quadlet_dir"], wanted, ".container"):
        root = replace(facts, engine_path=dirs["podman"] or facts.engine_path, user_scope=False)
        removed = remove_quadlet_service(system, root, name, path, report) or removed
    if removed and not system.check_mode:
        daemon_reload(system, facts)
    return removed


def _remove_rootless(system: Any, facts: HostFacts, component: Component, old: IdMap, report: Report,
                     dirs: Dict[str, str]) -> bool:
    """The service user's units of the component's instance and their containers (the old
    mapping names the user), and a socket-activated service's system unit and .socket."""
    removed = remove_socket_service(system, replace(facts, user_scope=False), component.name, report,
                                    dirs["unit_dir"])
    try:
        user, home, unit_dir = user_unit_dir_of(old)
    except KeyError:
        return removed   # the user is gone, and its units and containers with it
    found = units_of_instances(unit_dir, {component.instance: ""})
    if not found:
        return removed
    runuser = system.get_bin_path("runuser")
    if not runuser:
        raise HostError(VARIABLE, "leaving a rootless mode needs runuser on the host to stop %s's services" % user)
    as_user = run_as_argv(runuser, RootlessUser(user, home), old.user_uid)
    for name, path, _instance in found:
        engine = engine_of_unit(path) or facts.engine_path
        remove_service(UserHost(system, as_user, engine, facts.systemctl),
                       replace(facts, engine_path=engine, user_scope=True), name, path, report)
    if not system.check_mode:
        daemon_reload(UserHost(system, as_user, facts.engine_path, facts.systemctl), facts)
    return True


def switch_modes(system: Any, facts: HostFacts, components: Sequence[Component], new: Optional[IdMap],
                 reports: Dict[str, Report], dirs: Dict[str, str]) -> List[str]:
    """Bring every started component's data to the ``new`` mapping (None: rootful) before its
    service starts. Returns the base directories that still need a marker once they exist
    (a first deployment in a rootless mode). ``system`` runs commands as root; ``dirs``:
    unit_dir and quadlet_dir of the system instance, and the podman path ("" if none)."""
    unmarked: List[str] = []
    for component in components:
        if component.state != "started" or component.container is None or not component.instance:
            continue
        base = base_dir_of(component.instance)
        if not base:
            continue
        try:
            old = parse_marker(read_marker(base))
        except ValueError as exc:
            raise HostError(VARIABLE, "%s: %s in %s; remove it only if you know which mode the data was "
                            "last deployed with" % (component.name, exc, base)) from exc
        if same_mapping(old, new):
            continue
        report = reports.setdefault(component.name, Report())
        if old is None:
            # No marker: rootful data, unless nothing rootful of this instance exists (a first
            # deployment in the rootless mode, or one made before markers): then only mark it.
            removed = _remove_rootful(system, facts, component, dirs, report)
            if not removed:
                unmarked.append(base)
                continue
        else:
            _remove_rootless(system, facts, component, old, report, dirs)
        roots = roots_of(base, [d.path for d in component.directories])
        report.changes.append("owners under %s: moved from %s to %s ids" % (", ".join(roots), _describe(old), _describe(new)))
        if not system.check_mode:
            translate_tree(roots, old, new)
            write_marker(base, new)
    return unmarked


def mark(system: Any, bases: Sequence[str], new: Optional[IdMap]) -> None:
    """Record the mapping of base directories a first deployment has just created."""
    if system.check_mode or new is None:
        return
    for base in bases:
        if os.path.isdir(base):
            write_marker(base, new)
