# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret_ref filter: name a host secret in a config file without its value."""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.module_utils.component import secret_ref as _secret_ref
from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError


def secret_ref(path: str) -> str:
    """The marker hearth.matrix.component replaces, on the host, by the secret stored at path."""
    try:
        return _secret_ref(path)
    except SpecError as error:
        raise AnsibleFilterError("hearth.matrix.secret_ref: %s" % error.message) from error


class FilterModule:
    """hearth.matrix secret_ref filter."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"secret_ref": secret_ref}
