# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth_engine: podman_rootless on the Debian 12 target (base stack), one target.

Runs on the podman target only: the mode is podman's, docker adds nothing. The tests run in
file order on one target: bad input first (nothing may change), then the converge and the
checks that build on it (round trip, hardening and host owners, re-run, kill, reboot).

The bed's /dev/net/tun and /dev/fuse are made 0666 by the target image (a real Debian host's
udev does the same). The proxy's low ports are socket-activated (the default: no
hearth_rootless_unprivileged_port_start), so the host's sysctl stays at the kernel's 1024 and
the proxy is a system unit run as the service user; the other services are user units.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from typing import Dict, Iterator, List

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, BASE_VARS, BedTarget, Stack, \
    converged_stack, target_factory
from harness import LoopbackNames, run_playbook, PLAYBOOKS, ssl_context, wait_for
from matrix_client import messages_in, round_trip

pytestmark = pytest.mark.skipif("podman" not in ENGINES, reason="podman_rootless needs the podman target")

CONTAINERS = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
USER = "hearth"
ROOTLESS = {"hearth_engine": "podman_rootless"}
PROXY = "hearth-nginx-proxy"
PROXY_ADDRESS = "10.89.91.140"   # the proxy container's own address on the stack network
_memory: Dict[str, str] = {}


@pytest.fixture(scope="module")
def rootless_target(bed_images: Dict[str, object]) -> Iterator[BedTarget]:
    # Only the base stack's images: the first converge copies each into the user's store.
    with target_factory("podman", "rootless", components=["postgres", "synapse", "nginx"]) as bed_target:
        yield bed_target


@pytest.fixture(scope="module")
def rootless_stack(rootless_target: BedTarget) -> Stack:
    return converged_stack(rootless_target, ROOTLESS)


def _as_user(bed: BedTarget, command: str, check: bool = True) -> str:
    """A command as the service user, with its engine and systemd instance."""
    _rc, out = bed.sh("cd /var/lib/%s && runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/$(id -u %s) HOME=/var/lib/%s %s"
                      % (USER, USER, USER, USER, command), check=check)
    return out


def _round_trip(stack: Stack):
    with LoopbackNames([MATRIX_HOSTNAME, SERVER_NAME]):
        return round_trip(stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                          ssl_context(stack.ca_file))


def _started_at(stack: Stack, container: str) -> str:
    return _as_user(stack.bed, "podman inspect --format '{{.State.StartedAt}}' %s" % container).strip()


def test_bad_input_names_the_variable_before_any_change(rootless_target: BedTarget) -> None:
    """An unknown or unbuilt mode, and a service user without a subordinate range: one line
    naming the variable, and nothing on the host changed (no base dir, no linger, no range)."""
    base = dict(BASE_VARS)
    for engine in ("podman-rootless", "lxc"):
        run = run_playbook(rootless_target.inventory, PLAYBOOKS / "site.yml", dict(base, hearth_engine=engine))
        assert run.rc != 0 and "hearth_engine" in run.output and engine in run.output, run.tail(30)
    rootless_target.sh("useradd --system --create-home --home-dir /var/lib/%s %s && sed -i '/^%s:/d' /etc/subuid /etc/subgid"
                       % (USER, USER, USER))
    try:
        run = run_playbook(rootless_target.inventory, PLAYBOOKS / "site.yml", dict(base, **ROOTLESS))
        assert run.rc != 0, run.tail(30)
        lines = [line for line in run.output.splitlines() if "hearth_rootless_user: user %s has no range" % USER in line]
        assert lines, run.tail(30)
        rc, out = rootless_target.sh("ls /opt/hearth-matrix /var/lib/systemd/linger/%s" % USER, check=False)
        assert rc != 0 and "No such file" in out, out
    finally:
        rootless_target.sh("userdel --remove %s" % USER)


