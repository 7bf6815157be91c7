# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What systemd knows about the stack's units: restarts and downtime, from its timestamps.

A unit of ours only becomes "active" after its readiness check passed (ExecStartPost), so
ActiveEnterTimestamp is the moment the service was healthy again. The Monotonic variants are
CLOCK_MONOTONIC, which a bed target shares with the host (same kernel), so they compare
directly with the host's time.monotonic() and stay comparable across a target reboot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

SHOW_PROPERTIES = ("Id", "ActiveState", "InvocationID", "ActiveEnterTimestampMonotonic",
                   "ActiveExitTimestampMonotonic")


@dataclass(frozen=True)
class UnitState:
    unit: str
    active_state: str
    invocation_id: str
    active_enter: float   # seconds, CLOCK_MONOTONIC; 0.0 = never
    active_exit: float    # seconds, CLOCK_MONOTONIC; 0.0 = never since boot


def show_argv(units: List[str]) -> List[str]:
    return ["systemctl", "show", "-p", ",".join(SHOW_PROPERTIES), "--", *units]


def parse_show(text: str) -> Dict[str, UnitState]:
    """`systemctl show -p ...` of several units: blocks of KEY=VALUE split by blank lines."""
    states: Dict[str, UnitState] = {}
    for block in text.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not values.get("Id"):
            continue
        missing = [key for key in SHOW_PROPERTIES if key not in values]
        if missing:
            raise ValueError("systemctl show output of %s lacks %s" % (values["Id"], ", ".join(missing)))
        states[values["Id"]] = UnitState(
            unit=values["Id"],
            active_state=values["ActiveState"],
            invocation_id=values["InvocationID"],
            active_enter=int(values["ActiveEnterTimestampMonotonic"] or 0) / 1e6,
            active_exit=int(values["ActiveExitTimestampMonotonic"] or 0) / 1e6,
        )
    return states


def restarted(before: Mapping[str, UnitState], after: Mapping[str, UnitState]) -> List[str]:
    """Units that ran again in between (new invocation), appeared, or vanished; sorted."""
    names = set(before) | set(after)
    return sorted(name for name in names
                  if name not in before or name not in after
                  or before[name].invocation_id != after[name].invocation_id)


def all_active(states: Mapping[str, UnitState], units: List[str]) -> bool:
    return all(unit in states and states[unit].active_state == "active" for unit in units)


@dataclass(frozen=True)
class Outage:
    per_unit: Dict[str, float]   # seconds each unit was not serving
    all_healthy_after: float     # seconds from `since` until the last unit was active again

    @property
    def summed(self) -> float:
        return sum(self.per_unit.values())


def outage(after: Mapping[str, UnitState], units: List[str], since: float,
           down_from: Optional[float] = None) -> Outage:
    """Downtime of each unit after a restart that began at `since` (monotonic seconds).

    A unit was down from the moment it left "active" (its ActiveExit; or `down_from`,
    e.g. the reboot command, when systemd's own record of the stop is gone) until it was
    active (= healthy) again.
    """
    per_unit: Dict[str, float] = {}
    for unit in units:
        state = after[unit]
        if state.active_state != "active" or state.active_enter <= since:
            raise ValueError("%s was not (re)started after the restart began" % unit)
        went_down = down_from if down_from is not None else state.active_exit
        if went_down <= 0 or went_down > state.active_enter:
            raise ValueError("%s has no stop time before its start" % unit)
        per_unit[unit] = state.active_enter - went_down
    last_up = max(after[unit].active_enter for unit in units)
    return Outage(per_unit=per_unit, all_healthy_after=last_up - since)
