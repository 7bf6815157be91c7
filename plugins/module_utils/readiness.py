# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness probes run from the host, against a container's fixed address.

A unit becomes active only once its service answers (ExecStartPost=). Probing with
``<engine> exec <container> <health command>`` costs an engine client, an exec session and
often an interpreter in the container (Synapse's health command is Python) for every
attempt. When a whole stack starts at once on a small host, those probes compete for the
CPU with the services they wait for: measured on the 2-core test bed (podman, other work
running), the summed downtime of a whole-stack restart fell by a fifth to a third with one
host-side probe process per unit that polls every 0.1 s.

So where the host can reach the container (rootful engines: the stack network is a bridge
on the host, every component has a fixed address on it; unit.py says which engines), the
unit runs ONE Python process
(the host's own python3, which Ansible needs anyway) that polls the service itself:

* ``tcp``: the port accepts a connection (nginx, exim: they listen once configured; Synapse
  opens its listener only at the end of its start-up);
* ``http``: a request for ``path`` gets a status below 500;
* ``postgres``: a startup message gets an authentication request or any error but
  57P03 ("the database system is starting up"), which is what pg_isready checks.

The container's own health command stays the engine's health check (status, self-check).

A docker unit's own processes run without network (unit.py, DOCKER_CLIENT_SANDBOX: an empty
network namespace). Its probe is given the host's network namespace (``netns``, PID 1's) and
joins it before probing; systemd starts it with full privileges ("+"), which setns needs.
"""

from __future__ import annotations

from typing import List

from ansible_collections.hearth.matrix.plugins.module_utils.container import Probe


POLL_SECONDS = 0.1


# The host's network namespace, for a probe started inside a unit without network.
HOST_NETNS = "/proc/1/ns/net"

# The probe program: argv = address port kind argument database timeout [netns]. Kept free
# of anything but the standard library; MAINPID (exported by systemd to ExecStartPost=)
# ends the wait when the container's process is gone.
PROBE_SOURCE = """\
import os, socket, struct, sys, time
host, port, kind, arg, db, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
if len(sys.argv) > 7:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(os.open(sys.argv[7], os.O_RDONLY), 0x40000000) != 0:
        sys.exit('cannot join %s: %s' % (sys.argv[7], os.strerror(ctypes.get_errno())))
def ready():
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            if kind == 'http':
                s.sendall(('GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' % (arg, host)).encode())
                status = s.recv(64).split(b' ')
                return len(status) > 1 and status[1].isdigit() and int(status[1]) < 500
            if kind == 'postgres':
                body = b'user\\0' + arg.encode() + b'\\0database\\0' + db.encode() + b'\\0\\0'
                s.sendall(struct.pack('!ii', 8 + len(body), 196608) + body)
                first = s.recv(1)
                return first == b'R' or (first == b'E' and b'C57P03' not in s.recv(4096))
            return True
    except OSError:
        return False
deadline = time.monotonic() + limit
pid = os.environ.get('MAINPID', '')
while not ready():
    if pid and not os.path.exists('/proc/' + pid):
        sys.exit('exited before it was ready')
    if time.monotonic() > deadline:
        sys.exit('not ready after %ds' % limit)
    time.sleep(POLL)
""".replace("POLL", repr(POLL_SECONDS))


def probe_argv(python: str, address: str, probe: Probe, timeout: int, netns: str = "") -> List[str]:
    """The ExecStartPost= argv that waits until ``probe`` succeeds at ``address``, from the
    network namespace ``netns`` when given (the caller's own otherwise)."""
    argument = probe.path if probe.kind == "http" else probe.user
    return [python, "-c", PROBE_SOURCE, address, str(probe.port), probe.kind, argument or "-",
            probe.database or "-", str(timeout)] + ([netns] if netns else [])
