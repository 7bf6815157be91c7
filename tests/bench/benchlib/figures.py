# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Figures read off one run's raw measurements, and the goals they are shown beside.

The goals are printed and written next to the figures; the benchmark never fails on them
(timings differ between machines). It fails only on correctness checks.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Tuple

# The project's goals for a full stack on a machine like the project's (2 cores).
GOALS: Dict[str, float] = {
    "no_change_to_floor": 2.0,                  # no-change converge wall time / floor wall time
    "no_change_tasks": 30,                      # tasks a no-change converge runs
    "fresh_converge_seconds": 25.0,             # images present
    "stack_restart_summed_downtime_seconds": 25.0,
}


def floor_first(run_index: int) -> bool:
    """The floor and the no-change converge swap places every run: neither always goes first."""
    return run_index % 2 == 0


def round_order(index: int) -> Tuple[str, str]:
    """Which path goes first in round ``index``: direct first in even rounds, the proxy in
    odd ones, so a drift of the machine's speed during the rounds (seen here: Synapse's CPU
    time per request changes by up to a third between consecutive rounds) weighs on both
    paths alike instead of always on the one measured second."""
    return ("direct", "proxy") if index % 2 == 0 else ("proxy", "direct")


def to_floor(converge_seconds: float, floor_seconds: float) -> float:
    """How many floors a converge costs (same run, same target)."""
    if floor_seconds <= 0:
        raise ValueError("the floor took %r s: no ratio" % floor_seconds)
    return round(converge_seconds / floor_seconds, 3)


def restart_sets(restarted: Iterable[str], expected: Iterable[str]) -> Tuple[List[str], List[str]]:
    """(restarted beyond the expected services, expected services that did not restart)."""
    done, wanted = set(restarted), set(expected)
    return sorted(done - wanted), sorted(wanted - done)


_EXPOSURE_RE = re.compile(r"Overall exposure level for (\S+): ([0-9]+(?:\.[0-9]+)?)")


def exposure(analyze_output: str) -> Optional[float]:
    """The overall exposure of `systemd-analyze security <unit>` (0 = locked down, 10 = none)."""
    match = _EXPOSURE_RE.search(analyze_output)
    return float(match.group(2)) if match else None
