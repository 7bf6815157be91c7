# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Acceptance of the base stack (postgres, synapse, nginx_proxy) on a real systemd target.

The tests of this module share one converged target per engine and run in file order:
later tests (restart, kill, reboot) build on the state the earlier ones left.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from typing import Dict, List

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, MATRIX_HOSTNAME, SERVER_NAME, Stack
from harness import LoopbackNames, http_get_no_redirect, https_get, ssl_context, wait_for
from matrix_client import messages_in, round_trip

STACK_CONTAINERS = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
NAMES = [MATRIX_HOSTNAME, SERVER_NAME]

# Remembered across the tests of one engine (module scope): what must survive re-runs.
_memory: Dict[str, Dict[str, str]] = {}


def _client_round_trip(stack: Stack, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD):
    with LoopbackNames(NAMES):
        return round_trip(stack.base_url, "@%s:%s" % (user, SERVER_NAME), password, ssl_context(stack.ca_file))


def _secrets_digest(stack: Stack) -> str:
    _rc, out = stack.bed.sh(
        "cd /opt/hearth-matrix && find . -type f \\( -name '*.key' -o -path '*secret*' -o -path '*tls*' \\) "
        "-print0 | sort -z | xargs -0 sha256sum"
    )
    assert out.strip(), "no key or secret files found under /opt/hearth-matrix"
    return out


def test_client_round_trip_through_proxy(stack: Stack) -> None:
    """1. register (shared secret), log in, create a room, send, read with a second session."""
    user = "alice-%s" % uuid.uuid4().hex[:6]
    password = "pw-" + uuid.uuid4().hex
    registered = stack.register(user, password)
    assert registered.rc == 0, registered.tail()
    result = _client_round_trip(stack, user, password)
    assert result.body in result.seen_by_second_session
    _memory[stack.engine] = {"room_id": result.room_id, "body": result.body, "user": user, "password": password,
                             "secrets": _secrets_digest(stack)}


def test_federation_and_well_known(stack: Stack) -> None:
    """2. key server on 8448; .well-known documents parse and point at the right places."""
    with LoopbackNames(NAMES):
        status, _headers, body = https_get(stack.federation_url + "/_matrix/key/v2/server", stack.ca_file)
        assert status == 200, body
        keys = json.loads(body)
        assert keys["server_name"] == SERVER_NAME
        assert keys["verify_keys"], keys

        port = stack.bed.port(443)
        status, headers, body = https_get("https://%s:%d/.well-known/matrix/client" % (SERVER_NAME, port), stack.ca_file)
        assert status == 200, body
        assert headers.get("access-control-allow-origin") == "*"
        assert "application/json" in headers.get("content-type", "")
        assert json.loads(body)["m.homeserver"]["base_url"] == "https://%s" % MATRIX_HOSTNAME

        status, headers, body = https_get("https://%s:%d/.well-known/matrix/server" % (SERVER_NAME, port), stack.ca_file)
        assert status == 200, body
        # The proxy names its own federation listener.
        assert json.loads(body)["m.server"] == "%s:8448" % MATRIX_HOSTNAME

    status, headers = http_get_no_redirect("http://127.0.0.1:%d/_matrix/client/versions" % stack.bed.port(80))
    assert status in (301, 308), status
    assert headers["location"].startswith("https://")


@pytest.mark.parametrize("container", STACK_CONTAINERS)
def test_container_hardening(stack: Stack, container: str) -> None:
    """3. non-root, no capabilities, read-only root, no-new-privileges — from inspect and /proc."""
    stack.bed.assert_hardened(container)


def test_second_converge_changes_nothing(stack: Stack) -> None:
    """4. changed=0 and no container restarted."""
    before = {name: stack.started_at(name) for name in STACK_CONTAINERS}
    run = stack.converge()
    assert run.rc == 0, run.tail()
    assert run.changed == 0, "second converge changed something:\n" + run.output
    assert {name: stack.started_at(name) for name in STACK_CONTAINERS} == before


def test_synapse_setting_restarts_only_synapse(stack: Stack) -> None:
    """5. one Synapse setting changes: Synapse restarts, postgres and the proxy do not."""
    before = {name: stack.started_at(name) for name in STACK_CONTAINERS}
    stack.extra_vars["synapse_max_upload_size"] = "42M"
    run = stack.converge()
    assert run.rc == 0, run.tail()
    after = {name: stack.started_at(name) for name in STACK_CONTAINERS}
    assert after["hearth-synapse"] != before["hearth-synapse"]
    assert after["hearth-postgres"] == before["hearth-postgres"]
    assert after["hearth-nginx-proxy"] == before["hearth-nginx-proxy"]
    _rc, conf = stack.bed.sh("cat /opt/hearth-matrix/synapse/config/homeserver.yaml")
    assert "42M" in conf
    wait_for(lambda: _client_round_trip(stack) is not None, 90, 3, "client after synapse restart")


