# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the play's variables from an action plugin (controller side only)."""

from __future__ import annotations

from typing import Any, Mapping


def play_variable(templar: Any, task_vars: Mapping[str, Any], name: str) -> Any:
    """A variable of the play, templated, on ansible-core 2.19 and older.

    2.19 resolves an expression lazily (resolve_variable_expression); older versions hand
    the raw value, which may itself hold Jinja, to the templar.
    """
    resolve = getattr(templar, "resolve_variable_expression", None)
    if resolve is not None:
        return resolve(name)
    return templar.template(task_vars[name])
