# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a started component's service is placed, decided once per run.

A service (a started component with a container) is one of three kinds:

- ``generated``: a unit file rendered from the unit model (unit.py) in the engine mode's
  unit directory, run by that mode's systemd instance: the system manager in a rootful mode,
  the service user's own instance in a rootless one;
- ``quadlet``: a Podman Quadlet file (quadlet.py) in the Quadlet directory, from which
  systemd's generator makes the unit (rootful podman only, ``hearth_podman_quadlet``);
- ``socket``: a socket-activated service (socket_activation.py, socket_state.py): a rootless
  podman container that publishes a port below 1024 without the opt-in. Its unit and its
  root-owned ``.socket`` are system units, because only the system manager may bind a low
  port and a ``.socket`` activates only a service of its own manager; the unit's processes
  still run as the service user.

The kind decides which systemd instance drives the service (``scope``), whether
``systemctl enable`` applies to it, and when it starts: generated and Quadlet services go
to their instance in one job transaction; a socket-activated one is started by the system
manager after that transaction, with its socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import List, Optional, Sequence

from ansible_collections.hearth.matrix.plugins.module_utils.component import Component
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet_state import unit_file
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import RootlessAccount, SocketPlan, socket_plan


class Kind(Enum):
    GENERATED = "generated"
    QUADLET = "quadlet"
    SOCKET = "socket"


class Scope(Enum):
    """The systemd instance that runs a service's unit."""

    # The engine mode's instance: the system manager when rootful, the service user's when rootless.
    ENGINE = "engine"
    # The system manager, as root, whatever the mode.
    SYSTEM = "system"


@dataclass(frozen=True)
class Placement:
    kind: Kind
    # The component as it is deployed: a socket-activated one without published ports (its
    # sockets replace them).
    component: Component
    # The file this run writes for the service: the unit, or the Quadlet file.
    unit_path: str
    # The .socket and the system unit's transformation; only for Kind.SOCKET.
    socket: Optional[SocketPlan] = None

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def scope(self) -> Scope:
        return Scope.SYSTEM if self.kind is Kind.SOCKET else Scope.ENGINE

    @property
    def enabled_by_systemctl(self) -> bool:
        """A unit systemd generates from a Quadlet file cannot be ``systemctl enable``d: the
        generator applies its [Install] section itself."""
        return self.kind is not Kind.QUADLET


def place(component: Component, account: Optional[RootlessAccount], unit_dir: str, quadlet_dir: str) -> Placement:
    """The placement of one started component with a container. ``account``: the rootless
    service user (None in a rootful mode, where nothing is socket-activated); ``unit_dir``:
    the engine mode's unit directory."""
    plan = socket_plan(component, account)
    if plan is not None:
        return Placement(Kind.SOCKET, plan.component, plan.unit_path, plan)
    kind = Kind.QUADLET if component.quadlet else Kind.GENERATED
    return Placement(kind, component, unit_file(component, unit_dir, quadlet_dir))


def place_services(components: Sequence[Component], account: Optional[RootlessAccount], unit_dir: str,
                   quadlet_dir: str) -> List[Placement]:
    """The placement of every service (started, with a container), in the order given:
    files-only and absent components have none."""
    return [place(component, account, unit_dir, quadlet_dir) for component in components
            if component.state == "started" and component.container is not None]
