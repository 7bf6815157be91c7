# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base stack on a Debian 13 target (podman 5.4, systemd 257): generated units, then
Podman Quadlet services.

One trixie target, podman only (Quadlet is podman's; Debian 12's podman 4.3 has none, so the
refusal there is a case of the bad-input corpus instead: test_reuse_and_bad_input.py). The
tests run in file order on one target: the stack with generated units answers a client, the
same stack becomes Quadlet services (data kept), the files as podman's own generator and
systemd read them, the client round trip, hardening, a no-change run, a change restarting
one service, kill, reboot, and back to generated units with the data kept.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, MATRIX_HOSTNAME, RUN_ID, SERVER_NAME, BedTarget, Stack, converged_stack
from harness import LoopbackNames, ssl_context, wait_for
from matrix_client import messages_in, round_trip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bed"))
import bed  # noqa: E402  pylint: disable=wrong-import-position

SERVICES = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
QUADLET_DIR = "/etc/containers/systemd"
# Debian 13 installs podman's Quadlet binary here (other distributions: /usr/lib/podman/quadlet).
QUADLET_BIN = "/usr/libexec/podman/quadlet"
NAMES = [MATRIX_HOSTNAME, SERVER_NAME]
_memory: Dict[str, str] = {}

pytestmark = pytest.mark.skipif("podman" not in os.environ.get("HEARTH_TEST_ENGINES", "docker,podman").split(","),
                                reason="Quadlet is podman's unit format")