def test_killed_synapse_comes_back(stack: Stack) -> None:
    """6a. kill the container: systemd restarts it, the proxy reaches it again."""
    before = stack.started_at("hearth-synapse")
    stack.bed.engine_cmd("kill hearth-synapse")

    def restarted() -> bool:
        rc, _out = stack.bed.sh("systemctl is-active hearth-synapse.service", check=False)
        return rc == 0 and stack.started_at("hearth-synapse") != before

    wait_for(restarted, 120, 2, "hearth-synapse restarted by systemd")
    wait_for(lambda: _client_round_trip(stack) is not None, 120, 3, "client through the proxy after the kill")


def _address(stack: Stack, container: str) -> str:
    _rc, out = stack.bed.engine_cmd(
        "inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' %s" % container)
    return out.strip()


def test_unit_sandbox_follows_the_engine(stack: Stack) -> None:
    """docker: the unit's own processes (a client of dockerd, not the container) are
    sandboxed, and `systemd-analyze security` rates each stack unit 2.0 or better (10 = no
    sandbox). podman: the unit's process is the runtime itself (namespaces, mounts, network),
    so its unit keeps systemd's defaults, as documented in unit.py and the README."""
    for unit in STACK_CONTAINERS:
        _rc, out = stack.bed.sh("systemd-analyze security --no-pager %s.service | tail -1" % unit)
        match = re.search(r"exposure level for \S+: ([0-9.]+)", out)
        assert match, out
        level = float(match.group(1))
        _rc, show = stack.bed.sh("systemctl show -p PrivateNetwork -p ProtectSystem -p NoNewPrivileges %s" % unit)
        if stack.engine == "docker":
            assert level <= 2.0, "%s: %s" % (unit, out)
            assert sorted(show.split()) == ["NoNewPrivileges=yes", "PrivateNetwork=yes", "ProtectSystem=strict"], show
        else:
            assert level >= 9.0, "%s: %s" % (unit, out)
            assert sorted(show.split()) == ["NoNewPrivileges=no", "PrivateNetwork=no", "ProtectSystem=no"], show


def test_synapse_comes_back_at_its_fixed_address(stack: Stack) -> None:
    """6b. Synapse restarted while another container took a free address on the network: it
    comes back at its own fixed address (upper half of the subnet; the engine hands the lower
    half to everyone else) and the proxy reaches it without a restart."""
    proxy_started = stack.started_at("hearth-nginx-proxy")
    old_address = _address(stack, "hearth-synapse")
    assert old_address == "10.89.91.139", "hearth-synapse is not at its fixed address: %r" % old_address
    _rc, image = stack.bed.engine_cmd("inspect --format '{{.Config.Image}}' hearth-nginx-proxy")
    squatter = "hearth-test-squatter-%s" % uuid.uuid4().hex[:8]
    try:
        stack.bed.sh("systemctl stop hearth-synapse.service")
        stack.bed.engine_cmd("run -d --rm --name %s --user 65534:65534 --network hearth %s sleep 600"
                             % (squatter, image.strip()))
        squatter_address = _address(stack, squatter)
        assert ipaddress.IPv4Address(squatter_address) in ipaddress.IPv4Network("10.89.91.0/25"), squatter_address
        stack.bed.sh("systemctl start hearth-synapse.service")
        assert _address(stack, "hearth-synapse") == old_address
        wait_for(lambda: _client_round_trip(stack) is not None, 60, 3, "client through the proxy after the restart")
        assert stack.started_at("hearth-nginx-proxy") == proxy_started, "the proxy restarted"
    finally:
        stack.bed.engine_cmd("rm --force %s" % squatter, check=False)


def test_reboot_brings_everything_back_without_ordering_cycle(stack: Stack) -> None:
    """6c. reboot (with Docker 20.10.0's After=multi-user.target added): all back, no cycle."""
    if stack.engine == "docker":
        stack.bed.sh(
            "mkdir -p /etc/systemd/system/docker.service.d && printf '[Unit]\\nAfter=multi-user.target\\n' "
            "> /etc/systemd/system/docker.service.d/10-docker-20.10.0-after.conf && systemctl daemon-reload"
        )
        _rc, after = stack.bed.sh("systemctl show -p After docker.service")
        assert "multi-user.target" in after
    bed_module = __import__("bed")
    bed_module.restart(stack.bed.target)

    def all_active() -> bool:
        rc, _out = stack.bed.sh("systemctl is-active %s" % " ".join(c + ".service" for c in STACK_CONTAINERS), check=False)
        return rc == 0

    wait_for(all_active, 240, 3, "all stack services active after reboot")
    # systemd itself (PID 1) logs "... deleted to break ordering cycle ..."; reading only its
    # messages keeps our own query (logged by Ansible) out of the result.
    _rc, journal = stack.bed.sh("journalctl -b _PID=1 --no-pager -o cat")
    assert "Reached target" in journal or "Started" in journal, "no systemd messages read:\n" + journal[-2000:]
    cycle_lines = [line for line in journal.splitlines() if "ordering cycle" in line.lower()]
    assert not cycle_lines, "\n".join(cycle_lines)
    wait_for(lambda: _client_round_trip(stack) is not None, 120, 3, "client after reboot")