def test_check_mode_before_the_user_exists_changes_nothing(rootless_target: BedTarget) -> None:
    """--check --diff of a first rootless deployment: succeeds and reports changes, while no
    user, no linger, no base directory and no unit appear."""
    run = run_playbook(rootless_target.inventory, PLAYBOOKS / "site.yml", dict(BASE_VARS, **ROOTLESS),
                       args=["--check", "--diff"])
    assert run.rc == 0 and run.changed > 0, run.tail(40)
    rc, out = rootless_target.sh("id %s; ls /opt/hearth-matrix /var/lib/systemd/linger/%s /etc/systemd/system/%s.socket"
                                 % (USER, USER, PROXY), check=False)
    assert rc != 0 and "no such user" in out and out.count("No such file") == 3, out


def test_client_round_trip_through_the_proxy(rootless_stack: Stack) -> None:
    """Register, log in, room, send, read back in a second session, over TLS via the proxy."""
    result = _round_trip(rootless_stack)
    assert result.body in result.seen_by_second_session
    _memory["body"], _memory["room"] = result.body, result.room_id
    # Without the opt-in: the host's low ports stay privileged; PID 1 holds the proxy's sockets.
    assert rootless_stack.bed.sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start")[1].strip() == "1024"
    _rc, listening = rootless_stack.bed.sh("ss -Hltnp 'sport = :443'")
    assert "systemd" in listening and "pid=1," in listening and "nginx" in listening, listening


def _request_from_the_bed_host(stack: Stack, marker: str) -> str:
    """GET /_matrix/client/versions straight to the target's address (no port forward in
    between), with ``marker`` as User-Agent; the address the bed host sends from."""
    target_ip = stack.bed.target.bridge_ip
    context = ssl_context(stack.ca_file)
    with socket.create_connection((target_ip, 443), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=MATRIX_HOSTNAME) as tls:
            tls.sendall(("GET /_matrix/client/versions HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
                         "Connection: close\r\n\r\n" % (MATRIX_HOSTNAME, marker)).encode("ascii"))
            response = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                response += chunk
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
            return str(tls.getsockname()[0])


def test_proxy_and_synapse_see_the_real_client_address(rootless_stack: Stack) -> None:
    """A request from the bed host: nginx's access log and Synapse's request log record the bed
    host's own address, not the proxy container's (no rootlessport between client and nginx:
    nginx accepts on the socket systemd bound in the host's namespace)."""
    marker = "hearth-sockact-%s" % uuid.uuid4().hex[:12]
    client = _request_from_the_bed_host(rootless_stack, marker)
    assert client != PROXY_ADDRESS
    assert _logged_client(rootless_stack, marker) == client


def _logged_client(stack: Stack, marker: str) -> str:
    """The client address nginx's access log records for the request marked ``marker``, once
    Synapse's request log has it too (the same address, from X-Forwarded-For)."""
    lines: Dict[str, str] = {}

    def logged() -> bool:
        for tag in (PROXY, "hearth-synapse"):
            _rc, out = stack.bed.sh("journalctl --no-pager -o cat -t %s | grep -F %s" % (tag, marker), check=False)
            lines[tag] = out.strip()
        return all(lines.values())

    wait_for(logged, 60, 1, "the request in both logs")
    address = lines[PROXY].split()[0]
    assert " - %s - " % address in lines["hearth-synapse"], lines
    return address


