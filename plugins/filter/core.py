# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the collection's core models to playbooks.

The topology has no filter: the action hearth.matrix.stack computes it from the user's
hearth_* variables, so that its errors name those variables.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    SpecError,
    container_spec_from_dict,
    create_argv,
)


def container_argv(container: Mapping[str, Any], name: str, engine: str = "docker", engine_path: str = "") -> List[str]:
    """The <engine> create argv for a container spec."""
    try:
        spec = container_spec_from_dict(name, container)
        return create_argv(spec, engine, engine_path or "/usr/bin/%s" % engine)
    except SpecError as error:
        raise AnsibleFilterError("hearth.matrix.container_argv: %s" % error) from error


class FilterModule:
    """hearth.matrix core filters."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"container_argv": container_argv}
