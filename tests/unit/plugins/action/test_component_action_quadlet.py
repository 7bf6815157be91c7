# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hearth.matrix.component action and hearth_podman_quadlet: podman only, named on failure."""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from unittest.mock import MagicMock

import pytest

from ansible_collections.hearth.matrix.plugins.action.component import ActionModule


def run_action(components: List[Dict[str, Any]], task_vars: Dict[str, Any]) -> Dict[str, Any]:
    task = MagicMock(args={"components": components}, async_val=0, check_mode=False, action="hearth.matrix.component")
    connection = MagicMock()
    connection._shell.tmpdir = None  # pylint: disable=protected-access
    templar = MagicMock(spec=["template"])
    templar.template.side_effect = lambda value: value
    action = ActionModule(task, connection, MagicMock(), MagicMock(), templar, MagicMock())
    sent: Dict[str, Any] = {}

    def execute_module(module_name: str, module_args: Dict[str, Any], task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        sent.update(module_args)
        return {"changed": False}

    action._execute_module = execute_module  # type: ignore[method-assign]  # pylint: disable=protected-access
    result = action.run(task_vars=task_vars)
    result["sent"] = sent
    return result


SERVICE = {"name": "hearth-synapse", "state": "absent", "engine": "podman"}


def test_quadlet_marks_every_component() -> None:
    result = run_action([SERVICE], {"hearth_podman_quadlet": True})
    assert not result.get("failed"), result.get("msg")
    assert result["sent"]["components"] == [dict(SERVICE, quadlet=True)]


@pytest.mark.parametrize("variables", [{}, {"hearth_podman_quadlet": False}, {"hearth_podman_quadlet": "no"}])
def test_without_quadlet_nothing_changes(variables: Dict[str, Any]) -> None:
    assert run_action([SERVICE], variables)["sent"]["components"] == [SERVICE]


@pytest.mark.parametrize("value, message", [
    (True, "hearth_podman_quadlet needs the podman engine (Quadlet is podman's unit format), the engine here is "
           "docker: set it to false or use podman"),
    ("maybe", "hearth_podman_quadlet must be true or false"),
])
def test_docker_or_a_bad_value_is_refused_naming_the_variable(value: Any, message: str) -> None:
    result = run_action([dict(SERVICE, engine="docker")], {"hearth_podman_quadlet": value})
    assert result["failed"] is True and result["msg"] == message and not result["sent"]
