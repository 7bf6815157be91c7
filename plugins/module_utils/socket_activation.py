# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Low ports for a rootless container by systemd socket activation, as pure functions.

A rootless engine cannot bind a port below ``net.ipv4.ip_unprivileged_port_start`` (1024
unless the host-wide opt-in lowers it). Instead, PID 1 binds them: a system ``.socket`` unit
listens on every published host address and port, and starts a system ``.service`` that runs
the service user's rootless podman (``User=``). systemd passes the listening sockets to the
service's main process (LISTEN_FDS, fds 3, 4, ... in ListenStream order); ``podman start``
hands them on into the container (conmon's preserved fds), where nginx adopts the ones
named in its ``NGINX`` variable ("3;4;5;") when a ``listen`` directive has the same address.

A connection accepted on a socket of the host's network namespace carries the client's
own address: no rootlessport (or slirp4netns port handler) sits in the path, so nginx,
and Synapse behind it (X-Forwarded-For), see the real client instead of the proxy's address.

The service is a system unit because only a system ``.socket`` may bind a low port, and a
``.socket`` activates a service of its own manager only. It still runs nothing as root:
``User=`` is the service user, with the environment its rootless podman needs; the sockets
are held by PID 1.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple


# The first fd systemd passes (SD_LISTEN_FDS_START).
FIRST_FD = 3
SYSTEM_UNIT_DIR = "/etc/systemd/system"
MARKER = "# Managed by hearth.matrix (component); local edits are overwritten."


def activated(engine: str, host_ports: Sequence[int], port_start: Optional[int]) -> bool:
    """Socket activation: rootless podman publishes a port it may not bind and the host-wide
    opt-in (hearth_rootless_unprivileged_port_start) is not set. Not rootless docker: its
    client only asks dockerd to create the container, so no inherited fd reaches it."""
    return (engine == "podman_rootless" and port_start is None
            and any(int(port) < 1024 for port in host_ports))


def listen_address(address: str, port: int) -> str:
    """``address:port`` as systemd's ListenStream= and nginx's listen both read it."""
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, int(port))


def fd_list(count: int) -> str:
    """nginx's NGINX variable for ``count`` inherited sockets: "3;4;5;"."""
    return "".join("%d;" % fd for fd in range(FIRST_FD, FIRST_FD + count))


def socket_name(service: str) -> str:
    return service + ".socket"


def render_socket(service: str, description: str, listens: Sequence[Tuple[str, int]]) -> str:
    """The .socket unit: one ListenStream= per published (address, port), in order (the
    container's fd list follows this order)."""
    lines = [MARKER, "[Unit]", "Description=%s (listening sockets)" % description, "", "[Socket]"]
    lines += ["ListenStream=%s" % listen_address(address, port) for address, port in listens]
    # IPv4 and IPv6 sockets exactly as listed: nginx matches each by its own address.
    lines += ["BindIPv6Only=ipv6-only", "Service=%s.service" % service, "", "[Install]",
              "WantedBy=sockets.target", ""]
    return "\n".join(lines)


def system_unit(user_unit: str, user: str, uid: int, home: str, service: str) -> str:
    """The service's unit as rendered for the user's systemd instance, turned into a system
    unit that runs as the service user: after the user's manager (its runtime dir and the
    engine's network namespace), bound to its sockets, started at boot by multi-user.target."""
    manager = "user@%d.service" % uid
    out = []
    for line in user_unit.splitlines():
        if line.startswith("After="):
            out.append(line + " %s %s" % (manager, socket_name(service)))
            out.append("Requires=%s %s" % (manager, socket_name(service)))
            continue
        if line == "WantedBy=default.target":
            out.append("WantedBy=multi-user.target")
            continue
        out.append(line)
        if line == "Type=simple":
            # The environment rootless podman needs (run_as_argv gives the same to the module).
            out += ["User=%s" % user, "WorkingDirectory=%s" % home,
                    "Environment=HOME=%s XDG_RUNTIME_DIR=/run/user/%d" % (home, uid)]
    return "\n".join(out) + ("\n" if user_unit.endswith("\n") else "")