def test_hardened_inside_and_nothing_root_outside(rootless_stack: Stack) -> None:
    """Inside: non-root, no capabilities, no-new-privileges, read-only root. On the host:
    conmon, the engine and every container process belong to the service user or its
    subordinate range (the proxy's listening sockets are held by PID 1, which is no process
    of the stack); data and keys owned by exactly the mapped ids, not world-readable."""
    bed = rootless_stack.bed
    uid = int(bed.sh("id -u %s" % USER)[1])
    start = int(bed.sh("grep ^%s: /etc/subuid | cut -d: -f2" % USER)[1])
    for container in CONTAINERS:
        info = json.loads(_as_user(bed, "podman inspect %s" % container))[0]
        assert info["HostConfig"]["ReadonlyRootfs"] is True and not info["HostConfig"].get("CapAdd")
        status = _as_user(bed, "podman exec %s cat /proc/1/status" % container)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split()[1] != "0" and fields["NoNewPrivs"].strip() == "1", (container, fields["Uid"])
        for cap_set in ("CapEff", "CapPrm", "CapBnd"):
            assert int(fields[cap_set].strip(), 16) == 0, (container, cap_set)
    _rc, table = bed.sh("for p in $(pgrep -f 'conmon|podman|slirp4netns|rootlessport|postgres|nginx|synapse'); do "
                        "[ $p = $$ ] || echo \"$(awk '/^Uid:/{print $2}' /proc/$p/status) $(tr '\\0' ' ' </proc/$p/cmdline)\"; "
                        "done", check=False)
    procs: List[str] = [line for line in table.splitlines() if line.strip() and "pgrep" not in line and "for p in" not in line]
    assert any("conmon" in p for p in procs) and any("synapse.app.homeserver" in p for p in procs), table
    for line in procs:
        owner = int(line.split()[0])
        assert owner == uid or start <= owner < start + 65536, line
    _rc, owners = bed.sh("stat -c '%u %a %n' /opt/hearth-matrix/synapse/keys /opt/hearth-matrix/synapse/keys/* "
                         "/opt/hearth-matrix/postgres/data")
    for line in owners.splitlines():
        owner, mode = int(line.split()[0]), line.split()[1]
        assert owner == start + 990 or re.search(r"/postgres/", line), line
        assert mode[-1] == "0", line


def test_rerun_changes_nothing(rootless_stack: Stack) -> None:
    """changed=0 and no container restarted."""
    before = {c: _started_at(rootless_stack, c) for c in CONTAINERS}
    run = rootless_stack.converge()
    assert run.rc == 0 and run.changed == 0, run.tail(40)
    assert {c: _started_at(rootless_stack, c) for c in CONTAINERS} == before


def test_killed_synapse_comes_back(rootless_stack: Stack) -> None:
    before = _started_at(rootless_stack, "hearth-synapse")
    _as_user(rootless_stack.bed, "podman kill hearth-synapse")
    wait_for(lambda: _started_at(rootless_stack, "hearth-synapse") not in ("", before), 120, 2, "synapse restarted")
    wait_for(lambda: _round_trip(rootless_stack) is not None, 120, 3, "client after the kill")


def test_reboot_brings_everything_back(rootless_stack: Stack) -> None:
    """Linger starts the user's systemd instance at boot, without a login; its units follow."""
    __import__("bed").restart(rootless_stack.bed.target)

    user_units = [c for c in CONTAINERS if c != PROXY]

    def all_active() -> bool:
        out = _as_user(rootless_stack.bed, "systemctl --user is-active %s" % " ".join(c + ".service" for c in user_units),
                       check=False)
        # The socket-activated proxy is a system unit (run as the service user).
        _rc, proxy = rootless_stack.bed.sh("systemctl is-active %s.socket %s.service" % (PROXY, PROXY), check=False)
        return out.split() == ["active"] * len(user_units) and proxy.split() == ["active", "active"]

    wait_for(all_active, 240, 3, "user units active after reboot")
    wait_for(lambda: _round_trip(rootless_stack) is not None, 120, 3, "client after reboot")


KEPT = ("/opt/hearth-matrix/secrets /opt/hearth-matrix/synapse/keys /opt/hearth-matrix/postgres/secrets "
        "/opt/hearth-matrix/nginx-proxy/ca")


def _kept(bed: BedTarget) -> str:
    """Checksums of the stack's secrets and keys (the same files must survive each switch)."""
    _rc, out = bed.sh("find %s -type f | sort | xargs sha256sum" % KEPT)
    assert len(out.splitlines()) >= 5, out
    return out


def _messages(stack: Stack, room_id: str) -> List[str]:
    with LoopbackNames([MATRIX_HOSTNAME, SERVER_NAME]):
        return messages_in(stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                           ssl_context(stack.ca_file), room_id)


