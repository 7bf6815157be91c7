# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hearth.matrix.stack action: the fact on success, one line naming the variable on failure."""

from __future__ import annotations

from typing import Any, Dict, Optional
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible_collections.hearth.matrix.plugins.action.stack import ActionModule
from ansible_collections.hearth.matrix.plugins.module_utils.stack import check_stack


def run_action(args: Dict[str, Any], task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    task = MagicMock(args=args, async_val=0, check_mode=False, action="hearth.matrix.stack")
    connection = MagicMock()
    connection._shell.tmpdir = None  # pylint: disable=protected-access
    # A templar of ansible-core <= 2.18 (no resolve_variable_expression); the variables
    # given here hold no Jinja.
    templar = MagicMock(spec=["template"])
    templar.template.side_effect = lambda value: value
    action = ActionModule(task, connection, MagicMock(), MagicMock(), templar, MagicMock())
    return action.run(task_vars=task_vars or {})


def test_success_sets_the_topology_fact_and_changes_nothing() -> None:
    result = run_action({"server_name": "example.org", "enabled": {"mailer": "yes"}})
    assert not result.get("failed")
    assert result["changed"] is False
    topology = dict(result["ansible_facts"]["hearth_topology"])
    to_set = topology.pop("role_vars_to_set")
    assert topology == check_stack({"server_name": "example.org", "mailer_enabled": "yes"})
    assert topology["enabled"]["mailer"] is True
    # What the playbooks set: a part of role_vars, never what equals a role's own default.
    assert to_set and set(to_set) < set(topology["role_vars"])
    assert "postgres_engine" not in to_set and "synapse_server_name" in to_set


def test_role_vars_the_user_set_are_left_to_the_user() -> None:
    result = run_action({"server_name": "example.org"}, {"synapse_server_name": "mine.example.org"})
    to_set = result["ansible_facts"]["hearth_topology"]["role_vars_to_set"]
    assert "synapse_server_name" not in to_set and "synapse_public_baseurl" in to_set


def test_components_come_from_the_hearth_enabled_variables_without_the_option() -> None:
    variables = {"hearth_mailer_enabled": "yes", "hearth_element_enabled": True, "hearth_postgres_enabled": False,
                 "hearth_external_database_password": "unused-here", "hearth_unrelated_enabled": True}
    result = run_action({"server_name": "example.org", "external_database_password": "pw",
                         "external_database": {"host": "db", "name": "synapse", "user": "synapse"}}, variables)
    assert not result.get("failed"), result.get("msg")
    enabled = result["ansible_facts"]["hearth_topology"]["enabled"]
    assert enabled["mailer"] is True and enabled["element"] is True and enabled["postgres"] is False
    assert enabled["identity"] is False  # not set: its default


def test_a_bad_enabled_variable_is_named() -> None:
    result = run_action({"server_name": "example.org"}, {"hearth_identity_enabled": "maybe"})
    assert result["failed"] is True
    assert result["msg"] == "hearth_identity_enabled must be true or false, got 'maybe'"


@pytest.mark.parametrize("enabled, message", [
    ({"mailr": True}, "enabled.mailr is not a component (known: postgres, mailer, synapse, identity, corporal, element, nginx_proxy)"),
    (["mailer"], "enabled must map component names to true or false, got ['mailer']"),
])
def test_a_bad_enabled_option_is_named(enabled: Any, message: str) -> None:
    result = run_action({"server_name": "example.org", "enabled": enabled})
    assert result["failed"] is True and result["msg"] == message


@pytest.mark.parametrize("args, message", [
    ({"server_name": "example.org", "mailer_sender": "x"}, "hearth_mailer_sender must be an email address, got 'x'"),
    ({}, "hearth_server_name is required: the Matrix server name, e.g. example.org"),
    ({"server_name": "example.org", "enabled": {"corporal": True, "nginx_proxy": False}},
     "hearth_corporal_enabled needs hearth_nginx_proxy_enabled: corporal only enforces its policy "
     "when the proxy sends the client API through it"),
])
def test_failure_is_one_line_naming_the_variable(args: Dict[str, Any], message: str) -> None:
    result = run_action(args)
    assert result["failed"] is True
    assert result["msg"] == message
    assert "ansible_facts" not in result


def test_the_database_password_never_appears_in_the_result() -> None:
    args = {"server_name": "example.org", "enabled": {"postgres": False}, "external_database_password": "s3cret-pw",
            "external_database": {"host": "db", "name": "synapse", "user": "synapse", "port": 0}}
    result = run_action(args)
    assert result["msg"].startswith("hearth_external_database.port ")
    assert "s3cret-pw" not in repr(result)


def test_unknown_option_is_refused_by_ansible() -> None:
    with pytest.raises(AnsibleActionFail, match="Invalid options for hearth.matrix.stack: hearth_server_name"):
        run_action({"hearth_server_name": "example.org"})
