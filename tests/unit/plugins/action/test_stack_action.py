# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hearth.matrix.stack action: the fact on success, one line naming the variable on failure."""

from __future__ import annotations

from typing import Any, Dict
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible_collections.hearth.matrix.plugins.action.stack import ActionModule
from ansible_collections.hearth.matrix.plugins.module_utils.stack import check_stack


def run_action(args: Dict[str, Any]) -> Dict[str, Any]:
    task = MagicMock(args=args, async_val=0, check_mode=False, action="hearth.matrix.stack")
    connection = MagicMock()
    connection._shell.tmpdir = None  # pylint: disable=protected-access
    action = ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    return action.run(task_vars={})


def test_success_sets_the_topology_fact_and_changes_nothing() -> None:
    args = {"server_name": "example.org", "mailer_enabled": "yes"}
    result = run_action(args)
    assert not result.get("failed")
    assert result["changed"] is False
    assert result["ansible_facts"]["hearth_topology"] == check_stack(args)
    assert result["ansible_facts"]["hearth_topology"]["enabled"]["mailer"] is True


@pytest.mark.parametrize("args, message", [
    ({"server_name": "example.org", "mailer_sender": "x"}, "hearth_mailer_sender must be an email address, got 'x'"),
    ({}, "hearth_server_name is required: the Matrix server name, e.g. example.org"),
    ({"server_name": "example.org", "corporal_enabled": True, "nginx_proxy_enabled": False},
     "hearth_corporal_enabled needs hearth_nginx_proxy_enabled: corporal only enforces its policy "
     "when the proxy sends the client API through it"),
])
def test_failure_is_one_line_naming_the_variable(args: Dict[str, Any], message: str) -> None:
    result = run_action(args)
    assert result["failed"] is True
    assert result["msg"] == message
    assert "ansible_facts" not in result


def test_the_database_password_never_appears_in_the_result() -> None:
    args = {"server_name": "example.org", "postgres_enabled": False, "external_database_password": "s3cret-pw",
            "external_database": {"host": "db", "name": "synapse", "user": "synapse", "port": 0}}
    result = run_action(args)
    assert result["msg"].startswith("hearth_external_database.port ")
    assert "s3cret-pw" not in repr(result)


def test_unknown_option_is_refused_by_ansible() -> None:
    with pytest.raises(AnsibleActionFail, match="Invalid options for hearth.matrix.stack: hearth_server_name"):
        run_action({"hearth_server_name": "example.org"})
