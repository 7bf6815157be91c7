# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Figures read off one run: the floor ratio, its order, the restart sets."""

from __future__ import annotations

import pytest

from benchlib.figures import GOALS, exposure, floor_first, restart_sets, round_order, to_floor


def test_floor_and_converge_swap_places_every_run() -> None:
    assert [floor_first(index) for index in range(4)] == [True, False, True, False]


def test_the_proxy_rounds_alternate_which_path_goes_first() -> None:
    assert [round_order(index) for index in range(3)] == [("direct", "proxy"), ("proxy", "direct"), ("direct", "proxy")]


def test_to_floor_is_converge_over_floor() -> None:
    assert to_floor(36.0, 12.0) == 3.0
    assert to_floor(10.0, 3.0) == 3.333
    with pytest.raises(ValueError, match="floor took 0"):
        to_floor(10.0, 0)


def test_restart_sets_split_extra_and_missing_services() -> None:
    synapse, corporal = "hearth-synapse.service", "hearth-corporal.service"
    assert restart_sets([synapse], [synapse]) == ([], [])
    assert restart_sets([corporal, synapse], [synapse]) == ([corporal], [])
    assert restart_sets([corporal], [synapse]) == ([corporal], [synapse])
    assert restart_sets([], [synapse]) == ([], [synapse])


def test_goals_cover_the_reported_targets() -> None:
    assert set(GOALS) == {"no_change_to_floor", "no_change_tasks", "fresh_converge_seconds",
                          "stack_restart_summed_downtime_seconds"}


def test_exposure_is_read_off_systemd_analyze() -> None:
    text = ("  ✓ UMask=   Files created by service are accessible only by service's own user by default\n\n"
            "→ Overall exposure level for hearth-synapse.service: 1.2 OK :-)\n")
    assert exposure(text) == 1.2
    assert exposure("→ Overall exposure level for x.service: 9.6 UNSAFE :-{") == 9.6
    assert exposure("Unit x.service not found.") is None
