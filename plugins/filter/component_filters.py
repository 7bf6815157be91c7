# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for component specs: secret_ref (a host secret by path) and publish (port mappings)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.module_utils.component import secret_ref as _secret_ref
from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError


def secret_ref(path: str) -> str:
    """The marker hearth.matrix.component replaces, on the host, by the secret stored at path."""
    try:
        return _secret_ref(path)
    except SpecError as error:
        raise AnsibleFilterError("hearth.matrix.secret_ref: %s" % error.message) from error


def publish(addresses: Sequence[str], pairs: Sequence[Sequence[int]], protocol: str = "tcp") -> List[Dict[str, Any]]:
    """Port mappings for every address and every (host port, container port) pair."""
    if isinstance(addresses, str) or not isinstance(addresses, Sequence):
        raise AnsibleFilterError("hearth.matrix.publish: the input must be a list of addresses, got %r" % (addresses,))
    if isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise AnsibleFilterError("hearth.matrix.publish: each pair must be [host_port, container_port], in a list, got %r"
                                 % (pairs,))
    result: List[Dict[str, Any]] = []
    for address in addresses:
        for pair in pairs:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise AnsibleFilterError("hearth.matrix.publish: each pair must be [host_port, container_port], got %r"
                                         % (pair,))
            result.append({"host_address": address, "host_port": pair[0], "container_port": pair[1],
                           "protocol": protocol})
    return result


class FilterModule:
    """hearth.matrix filters for component specs."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"secret_ref": secret_ref, "publish": publish}
