# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self_check action: outside checks plus the module's answer make one report."""

from __future__ import annotations

from typing import Any, Dict
from unittest import mock
from unittest.mock import MagicMock

from ansible_collections.hearth.matrix.plugins.action import self_check as action
from ansible_collections.hearth.matrix.plugins.module_utils import self_check as sc
from ansible_collections.hearth.matrix.plugins.module_utils.topology import compute_topology

TOPOLOGY = compute_topology({"server_name": "example.org",
                             "components": {"postgres": True, "synapse": True, "nginx_proxy": True}})


def run_action(args: Dict[str, Any], host: Dict[str, Any]) -> Dict[str, Any]:
    task = MagicMock(args=args, async_val=0, check_mode=True, action="hearth.matrix.self_check")
    connection = MagicMock()
    connection._shell.tmpdir = None  # pylint: disable=protected-access
    plugin = action.ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    with mock.patch.object(plugin, "_execute_module", return_value=host) as execute, \
            mock.patch.object(sc.Prober, "fetch", return_value=sc.HttpAnswer(error="refused")), \
            mock.patch.object(sc.Prober, "tls", return_value=sc.TlsAnswer(error="refused")):
        result = plugin.run(task_vars={})
    result["_module_called"] = execute.called
    return result


def test_report_names_each_failure_and_the_task_does_not_fail() -> None:
    host = {"services": {"hearth-synapse": {"active": "inactive"}, "hearth-postgres": {"active": "active"}}}
    result = run_action({"topology": TOPOLOGY, "engine": "podman", "port_map": {"443": 10443}}, host)
    assert not result.get("failed") and result["changed"] is False
    assert "service hearth-synapse" in result["failed_checks"]
    assert "service hearth-postgres" not in result["failed_checks"]
    assert "client API versions" in result["failed_checks"]
    assert result["report"][-1].startswith("%d checks: %d failed" % (len(result["checks"]), len(result["failed_checks"])))


def test_bad_arguments_fail_before_the_host() -> None:
    result = run_action({"topology": {}}, {})
    assert result["failed"] and "hearth_topology" in result["msg"] and not result["_module_called"]
    result = run_action({"topology": TOPOLOGY, "port_map": {"x": 1}}, {})
    assert result["failed"] and "port_map" in result["msg"] and not result["_module_called"]


def test_host_failure_is_passed_on() -> None:
    result = run_action({"topology": TOPOLOGY}, {"failed": True, "msg": "engine: docker is not installed on the host"})
    assert result["failed"] and result["msg"] == "engine: docker is not installed on the host"
