# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self_check module on the host: reads states, changes nothing, also in check mode."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import self_check
from ansible_collections.hearth.matrix.plugins.module_utils.topology import compute_topology
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

TOPOLOGY = compute_topology({"server_name": "example.org",
                             "components": {"postgres": True, "synapse": True, "nginx_proxy": True}})


def _bin(_module: basic.AnsibleModule, name: str, required: bool = False, opt_dirs: Optional[List[str]] = None) -> Optional[str]:
    return {"systemctl": "/bin/systemctl", "podman": "/usr/bin/podman"}.get(name)


def _run(_module: basic.AnsibleModule, args: List[str], **_kwargs: Any) -> Tuple[int, str, str]:
    if args[1] == "is-active":
        return 0, "active\n" * (len(args) - 3), ""
    if args[1:3] == ["container", "inspect"]:
        return 0, json.dumps([{"Config": {}, "State": {"Running": True}}] * (len(args) - 3)), ""
    raise AssertionError("unexpected command %s" % args)


@pytest.mark.parametrize("check_mode", [False, True])
def test_reads_every_service(check_mode: bool) -> None:
    with mock.patch.object(basic.AnsibleModule, "get_bin_path", _bin), mock.patch.object(basic.AnsibleModule, "run_command", _run):
        result = run_module(self_check.main, {"topology": TOPOLOGY, "engine": "podman"}, check_mode=check_mode)
    assert result["changed"] is False and not result["failed"]
    assert list(result["services"]) == TOPOLOGY["start_order"]
    assert set(TOPOLOGY["start_order"]) == {"hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"}
    assert all(s["active"] == "active" and s["running"] for s in result["services"].values())


def test_missing_engine_fails_naming_it() -> None:
    with mock.patch.object(basic.AnsibleModule, "get_bin_path", _bin):
        result = run_module(self_check.main, {"topology": TOPOLOGY, "engine": "docker"})
    assert result["failed"] and result["msg"] == "engine: docker is not installed on the host"
