# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth_engine: podman_rootless on the Debian 12 target (base stack), one target.

Runs on the podman target only: the mode is podman's, docker adds nothing. The tests run in
file order on one target: bad input first (nothing may change), then the converge and the
checks that build on it (round trip, hardening and host owners, re-run, kill, reboot).

The bed's /dev/net/tun and /dev/fuse are made 0666 by the target image (a real Debian host's
udev does the same); the proxy's low ports use the opt-in
hearth_rootless_unprivileged_port_start (socket activation is not built).
"""

from __future__ import annotations

import json
import re
from typing import Dict, Iterator, List

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, BASE_VARS, BedTarget, Stack, \
    converged_stack, target_factory
from harness import LoopbackNames, run_playbook, PLAYBOOKS, ssl_context, wait_for
from matrix_client import messages_in, round_trip

pytestmark = pytest.mark.skipif("podman" not in ENGINES, reason="podman_rootless needs the podman target")

CONTAINERS = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
USER = "hearth"
ROOTLESS = {"hearth_engine": "podman_rootless", "hearth_rootless_unprivileged_port_start": 80}
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
    for engine in ("docker_rootless", "lxc"):
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


def test_client_round_trip_through_the_proxy(rootless_stack: Stack) -> None:
    """Register, log in, room, send, read back in a second session, over TLS via the proxy."""
    result = _round_trip(rootless_stack)
    assert result.body in result.seen_by_second_session
    _memory["body"], _memory["room"] = result.body, result.room_id


def test_hardened_inside_and_nothing_root_outside(rootless_stack: Stack) -> None:
    """Inside: non-root, no capabilities, no-new-privileges, read-only root. On the host:
    conmon, the engine and every container process belong to the service user or its
    subordinate range; data and keys owned by exactly the mapped ids, not world-readable."""
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

    def all_active() -> bool:
        out = _as_user(rootless_stack.bed, "systemctl --user is-active %s" % " ".join(c + ".service" for c in CONTAINERS),
                       check=False)
        return out.split() == ["active"] * len(CONTAINERS)

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
    switch stops and removes the other mode's services, moves the data's owners to the new
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
    _rc, active = bed.sh("systemctl is-active %s" % " ".join(c + ".service" for c in CONTAINERS), check=False)
    assert active.split() == ["active"] * len(CONTAINERS), active
    assert _key_owner(bed) == 991 and _kept(bed) == kept
    assert _memory["body"] in _messages(rootless_stack, _memory["room"])
    sent_rootful = _round_trip(rootless_stack)

    back = rootless_stack.converge()
    assert back.rc == 0 and back.failed == 0, back.tail(60)
    _rc, units = bed.sh("ls /etc/systemd/system/ | grep -c '^hearth-' || true")
    assert units.strip() == "0", units
    assert bed.engine_cmd("ps --all --format '{{.Names}}'")[1].split() == []
    assert _key_owner(bed) == start + 990 and _kept(bed) == kept
    assert sent_rootful.body in _messages(rootless_stack, sent_rootful.room_id)
    assert _memory["body"] in _messages(rootless_stack, _memory["room"])
    again = rootless_stack.converge()
    assert again.rc == 0 and again.changed == 0, again.tail(40)
