# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth_engine: docker_rootless on the Debian 12 target (base stack), one target.

Runs on the docker target only (the mode is docker's). The tests run in file order on one
target: bad input first (nothing may change), then a rootful docker converge switched to
docker_rootless, and the checks that build on it (round trip, data kept over the switch, the
client's address, hardening and host owners, re-run, kill, reboot).

The service user's dockerd (RootlessKit, slirp4netns port driver) publishes the proxy's ports
itself, so the host-wide opt-in hearth_rootless_unprivileged_port_start is set: a docker
container cannot take sockets from systemd (test_rootless.py shows socket activation with
rootless podman). Root's dockerd stays running: the images are copied from its store into the
user's on the first converge, as on a host where root built or loaded them.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Dict, Iterator

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, BASE_VARS, BedTarget, Stack, \
    converged_stack, target_factory
from harness import LoopbackNames, run_playbook, PLAYBOOKS, ssl_context, wait_for
from matrix_client import messages_in, round_trip

pytestmark = pytest.mark.skipif("docker" not in ENGINES, reason="docker_rootless needs the docker target")

CONTAINERS = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
USER = "hearth"
ROOTLESS = {"hearth_engine": "docker_rootless", "hearth_rootless_unprivileged_port_start": 80}
PROXY = "hearth-nginx-proxy"


@pytest.fixture(scope="module")
def docker_rootless_target(bed_images: Dict[str, object]) -> Iterator[BedTarget]:
    with target_factory("docker", "drootless", components=["postgres", "synapse", "nginx"]) as bed_target:
        yield bed_target


KEPT = "/opt/hearth-matrix/secrets /opt/hearth-matrix/synapse/keys /opt/hearth-matrix/postgres/secrets"
_before_switch: Dict[str, str] = {}


def _kept(bed: BedTarget) -> str:
    """Checksums of the stack's secrets and keys (the same files must survive the switch)."""
    _rc, out = bed.sh("find %s -type f | sort | xargs sha256sum" % KEPT)
    assert len(out.splitlines()) >= 4, out
    return out


@pytest.fixture(scope="module")
def docker_rootless_stack(docker_rootless_target: BedTarget) -> Stack:
    """Rootful docker first (a message sent, the keys' checksums taken), then the switch to
    docker_rootless, in check mode and for real: the way an existing deployment moves."""
    stack = converged_stack(docker_rootless_target, {"hearth_engine": "docker"})
    sent = _round_trip(stack)
    _before_switch.update(body=sent.body, room=sent.room_id, kept=_kept(docker_rootless_target))
    stack.extra_vars.update(ROOTLESS)
    # Check mode first: it reports the switch and changes nothing (no user, the rootful
    # containers still running).
    checked = stack.converge(args=["--check", "--diff"])
    assert checked.rc == 0 and checked.changed > 0, checked.tail(60)
    assert docker_rootless_target.sh("id %s" % USER, check=False)[0] != 0
    assert sorted(docker_rootless_target.engine_cmd("ps --format '{{.Names}}'")[1].split()) == sorted(CONTAINERS)
    run = stack.converge()
    assert run.rc == 0 and run.failed == 0, "the switch to docker_rootless failed:\n" + run.tail(80)
    return stack


def _as_user(bed: BedTarget, command: str, check: bool = True) -> str:
    """A command as the service user, with its dockerd and systemd instance."""
    _rc, out = bed.sh("cd /var/lib/{u} && runuser -u {u} -- env XDG_RUNTIME_DIR=/run/user/$(id -u {u}) HOME=/var/lib/{u} "
                      "DOCKER_HOST=unix:///run/user/$(id -u {u})/docker.sock {c}".format(u=USER, c=command), check=check)
    return out


def _round_trip(stack: Stack):
    with LoopbackNames([MATRIX_HOSTNAME, SERVER_NAME]):
        return round_trip(stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                          ssl_context(stack.ca_file))


def _started_at(stack: Stack, container: str) -> str:
    return _as_user(stack.bed, "docker inspect --format '{{.State.StartedAt}}' %s" % container, check=False).strip()


def test_low_ports_without_the_opt_in_are_refused_before_any_change(docker_rootless_target: BedTarget) -> None:
    """Without hearth_rootless_unprivileged_port_start the proxy's 443 cannot be had (no socket
    activation for docker): one line naming the variable, and nothing on the host changed."""
    run = run_playbook(docker_rootless_target.inventory, PLAYBOOKS / "site.yml",
                       dict(BASE_VARS, hearth_engine="docker_rootless"))
    assert run.rc != 0, run.tail(30)
    lines = [line for line in run.output.splitlines()
             if "hearth_rootless_unprivileged_port_start: is needed for hearth-nginx-proxy with hearth_engine "
                "docker_rootless" in line]
    assert lines, run.tail(30)
    rc, out = docker_rootless_target.sh("ls /opt/hearth-matrix /var/lib/systemd/linger/%s; id %s" % (USER, USER),
                                        check=False)
    assert rc != 0 and "No such file" in out and "no such user" in out, out


def test_client_round_trip_through_the_proxy(docker_rootless_stack: Stack) -> None:
    """Register, log in, room, send, read back in a second session, over TLS via the proxy,
    whose ports the user's dockerd publishes."""
    result = _round_trip(docker_rootless_stack)
    assert result.body in result.seen_by_second_session
    _rc, listening = docker_rootless_stack.bed.sh("ss -Hltnp 'sport = :443'")
    assert "rootlesskit" in listening or "slirp4netns" in listening, listening


def _request_from_the_bed_host(stack: Stack, marker: str) -> str:
    """GET /_matrix/client/versions to the target's own address with ``marker`` as
    User-Agent; the address the bed host sends from."""
    context = ssl_context(stack.ca_file)
    with socket.create_connection((stack.bed.target.bridge_ip, 443), timeout=30) as raw:
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


def test_switch_from_rootful_kept_data_keys_and_secrets(docker_rootless_stack: Stack) -> None:
    """The rootful services and containers are gone, every secret and key is the same byte for
    byte, owned by the mapped uid now, and the message sent before the switch is read after it."""
    bed = docker_rootless_stack.bed
    assert bed.engine_cmd("ps --all --format '{{.Names}}'")[1].split() == []
    _rc, units = bed.sh("ls /etc/systemd/system/ | grep '^hearth-' || true")
    assert units.split() == [], units
    assert _kept(bed) == _before_switch["kept"]
    start = int(bed.sh("grep ^%s: /etc/subuid | cut -d: -f2" % USER)[1])
    assert int(bed.sh("stat -c %u /opt/hearth-matrix/synapse/keys/signing.key")[1]) == start + 990
    with LoopbackNames([MATRIX_HOSTNAME, SERVER_NAME]):
        seen = messages_in(docker_rootless_stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                           ssl_context(docker_rootless_stack.ca_file), _before_switch["room"])
    assert _before_switch["body"] in seen


def test_proxy_and_synapse_see_the_real_client_address(docker_rootless_stack: Stack) -> None:
    """slirp4netns' port driver keeps the source address: nginx's access log and Synapse's
    request log (X-Forwarded-For) record the bed host's own address."""
    stack = docker_rootless_stack
    marker = "hearth-drootless-%s" % uuid.uuid4().hex[:12]
    client = _request_from_the_bed_host(stack, marker)
    lines: Dict[str, str] = {}

    def logged() -> bool:
        for tag in (PROXY, "hearth-synapse"):
            _rc, out = stack.bed.sh("journalctl --no-pager -o cat -t %s | grep -F %s" % (tag, marker), check=False)
            lines[tag] = out.strip()
        return all(lines.values())

    wait_for(logged, 60, 1, "the request in both logs")
    assert lines[PROXY].split()[0] == client, lines
    assert " - %s - " % client in lines["hearth-synapse"], lines


def test_hardened_inside_and_nothing_root_outside(docker_rootless_stack: Stack) -> None:
    """Inside: non-root, no capabilities, no-new-privileges, read-only root. On the host:
    RootlessKit, slirp4netns, dockerd, containerd, the shims and every container process belong
    to the service user or its subordinate range; keys owned by the mapped uid, not
    world-readable."""
    bed = docker_rootless_stack.bed
    uid = int(bed.sh("id -u %s" % USER)[1])
    start = int(bed.sh("grep ^%s: /etc/subuid | cut -d: -f2" % USER)[1])
    for container in CONTAINERS:
        info = json.loads(_as_user(bed, "docker inspect %s" % container))[0]
        assert info["HostConfig"]["ReadonlyRootfs"] is True and not info["HostConfig"].get("CapAdd")
        status = _as_user(bed, "docker exec %s cat /proc/1/status" % container)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split()[1] != "0" and fields["NoNewPrivs"].strip() == "1", (container, fields["Uid"])
        for cap_set in ("CapEff", "CapPrm", "CapBnd"):
            assert int(fields[cap_set].strip(), 16) == 0, (container, cap_set)
    _rc, table = bed.sh("ps -eo uid=,args=")
    procs = [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in table.splitlines()
             if len(line.split(None, 1)) == 2 and "ps -eo" not in line]
    mine = [args for owner, args in procs if owner == uid or start <= owner < start + 65536]
    for needed in ("rootlesskit", "slirp4netns", "dockerd", "containerd-shim", "synapse.app.homeserver", "nginx"):
        assert any(needed in args for args in mine), (needed, table)
    # Root's own dockerd (the bed keeps it for the image copy) is no process of the stack;
    # none of the stack's runs as root.
    stack_words = ("rootlesskit", "slirp4netns", "synapse", "nginx", "postgres")
    rooted = [args for owner, args in procs if owner == 0 and any(word in args for word in stack_words)]
    assert rooted == [], rooted
    # The unit's own process (the docker client) is sandboxed: no new privileges, a user
    # namespace of its own (one uid mapped), a read-only /usr.
    pid = _as_user(bed, "systemctl --user show --property=MainPID --value hearth-synapse.service").strip()
    _rc, status = bed.sh("grep NoNewPrivs /proc/%s/status; wc -l < /proc/%s/uid_map; "
                         "nsenter -t %s -m touch /usr/hearth-probe 2>&1 || true" % (pid, pid, pid))
    assert "NoNewPrivs:\t1" in status and status.splitlines()[1].strip() == "1", status
    assert "Read-only file system" in status, status
    _rc, owners = bed.sh("stat -c '%u %a %n' /opt/hearth-matrix/synapse/keys/*")
    for line in owners.splitlines():
        assert int(line.split()[0]) == start + 990 and line.split()[1][-1] == "0", line


def test_rerun_changes_nothing(docker_rootless_stack: Stack) -> None:
    """changed=0 and no container restarted (the user's dockerd neither)."""
    before = {c: _started_at(docker_rootless_stack, c) for c in CONTAINERS}
    dockerd = _as_user(docker_rootless_stack.bed, "systemctl --user show --property=ExecMainPID docker.service")
    run = docker_rootless_stack.converge()
    assert run.rc == 0 and run.changed == 0, run.tail(40)
    assert {c: _started_at(docker_rootless_stack, c) for c in CONTAINERS} == before
    assert _as_user(docker_rootless_stack.bed, "systemctl --user show --property=ExecMainPID docker.service") == dockerd


def test_killed_synapse_comes_back(docker_rootless_stack: Stack) -> None:
    before = _started_at(docker_rootless_stack, "hearth-synapse")
    _as_user(docker_rootless_stack.bed, "docker kill hearth-synapse")
    wait_for(lambda: _started_at(docker_rootless_stack, "hearth-synapse") not in ("", before), 120, 2,
             "synapse restarted")
    wait_for(lambda: _round_trip(docker_rootless_stack) is not None, 120, 3, "client after the kill")


def test_reboot_brings_everything_back(docker_rootless_stack: Stack) -> None:
    """Linger starts the user's systemd instance at boot without a login; its dockerd and the
    stack's units follow, with no ordering cycle."""
    __import__("bed").restart(docker_rootless_stack.bed.target)
    units = ["docker.service"] + [c + ".service" for c in CONTAINERS]

    def all_active() -> bool:
        out = _as_user(docker_rootless_stack.bed, "systemctl --user is-active %s" % " ".join(units), check=False)
        return out.split() == ["active"] * len(units)

    wait_for(all_active, 240, 3, "user units active after reboot")
    wait_for(lambda: _round_trip(docker_rootless_stack) is not None, 120, 3, "client after reboot")
    # systemd's own messages (PID 1 and the user's instance, both _COMM=systemd): a cycle is
    # logged as "... deleted to break ordering cycle ..."; our own query stays out of them.
    _rc, journal = docker_rootless_stack.bed.sh("journalctl -b _COMM=systemd --no-pager -o cat")
    assert "Reached target" in journal, "no systemd messages read:\n" + journal[-2000:]
    cycle_lines = [line for line in journal.splitlines() if "ordering cycle" in line.lower()]
    assert not cycle_lines, "\n".join(cycle_lines)
