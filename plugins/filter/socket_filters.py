# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter socket_activation: what a socket-activated container's own config must say."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.module_utils.socket_activation import activated, fd_list, listen_address


def socket_activation(ports: Sequence[Mapping[str, Any]], engine: str, port_start: Optional[int] = None) -> Dict[str, Any]:
    """``activated``; ``fds``, the inherited fd list ("3;4;5;", ports in order); ``listens``,
    per container port the addresses to listen on: the host's when activated (the inherited
    sockets' own), else the container port alone."""
    if isinstance(ports, (str, Mapping)) or not isinstance(ports, Sequence):
        raise AnsibleFilterError("hearth.matrix.socket_activation: the input must be a list of port mappings, got %r"
                                 % (ports,))
    try:
        pairs = [(str(p.get("host_address", "0.0.0.0")), int(p["host_port"]), int(p["container_port"])) for p in ports]
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise AnsibleFilterError("hearth.matrix.socket_activation: each mapping needs host_port and container_port, "
                                 "got %r" % (ports,)) from error
    start = None if port_start in (None, "") else int(port_start)
    on = activated(str(engine), [host for _a, host, _c in pairs], start)
    listens: Dict[int, List[str]] = {}
    for address, host, container in pairs:
        listens.setdefault(container, [])
        if on:
            listens[container].append(listen_address(address, host))
        elif str(container) not in listens[container]:
            listens[container].append(str(container))
    return {"activated": on, "fds": fd_list(len(pairs)) if on else "", "listens": listens}


class FilterModule:
    """hearth.matrix filter for socket activation."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"socket_activation": socket_activation}
