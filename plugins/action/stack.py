# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth.matrix.stack: check the stack variables and compute the topology, on the controller.

Nothing runs on the host: one task replaces a dozen Jinja asserts and a filter call, and its
failure is one line naming the user's hearth_* variable (module_utils/stack.py).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.hearth.matrix.plugins.module_utils.stack import OPTIONS, StackVariableError, check_stack


class ActionModule(ActionBase):
    """Controller-only: no connection, no module transfer."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(OPTIONS)
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        result["changed"] = False
        try:
            topology = check_stack(self._task.args)
        except StackVariableError as error:
            result.update(failed=True, msg=str(error))
            return result
        result["ansible_facts"] = {"hearth_topology": topology}
        return result
