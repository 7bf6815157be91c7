# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of hearth.matrix.self_check.

The outside checks run here, on the controller, as a client or another homeserver would reach
the stack; the module of the same name reads the units' and containers' states on the host.
The result is one report. The task itself fails only when it cannot check at all (bad
arguments, host unreachable): whether the stack is healthy is the report's verdict, which the
playbook prints and then turns into a failure naming each failed check.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.hearth.matrix.plugins.module_utils.self_check import (
    FAIL,
    Options,
    Prober,
    parse_port_map,
    plan_from_topology,
    report,
    run_checks,
    service_results,
)

_OPTIONS = ("topology", "engine", "https_port", "connect_address", "port_map", "ca_file",
            "expiry_warn_days", "timeout")


def _int(args: Dict[str, Any], name: str, default: int) -> int:
    value = args.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError("%s must be a number, got %r" % (name, value)) from None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_OPTIONS)

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result["changed"] = False
        args = dict(self._task.args)
        try:
            topology = args.get("topology")
            if not isinstance(topology, dict) or "matrix_hostname" not in topology:
                raise ValueError("topology must be hearth_topology (from hearth.matrix.stack)")
            options = Options(connect_address=str(args.get("connect_address") or ""),
                              port_map=parse_port_map(args.get("port_map")),
                              ca_file=str(args.get("ca_file") or ""),
                              timeout=float(args.get("timeout", 10)),
                              expiry_warn_days=_int(args, "expiry_warn_days", 30))
            plan = plan_from_topology(topology, _int(args, "https_port", 443))
        except (TypeError, ValueError) as error:
            result.update(failed=True, msg=str(error))
            return result

        host = self._execute_module(module_name="hearth.matrix.self_check", module_args=args, task_vars=task_vars)
        if host.get("failed") or host.get("unreachable"):
            host.pop("invocation", None)
            result.update(host)
            return result

        prober = Prober(options)
        trust = options.ca_file or "the system's CA store"
        checks = run_checks(plan, prober.fetch, prober.tls, time.time(), options.expiry_warn_days, trust)
        checks += service_results(host.get("services") or {})
        result.update(
            report=report(checks),
            checks=[{"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in checks],
            failed_checks=[c.name for c in checks if c.status == FAIL],
            services=host.get("services") or {},
        )
        return result