@pytest.fixture(scope="module")
def quadlet_stack(bed_images: Dict[str, object]) -> Iterator[Stack]:
    """A Debian 13 target with the base stack converged (generated units first)."""
    workdir = Path(tempfile.mkdtemp(prefix="hearth-quadlet-"))
    target = bed.up("%s-quadlet-podman" % RUN_ID, "podman", workdir, owner_pid=os.getpid(),
                    components=["postgres", "synapse", "nginx"], os_name="trixie")
    try:
        yield converged_stack(BedTarget(target=target, workdir=workdir))
    finally:
        try:
            bed.down(target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _round_trip(stack: Stack, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD):
    with LoopbackNames(NAMES):
        return round_trip(stack.base_url, "@%s:%s" % (user, SERVER_NAME), password, ssl_context(stack.ca_file))


def _active(stack: Stack) -> bool:
    rc, _out = stack.bed.sh("systemctl is-active %s" % " ".join(s + ".service" for s in SERVICES), check=False)
    return rc == 0


def test_generated_units_on_debian_13(quadlet_stack: Stack) -> None:
    """The stack as it is deployed today (generated units) answers on Debian 13."""
    _rc, out = quadlet_stack.bed.sh("systemctl show -p FragmentPath hearth-synapse.service; podman --version")
    assert "FragmentPath=/etc/systemd/system/hearth-synapse.service" in out and "podman version 5." in out, out
    result = _round_trip(quadlet_stack)
    assert result.body in result.seen_by_second_session
    _memory.update(before_room=result.room_id, before_body=result.body)


def test_switch_to_quadlet_keeps_data(quadlet_stack: Stack) -> None:
    """hearth_podman_quadlet: every service restarts from its Quadlet file, the message sent
    before is still there."""
    quadlet_stack.extra_vars["hearth_podman_quadlet"] = True
    run = quadlet_stack.converge()
    assert run.rc == 0, run.tail()
    assert _active(quadlet_stack)
    with LoopbackNames(NAMES):
        texts = messages_in(quadlet_stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                            ssl_context(quadlet_stack.ca_file), _memory["before_room"])
    assert _memory["before_body"] in texts


def test_quadlet_files_accepted_by_podman_and_systemd(quadlet_stack: Stack) -> None:
    """Our .container/.network files, no generated unit of ours; podman's quadlet dry run and
    `systemd-analyze verify` of the units it generates accept them."""
    sh = quadlet_stack.bed.sh
    _rc, listing = sh("ls %s" % QUADLET_DIR)
    ours = sorted(name for name in listing.split() if name.startswith("hearth"))
    assert ours == sorted([s + ".container" for s in SERVICES] + ["hearth.network"]), listing
    rc, _out = sh("ls /etc/systemd/system/hearth-*.service", check=False)
    assert rc != 0, "a generated unit of ours is left in /etc/systemd/system"
    rc, out = sh("%s -dryrun 2>&1" % QUADLET_BIN, check=False)
    assert rc == 0 and "[X-Container]" in out, out
    for service in SERVICES:
        assert "ContainerName=%s" % service in out, out
    units = " ".join("/run/systemd/generator/%s.service" % s for s in SERVICES)
    rc, out = sh("systemd-analyze verify %s /run/systemd/generator/hearth-network.service 2>&1" % units, check=False)
    assert rc == 0, out
    # The unit systemd runs is the generated one, ready only once healthy.
    _rc, out = sh("systemctl show -p FragmentPath -p SourcePath -p Type hearth-synapse.service")
    assert "FragmentPath=/run/systemd/generator/hearth-synapse.service" in out, out
    assert "SourcePath=%s/hearth-synapse.container" % QUADLET_DIR in out and "Type=notify" in out, out


def test_client_round_trip_through_proxy(quadlet_stack: Stack) -> None:
    """Register, log in, create a room, send, read back in a second session, over TLS."""
    user, password = "q-%s" % uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex
    registered = quadlet_stack.register(user, password)
    assert registered.rc == 0, registered.tail()
    result = _round_trip(quadlet_stack, user, password)
    assert result.body in result.seen_by_second_session
    _memory.update(room_id=result.room_id, body=result.body, user=user, password=password)


@pytest.mark.parametrize("container", SERVICES)
def test_container_hardening(quadlet_stack: Stack, container: str) -> None:
    """Non-root, no capabilities, read-only root, no-new-privileges and the role's limits."""
    quadlet_stack.bed.assert_hardened(container)


def test_no_change_run_changes_and_restarts_nothing(quadlet_stack: Stack) -> None:
    before = {name: quadlet_stack.started_at(name) for name in SERVICES}
    run = quadlet_stack.converge()
    assert run.rc == 0, run.tail()
    assert run.changed == 0, "second converge changed something:\n" + run.output
    assert {name: quadlet_stack.started_at(name) for name in SERVICES} == before


def test_setting_restarts_only_synapse(quadlet_stack: Stack) -> None:
    before = {name: quadlet_stack.started_at(name) for name in SERVICES}
    run = quadlet_stack.converge({"synapse_max_upload_size": "42M"})
    assert run.rc == 0, run.tail()
    after = {name: quadlet_stack.started_at(name) for name in SERVICES}
    assert after["hearth-synapse"] != before["hearth-synapse"]
    assert after["hearth-postgres"] == before["hearth-postgres"]
    assert after["hearth-nginx-proxy"] == before["hearth-nginx-proxy"]
    quadlet_stack.extra_vars["synapse_max_upload_size"] = "42M"


def test_killed_synapse_comes_back(quadlet_stack: Stack) -> None:
    before = quadlet_stack.started_at("hearth-synapse")
    quadlet_stack.bed.engine_cmd("kill hearth-synapse")

    def restarted() -> bool:
        rc, _out = quadlet_stack.bed.sh("systemctl is-active hearth-synapse.service", check=False)
        return rc == 0 and quadlet_stack.started_at("hearth-synapse") != before

    wait_for(restarted, 120, 2, "hearth-synapse restarted by systemd")
    wait_for(lambda: _round_trip(quadlet_stack) is not None, 120, 3, "client through the proxy after the kill")


def test_reboot_brings_everything_back_without_ordering_cycle(quadlet_stack: Stack) -> None:
    bed.restart(quadlet_stack.bed.target)
    wait_for(lambda: _active(quadlet_stack), 180, 2, "every service active after the reboot")
    # systemd's own messages (PID 1): our query, logged by Ansible, stays out of the result.
    _rc, journal = quadlet_stack.bed.sh("journalctl -b _PID=1 --no-pager -o cat")
    assert "Started" in journal, journal[-2000:]
    cycle_lines = [line for line in journal.splitlines() if "ordering cycle" in line.lower()]
    assert not cycle_lines, "\n".join(cycle_lines)
    with LoopbackNames(NAMES):
        texts = messages_in(quadlet_stack.base_url, "@%s:%s" % (_memory["user"], SERVER_NAME), _memory["password"],
                            ssl_context(quadlet_stack.ca_file), _memory["room_id"])
    assert _memory["body"] in texts


def test_back_to_generated_units_keeps_data(quadlet_stack: Stack) -> None:
    """hearth_podman_quadlet false: the Quadlet files go, generated units take over, and the
    message sent before is still there."""
    quadlet_stack.extra_vars["hearth_podman_quadlet"] = False
    run = quadlet_stack.converge()
    assert run.rc == 0, run.tail()
    _rc, listing = quadlet_stack.bed.sh("ls %s" % QUADLET_DIR)
    assert not [name for name in listing.split() if name.startswith("hearth")], listing
    _rc, out = quadlet_stack.bed.sh("systemctl show -p FragmentPath hearth-synapse.service")
    assert out.strip() == "FragmentPath=/etc/systemd/system/hearth-synapse.service", out
    assert _active(quadlet_stack)
    with LoopbackNames(NAMES):
        texts = messages_in(quadlet_stack.base_url, "@%s:%s" % (_memory["user"], SERVER_NAME), _memory["password"],
                            ssl_context(quadlet_stack.ca_file), _memory["room_id"])
    assert _memory["body"] in texts


def test_rootless_on_debian_13_keeps_the_data(quadlet_stack: Stack) -> None:
    """hearth_engine: podman_rootless on Debian 13 (podman 5.4, its network helper pasta), by
    a switch of this rootful stack: the system units go, the service user's units serve the
    same data (the message sent before, read after), every process of the stack on the host
    belongs to the service user or its subordinate range, and a re-run changes nothing. On
    this target: the switch needs a deployed stack, and a second trixie target would cost
    more than the converge it adds."""
    bed_target = quadlet_stack.bed
    rootless = {"hearth_engine": "podman_rootless", "hearth_rootless_unprivileged_port_start": 80}
    run = quadlet_stack.converge(rootless)
    assert run.rc == 0 and run.failed == 0, run.tail(60)
    _rc, units = bed_target.sh("ls /etc/systemd/system | grep -c '^hearth-' || true")
    assert units.strip() == "0", units
    with LoopbackNames(NAMES):
        texts = messages_in(quadlet_stack.base_url, "@%s:%s" % (_memory["user"], SERVER_NAME), _memory["password"],
                            ssl_context(quadlet_stack.ca_file), _memory["room_id"])
    assert _memory["body"] in texts
    uid = int(bed_target.sh("id -u hearth")[1])
    start = int(bed_target.sh("grep ^hearth: /etc/subuid | cut -d: -f2")[1])
    _rc, table = bed_target.sh("for p in $(pgrep -f 'conmon|pasta|rootlessport|postgres|nginx|synapse.app'); do "
                               "echo \"$(awk '/^Uid:/{print $2}' /proc/$p/status) $(cat /proc/$p/comm)\"; done",
                               check=False)
    owners = [line.split() for line in table.splitlines() if len(line.split()) == 2]
    assert any(comm == "conmon" for _owner, comm in owners) and any(comm.startswith("pasta") for _owner, comm in owners), table
    for owner, comm in owners:
        if comm in ("sh", "pgrep"):
            continue
        assert int(owner) == uid or start <= int(owner) < start + 65536, (owner, comm)
    again = quadlet_stack.converge(rootless)
    assert again.rc == 0 and again.changed == 0, again.tail(40)