def _key_owner(bed: BedTarget) -> int:
    return int(bed.sh("stat -c %u /opt/hearth-matrix/synapse/keys/signing.key")[1])


def test_to_rootful_and_back_keeps_data_keys_and_secrets(rootless_stack: Stack) -> None:
    """hearth_engine podman_rootless -> podman -> podman_rootless on the same target. Each
    switch stops and removes the other mode's services (leaving rootless: the user units and
    the socket-activated proxy's system unit and .socket), moves the data's owners to the new
    mapping (Synapse's key: host uid 991 rootful, subuid_start + 990 rootless), keeps every
    secret and key byte for byte, and the messages sent before each switch are read after it
    (the first test's, sent rootless; one sent rootful). Both directions on the one rootless
    target: a rootful start needs nothing the other suites do not already deploy."""
    bed = rootless_stack.bed
    start = int(bed.sh("grep ^%s: /etc/subuid | cut -d: -f2" % USER)[1])
    kept = _kept(bed)
    rootful = rootless_stack.converge({"hearth_engine": "podman"})
    assert rootful.rc == 0 and rootful.failed == 0, rootful.tail(60)
    assert _as_user(bed, "podman ps --all --format '{{.Names}}'").split() == []
    assert bed.sh("ls /etc/systemd/system/%s.socket" % PROXY, check=False)[0] != 0   # socket activation gone
    _rc, active = bed.sh("systemctl is-active %s" % " ".join(c + ".service" for c in CONTAINERS), check=False)
    assert active.split() == ["active"] * len(CONTAINERS), active
    assert _key_owner(bed) == 991 and _kept(bed) == kept
    assert _memory["body"] in _messages(rootless_stack, _memory["room"])
    sent_rootful = _round_trip(rootless_stack)

    back = rootless_stack.converge()
    assert back.rc == 0 and back.failed == 0, back.tail(60)
    # Left in the system's unit directory: only the socket-activated proxy, run as the user.
    _rc, units = bed.sh("ls /etc/systemd/system/ | grep '^hearth-' || true")
    assert sorted(units.split()) == [PROXY + ".service", PROXY + ".socket"], units
    assert "User=%s" % USER in bed.sh("cat /etc/systemd/system/%s.service" % PROXY)[1]
    assert bed.engine_cmd("ps --all --format '{{.Names}}'")[1].split() == []
    assert _key_owner(bed) == start + 990 and _kept(bed) == kept
    assert sent_rootful.body in _messages(rootless_stack, sent_rootful.room_id)
    assert _memory["body"] in _messages(rootless_stack, _memory["room"])
    again = rootless_stack.converge()
    assert again.rc == 0 and again.changed == 0, again.tail(40)


def test_opt_in_instead_of_socket_activation(rootless_stack: Stack) -> None:
    """hearth_rootless_unprivileged_port_start: 80, the alternative: the sysctl is lowered, the
    proxy's .socket and system unit go and its user unit publishes the ports (rootlessport),
    the round trip still works, and a request from the bed host arrives from another address
    than the bed host's (the trade-off the README states). Last: it changes the mode."""
    run = rootless_stack.converge({"hearth_rootless_unprivileged_port_start": 80})
    assert run.rc == 0, run.tail(40)
    bed = rootless_stack.bed
    assert bed.sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start")[1].strip() == "80"
    rc, out = bed.sh("ls /etc/systemd/system/%s.socket /etc/systemd/system/%s.service" % (PROXY, PROXY), check=False)
    assert rc != 0 and out.count("No such file") == 2, out
    assert _as_user(bed, "systemctl --user is-active %s.service" % PROXY).strip() == "active"
    wait_for(lambda: _round_trip(rootless_stack) is not None, 120, 3, "client through the opt-in's proxy")
    marker = "hearth-sockact-%s" % uuid.uuid4().hex[:12]
    client = _request_from_the_bed_host(rootless_stack, marker)
    assert _logged_client(rootless_stack, marker) != client
