# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth.matrix.stack: check the stack variables and compute the topology, on the controller.

Nothing runs on the host: one task replaces a dozen Jinja asserts and a filter call, and its
failure is one line naming the user's hearth_* variable (module_utils/stack.py).

Which components run comes from the ``enabled`` option or, without it, from the play's
``hearth_<component>_enabled`` variables for every component the topology knows: a new
component needs no new line in the playbooks.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.hearth.matrix.plugins.module_utils.stack import (
    OPTIONS,
    PREFIX,
    StackVariableError,
    check_stack,
)
from ansible_collections.hearth.matrix.plugins.module_utils.role_vars import beyond_defaults
from ansible_collections.hearth.matrix.plugins.module_utils.topology import COMPONENTS
from ansible_collections.hearth.matrix.plugins.plugin_utils.role_defaults import role_defaults
from ansible_collections.hearth.matrix.plugins.plugin_utils.variables import play_variable

_FLAG_OPTIONS = frozenset("%s_enabled" % name for name in COMPONENTS)


class ActionModule(ActionBase):
    """Controller-only: no connection, no module transfer."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(set(OPTIONS) - _FLAG_OPTIONS) | {"enabled"}
    _requires_connection = False

    def _flags(self, task_vars: Mapping[str, Any]) -> Dict[str, Any]:
        """``<component>_enabled`` options from ``enabled`` or the hearth_*_enabled variables."""
        enabled = self._task.args.get("enabled")
        if enabled is None:
            flags: Dict[str, Any] = {}
            for name in COMPONENTS:
                variable = "%s%s_enabled" % (PREFIX, name)
                if variable in task_vars:
                    flags["%s_enabled" % name] = play_variable(self._templar, task_vars, variable)
            return flags
        if not isinstance(enabled, Mapping):
            raise StackVariableError("enabled", "must map component names to true or false, got %r" % (enabled,))
        unknown = sorted(set(enabled) - set(COMPONENTS))
        if unknown:
            raise StackVariableError("enabled.%s" % unknown[0], "is not a component (known: %s)" % ", ".join(COMPONENTS))
        return {"%s_enabled" % name: value for name, value in enabled.items()}

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        result["changed"] = False
        try:
            args = {key: value for key, value in self._task.args.items() if key != "enabled"}
            args.update(self._flags(task_vars or {}))
            topology = check_stack(args)
        except StackVariableError as error:
            result.update(failed=True, msg=str(error))
            return result
        # What the playbooks set for the roles: not what the user set, nor a role's own default.
        topology["role_vars_to_set"] = beyond_defaults(topology["role_vars"], task_vars or {}, role_defaults())
        result["ansible_facts"] = {"hearth_topology": topology}
        return result