def test_keys_secrets_and_messages_survive_a_rerun(stack: Stack) -> None:
    """7. signing key, secrets, and a message sent before re-runs are all still there."""
    remembered = _memory.get(stack.engine)
    assert remembered, "test_client_round_trip_through_proxy must run first"
    run = stack.converge()
    assert run.rc == 0, run.tail()
    assert _secrets_digest(stack) == remembered["secrets"]
    with LoopbackNames(NAMES):
        bodies = messages_in(stack.base_url, "@%s:%s" % (remembered["user"], SERVER_NAME), remembered["password"],
                             ssl_context(stack.ca_file), remembered["room_id"])
    assert remembered["body"] in bodies


def test_stop_and_start_playbooks(stack: Stack) -> None:
    """The whole-stack stop/start playbooks follow the dependency order and really act."""
    run = stack.converge(playbook="stop.yml")
    assert run.rc == 0, run.tail()
    rc, _out = stack.bed.sh("systemctl is-active hearth-synapse.service hearth-postgres.service", check=False)
    assert rc != 0
    run = stack.converge(playbook="start.yml")
    assert run.rc == 0, run.tail()
    wait_for(lambda: _client_round_trip(stack) is not None, 120, 3, "client after start.yml")


def test_check_mode_on_a_converged_host_changes_nothing(stack: Stack) -> None:
    """--check --diff on a converged host: changed=0, no service restarted."""
    before = {name: stack.started_at(name) for name in STACK_CONTAINERS}
    run = stack.converge(args=["--check", "--diff"])
    assert run.rc == 0, run.tail(60)
    assert run.changed == 0, "check mode on a converged host reported changes:\n" + run.output[-4000:]
    assert {name: stack.started_at(name) for name in STACK_CONTAINERS} == before


def _units_and_containers(stack: Stack) -> str:
    _rc, out = stack.bed.sh("ls /etc/systemd/system | grep '^hearth-' || true; %s ps -a --format '{{.Names}}' | sort"
                            % stack.engine)
    return out


def test_proxy_off_removes_it_and_keeps_its_certificate(stack: Stack) -> None:
    """nginx_proxy off: its unit and container go, its CA stays, Synapse keeps running; on again: same CA."""
    _rc, ca_before = stack.bed.sh("sha256sum /opt/hearth-matrix/nginx-proxy/ca/ca.key /opt/hearth-matrix/nginx-proxy/tls/ca.crt")
    synapse_started = stack.started_at("hearth-synapse")
    run = stack.converge({"hearth_nginx_proxy_enabled": False})
    assert run.rc == 0, run.tail()
    present = _units_and_containers(stack)
    assert "hearth-nginx-proxy" not in present, present
    assert "hearth-synapse.service" in present
    assert stack.started_at("hearth-synapse") == synapse_started
    run = stack.converge()
    assert run.rc == 0, run.tail()
    _rc, ca_after = stack.bed.sh("sha256sum /opt/hearth-matrix/nginx-proxy/ca/ca.key /opt/hearth-matrix/nginx-proxy/tls/ca.crt")
    assert ca_after == ca_before
    wait_for(lambda: _client_round_trip(stack) is not None, 120, 3, "client through the proxy turned on again")


def test_everything_off_keeps_the_data_and_on_brings_it_back(stack: Stack) -> None:
    """postgres, synapse and the proxy off: no unit or container left, data kept; on again: same data."""
    remembered = _memory.get(stack.engine)
    assert remembered, "test_client_round_trip_through_proxy must run first"
    off = {"hearth_postgres_enabled": False, "hearth_synapse_enabled": False, "hearth_nginx_proxy_enabled": False}
    run = stack.converge(off)
    assert run.rc == 0, run.tail()
    present = _units_and_containers(stack)
    assert not [line for line in present.splitlines() if line.startswith("hearth-")], present
    rc, _out = stack.bed.sh("test -s /opt/hearth-matrix/postgres/data/PG_VERSION && test -s /opt/hearth-matrix/synapse/keys/signing.key",
                            check=False)
    assert rc == 0, "data or keys were removed with the services"
    again = stack.converge(off)
    assert again.rc == 0 and again.changed == 0, again.tail()
    run = stack.converge()
    assert run.rc == 0, run.tail()
    assert _secrets_digest(stack) == remembered["secrets"]
    seen: List[str] = []

    def message_back() -> bool:
        with LoopbackNames(NAMES):
            seen[:] = messages_in(stack.base_url, "@%s:%s" % (remembered["user"], SERVER_NAME), remembered["password"],
                                  ssl_context(stack.ca_file), remembered["room_id"])
        return remembered["body"] in seen

    wait_for(message_back, 120, 3, "the message sent before the stack was turned off")
