# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restarts and downtime read from systemd's timestamps."""

from __future__ import annotations

import pytest

from benchlib.services import UnitState, all_active, outage, parse_show, restarted, show_argv

SHOW = """Id=hearth-postgres.service
ActiveState=active
InvocationID=aaa
ActiveEnterTimestampMonotonic=12000000
ActiveExitTimestampMonotonic=10500000

Id=hearth-synapse.service
ActiveState=activating
InvocationID=bbb
ActiveEnterTimestampMonotonic=0
ActiveExitTimestampMonotonic=0
"""


def unit(name: str, invocation: str = "x", state: str = "active", enter: float = 0.0, leave: float = 0.0) -> UnitState:
    return UnitState(unit=name, active_state=state, invocation_id=invocation, active_enter=enter, active_exit=leave)


def test_parse_show_reads_every_block_in_seconds() -> None:
    states = parse_show(SHOW)
    assert sorted(states) == ["hearth-postgres.service", "hearth-synapse.service"]
    postgres = states["hearth-postgres.service"]
    assert (postgres.active_state, postgres.invocation_id) == ("active", "aaa")
    assert (postgres.active_enter, postgres.active_exit) == (12.0, 10.5)
    assert states["hearth-synapse.service"].active_enter == 0.0


def test_parse_show_refuses_a_block_without_a_property() -> None:
    with pytest.raises(ValueError, match="hearth-x.service lacks InvocationID"):
        parse_show("Id=hearth-x.service\nActiveState=active\nActiveEnterTimestampMonotonic=1\n"
                   "ActiveExitTimestampMonotonic=0\n")


def test_show_argv_asks_for_exactly_the_parsed_properties() -> None:
    argv = show_argv(["a.service"])
    assert argv[:3] == ["systemctl", "show", "-p"]
    assert set(argv[3].split(",")) == {"Id", "ActiveState", "InvocationID", "ActiveEnterTimestampMonotonic",
                                       "ActiveExitTimestampMonotonic"}
    assert argv[-2:] == ["--", "a.service"]


def test_restarted_names_new_invocations_and_units_that_came_or_went() -> None:
    before = {"a": unit("a", "1"), "b": unit("b", "2"), "gone": unit("gone", "3")}
    after = {"a": unit("a", "1"), "b": unit("b", "9"), "new": unit("new", "4")}
    assert restarted(before, after) == ["b", "gone", "new"]
    assert restarted(before, dict(before)) == []


def test_all_active_needs_every_unit_present_and_active() -> None:
    states = {"a": unit("a"), "b": unit("b", state="activating")}
    assert all_active(states, ["a"])
    assert not all_active(states, ["a", "b"])
    assert not all_active(states, ["a", "missing"])


def test_outage_from_each_units_own_stop_time() -> None:
    after = {"a": unit("a", enter=105.0, leave=101.0), "b": unit("b", enter=108.0, leave=100.5)}
    down = outage(after, ["a", "b"], since=100.0)
    assert down.per_unit == {"a": 4.0, "b": 7.5}
    assert down.summed == 11.5
    assert down.all_healthy_after == 8.0


def test_outage_after_a_reboot_counts_from_the_given_moment() -> None:
    after = {"a": unit("a", enter=130.0), "b": unit("b", enter=125.0)}
    down = outage(after, ["a", "b"], since=100.0, down_from=100.0)
    assert down.per_unit == {"a": 30.0, "b": 25.0}
    assert down.all_healthy_after == 30.0


def test_outage_refuses_a_unit_that_was_not_restarted() -> None:
    with pytest.raises(ValueError, match="a was not"):
        outage({"a": unit("a", enter=90.0, leave=80.0)}, ["a"], since=100.0)
    with pytest.raises(ValueError, match="b has no stop time"):
        outage({"b": unit("b", enter=110.0, leave=0.0)}, ["b"], since=100.0)
