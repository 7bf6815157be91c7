# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small model of systemd's ordering graph, to find ordering cycles between unit files.

Only what decides ordering between services and targets at boot and shutdown is modelled:

* explicit ``After=``/``Before=`` (one relation seen from both ends);
* the pull dependencies ``Requires=``/``Wants=``/``BindsTo=``/``Requisite=``, including those
  that enabling creates (``WantedBy=``/``RequiredBy=`` in ``[Install]``, ``.wants/`` and
  ``.requires/`` directories);
* the implicit dependencies of ``DefaultDependencies=yes`` (systemd.service(5),
  systemd.target(5), systemd.special(7)):
  - a service: ``Requires=``+``After=sysinit.target``, ``After=basic.target``,
    ``Conflicts=``+``Before=shutdown.target``;
  - a target: ``Conflicts=``+``Before=shutdown.target``, and ``After=`` every unit it pulls
    in, unless that unit has ``DefaultDependencies=no`` or the target is already ordered
    before it (systemd's ``unit_add_default_target_dependency``).

systemd itself only looks for cycles among the jobs of one transaction; this checker looks at
the whole graph of the units it is given, which is stricter (it reports every cycle systemd
could hit for some transaction).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

PULL_KEYS = ("Requires", "Wants", "BindsTo", "Requisite")
REVERSE_PULL_KEYS = {"WantedBy": "Wants", "RequiredBy": "Requires"}
UNIT_SUFFIXES = (".service", ".target", ".socket", ".mount", ".timer", ".path")


@dataclass
class UnitFile:
    name: str
    # (section, key) -> the whitespace-separated values of every occurrence, in order.
    settings: Dict[Tuple[str, str], List[str]] = field(default_factory=dict)
    # Pull dependencies created by enabling other units (.wants/.requires symlinks).
    extra_pulls: Dict[str, List[str]] = field(default_factory=dict)

    def values(self, section: str, key: str) -> List[str]:
        return self.settings.get((section, key), [])

    def first(self, section: str, key: str, default: str = "") -> str:
        values = self.values(section, key)
        return values[-1] if values else default

    @property
    def kind(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def default_dependencies(self) -> bool:
        return self.first("Unit", "DefaultDependencies", "yes").lower() in ("yes", "true", "1", "on")


def parse_unit(name: str, text: str) -> UnitFile:
    """Parse unit file text: sections, repeated keys, line continuations, empty resets."""
    unit = UnitFile(name=name)
    section = ""
    logical_lines: List[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        logical_lines.append(pending + raw)
        pending = ""
    if pending:
        logical_lines.append(pending)
    for line in logical_lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" not in line:
            raise ValueError("%s: not a key=value line: %r" % (name, line))
        key, value = (part.strip() for part in line.split("=", 1))
        if not value:
            # An empty assignment resets the list, as in systemd.
            unit.settings[(section, key)] = []
            continue
        unit.settings.setdefault((section, key), []).extend(value.split())
    return unit


def load_unit_dir(path: str) -> Dict[str, UnitFile]:
    """Every unit file in a directory, plus the pulls of its ``<unit>.wants/`` directories."""
    units: Dict[str, UnitFile] = {}
    for entry in sorted(os.listdir(path)):
        full = os.path.join(path, entry)
        if entry.endswith(UNIT_SUFFIXES) and os.path.isfile(full):
            with open(full, "r", encoding="utf-8") as handle:
                units[entry] = parse_unit(entry, handle.read())
    for entry in sorted(os.listdir(path)):
        for suffix, key in ((".wants", "Wants"), (".requires", "Requires")):
            owner = entry[: -len(suffix)]
            if entry.endswith(suffix) and owner in units and os.path.isdir(os.path.join(path, entry)):
                units[owner].extra_pulls.setdefault(key, []).extend(sorted(os.listdir(os.path.join(path, entry))))
    return units


class OrderingGraph:
    """``edges[a]`` holds every unit that starts after ``a`` (``a`` is ordered before them)."""

    def __init__(self) -> None:
        self.edges: Dict[str, Set[str]] = {}
        self.pulls: Dict[str, Set[str]] = {}
        self.conflicts: Dict[str, Set[str]] = {}

    def order(self, first: str, then: str) -> None:
        if first != then:  # systemd ignores a unit ordered against itself
            self.edges.setdefault(first, set()).add(then)
            self.edges.setdefault(then, set())

    def starts_before(self, first: str, then: str) -> bool:
        return then in self.edges.get(first, set())

    def find_cycle(self) -> Optional[List[str]]:
        """One ordering cycle as ``[a, b, ..., a]`` (a before b before ... a), or None."""
        white, grey, black = 0, 1, 2
        colour = {node: white for node in self.edges}
        stack: List[str] = []

        def visit(node: str) -> Optional[List[str]]:
            colour[node] = grey
            stack.append(node)
            for successor in sorted(self.edges[node]):
                if colour[successor] == grey:
                    return stack[stack.index(successor):] + [successor]
                if colour[successor] == white:
                    found = visit(successor)
                    if found:
                        return found
            stack.pop()
            colour[node] = black
            return None

        for node in sorted(self.edges):
            if colour[node] == white:
                found = visit(node)
                if found:
                    return found
        return None


def _pulls_of(unit: UnitFile, units: Dict[str, UnitFile], enabled: bool) -> Set[str]:
    pulled: Set[str] = set()
    for key in PULL_KEYS:
        pulled.update(unit.values("Unit", key))
        pulled.update(unit.extra_pulls.get(key, []))
    if enabled:
        # [Install] WantedBy=/RequiredBy= of the other units, as `systemctl enable` links them.
        for other in units.values():
            for install_key in REVERSE_PULL_KEYS:
                if unit.name in other.values("Install", install_key):
                    pulled.add(other.name)
    return pulled


def build_graph(units: Dict[str, UnitFile], enabled: bool = True) -> OrderingGraph:
    """The ordering graph of ``units``; ``enabled`` applies their ``[Install]`` sections."""
    graph = OrderingGraph()
    for unit in units.values():
        graph.edges.setdefault(unit.name, set())
        for other in unit.values("Unit", "After"):
            graph.order(other, unit.name)
        for other in unit.values("Unit", "Before"):
            graph.order(unit.name, other)
        graph.pulls[unit.name] = _pulls_of(unit, units, enabled)
        graph.conflicts[unit.name] = set(unit.values("Unit", "Conflicts"))

    # Implicit dependencies come after the explicit ones: the target rule looks at them.
    for unit in units.values():
        if not unit.default_dependencies:
            continue
        if unit.kind == "service":
            graph.pulls[unit.name].add("sysinit.target")
            graph.order("sysinit.target", unit.name)
            graph.order("basic.target", unit.name)
        if unit.kind in ("service", "target") and unit.name != "shutdown.target":
            graph.conflicts[unit.name].add("shutdown.target")
            graph.order(unit.name, "shutdown.target")
    for target in units.values():
        if target.kind != "target" or not target.default_dependencies:
            continue
        for pulled_name in sorted(graph.pulls[target.name]):
            pulled = units.get(pulled_name)
            # systemd only adds it between loaded units, both with default dependencies, and
            # never against an explicit ordering the other way round.
            if pulled is None or not pulled.default_dependencies:
                continue
            if graph.starts_before(target.name, pulled_name):
                continue
            graph.order(pulled_name, target.name)
    return graph


def cycle_in_dir(path: str, enabled: bool = True) -> Optional[List[str]]:
    return build_graph(load_unit_dir(path), enabled=enabled).find_cycle()


def describe(cycle: Iterable[str]) -> str:
    return " -> ".join(cycle) + " (each starts before the next)"
