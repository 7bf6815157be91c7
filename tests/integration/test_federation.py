# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Federation end to end (issue 12, item 3): two stacks of this collection on two bed targets.

- Stack A: server name ``a.hearth.test``, found through ``/.well-known/matrix/server`` on
  ``a.hearth.test:443``, which delegates to ``matrix.a.hearth.test:8448`` (the proxy's
  default: federation on its own port).
- Stack B: server name = matrix hostname = ``b.hearth.test``, served on the federation port
  8448 of that host itself (its ``.well-known/matrix/server`` names that same host and port,
  so a peer ends on 8448 either way; no delegation to another name).

Certificates: each proxy's own self-made CA (what the collection does without a certificate).
Certificates from an ACME CA (Pebble on the bed) are separate work of the same issue. Each
Synapse trusts the other's CA through ``synapse_federation_ca_files``; there is no DNS on the
bed, so each stack resolves the other's names to the other target's address through
``hearth_extra_hosts``; and Synapse refuses federation to private addresses unless allowed,
so each allows the other's (``ip_range_whitelist`` in ``synapse_extra_config``). The two
targets talk to each other only over the bed's network (the targets' own addresses); this
test talks only to the loopback ports the bed publishes.

A user on A creates a room and invites a user on B, who joins over federation; each sends a
message and each reads both with matrix-nio.

One engine (podman): federation is Synapse and nginx talking HTTPS between two hosts, the
same on both engines; what the engine does here (published ports, a container reaching
another host) is covered per engine by the other suites. Both engines would add two more
targets and converges (~3 min) and check nothing new.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conftest import BASE_VARS, ENGINES, BedTarget, Stack, parallel_targets
from harness import CA_ON_TARGET, LoopbackNames, collections_path, https_get, ssl_context
from matrix_client import join, send_text, session, wait_for_bodies, wait_for_invite

ENGINE = "podman"
A_SERVER, A_MATRIX = "a.hearth.test", "matrix.a.hearth.test"
B_SERVER = B_MATRIX = "b.hearth.test"
PEER_CA = "/etc/hearth-test/peer-ca.pem"
_RATE = {"per_second": 50, "burst_count": 500}

pytestmark = pytest.mark.skipif(ENGINE not in ENGINES, reason="federation runs on podman only (see the module doc)")


def _stack_vars(server_name: str, matrix_hostname: str, peer_names: List[str], peer_address: str) -> Dict[str, Any]:
    return dict(
        BASE_VARS,
        hearth_engine=ENGINE,
        hearth_server_name=server_name,
        hearth_matrix_hostname=matrix_hostname,
        # No DNS on the bed: the peer's names, at the peer target's address.
        hearth_extra_hosts={name: peer_address for name in peer_names},
        synapse_extra_config={
            # Synapse sends no federation request to a private address unless allowed.
            "ip_range_whitelist": [peer_address],
            "rc_login": {"address": _RATE, "account": _RATE, "failed_attempts": _RATE},
        },
    )


def _in_parallel(*calls: Any) -> List[Any]:
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def _converge_both(stacks: List[Stack], overrides: Dict[str, Any], what: str) -> float:
    started = time.monotonic()
    runs = _in_parallel(*[lambda stack=stack: stack.converge(overrides) for stack in stacks])
    for stack, run in zip(stacks, runs):
        assert run.rc == 0 and run.failed == 0, "%s on %s failed:\n%s" % (what, stack.bed.target.name, run.tail(80))
    return time.monotonic() - started


def _hosts_file(bed: BedTarget, container: str) -> Dict[str, str]:
    _rc, out = bed.engine_cmd("exec %s cat /etc/hosts" % container)
    entries: Dict[str, str] = {}
    for line in out.splitlines():
        fields = line.split()
        for name in fields[1:]:
            entries.setdefault(name, fields[0])
    return entries


async def _conversation(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, List[str]]:
    """alice@A creates a room, invites bob@B; bob joins over federation; both talk, both read."""
    from_a, from_b = "from A %s" % uuid.uuid4().hex[:8], "from B %s" % uuid.uuid4().hex[:8]
    async with session(a["url"], a["user_id"], a["password"], a["ssl"]) as alice, \
            session(b["url"], b["user_id"], b["password"], b["ssl"]) as bob:
        created = await alice.room_create(name="federation test", invite=[b["user_id"]])
        room_id = getattr(created, "room_id", None)
        assert room_id, created
        await wait_for_invite(bob, room_id, timeout=90)
        await join(bob, room_id)
        await send_text(alice, room_id, from_a)
        await send_text(bob, room_id, from_b)
        return {
            "alice": await wait_for_bodies(alice, room_id, [from_a, from_b], timeout=90),
            "bob": await wait_for_bodies(bob, room_id, [from_a, from_b], timeout=90),
        }


def test_two_stacks_federate(bed_images: Dict[str, Any], tmp_path: Path) -> None:
    timings: Dict[str, float] = {}
    test_started = time.monotonic()
    collections_path()  # created once, before the parallel converges share it
    started = time.monotonic()
    with parallel_targets(ENGINE, ["fed-a", "fed-b"]) as (bed_a, bed_b):
        timings["two targets up"] = time.monotonic() - started
        a_ip, b_ip = bed_a.target.bridge_ip, bed_b.target.bridge_ip
        stack_a = Stack(bed=bed_a, extra_vars=_stack_vars(A_SERVER, A_MATRIX, [B_SERVER], b_ip), ca_file=tmp_path / "a-ca.crt")
        stack_b = Stack(bed=bed_b, extra_vars=_stack_vars(B_SERVER, B_MATRIX, [A_SERVER, A_MATRIX], a_ip),
                        ca_file=tmp_path / "b-ca.crt")
        timings["first converges"] = _converge_both([stack_a, stack_b], {}, "first converge")

        # Each proxy made its own CA; each Synapse gets the other's.
        for stack, peer in ((stack_a, stack_b), (stack_b, stack_a)):
            _rc, pem = stack.bed.sh("cat " + CA_ON_TARGET)
            stack.ca_file.write_text(pem)
        for stack, peer in ((stack_a, stack_b), (stack_b, stack_a)):
            stack.bed.sh("install -D -m 0644 /dev/stdin %s <<'EOF'\n%sEOF" % (PEER_CA, peer.ca_file.read_text()))
        synapse_before = {id(s): s.started_at("hearth-synapse") for s in (stack_a, stack_b)}
        proxy_before = {id(s): s.started_at("hearth-nginx-proxy") for s in (stack_a, stack_b)}
        with_ca = {"synapse_federation_ca_files": [PEER_CA]}
        stack_a.extra_vars.update(with_ca)
        stack_b.extra_vars.update(with_ca)
        timings["converges with the peer's CA"] = _converge_both([stack_a, stack_b], {}, "converge with the peer's CA")
        for stack in (stack_a, stack_b):
            # The new option restarts Synapse and nothing else.
            assert stack.started_at("hearth-synapse") != synapse_before[id(stack)]
            assert stack.started_at("hearth-nginx-proxy") == proxy_before[id(stack)]
            _rc, ca_list = stack.bed.engine_cmd("exec hearth-synapse cat /federation-ca/0.pem")
            assert ca_list.strip() == [p for p in (stack_a, stack_b) if p is not stack][0].ca_file.read_text().strip()

        # The peer's names join the stack's own entries in /etc/hosts, never replace them.
        hosts_a = _hosts_file(bed_a, "hearth-synapse")
        assert hosts_a.get(B_SERVER) == b_ip and hosts_a.get("hearth-postgres") == "10.89.91.138", hosts_a
        hosts_b = _hosts_file(bed_b, "hearth-nginx-proxy")
        assert hosts_b.get(A_MATRIX) == a_ip and hosts_b.get("hearth-synapse") == "10.89.91.139", hosts_b

        # Discovery as a peer sees it: A delegates through .well-known, B serves its own name.
        with LoopbackNames([A_SERVER, A_MATRIX, B_SERVER]):
            status, _headers, body = https_get("https://%s:%d/.well-known/matrix/server" % (A_SERVER, bed_a.port(443)),
                                               stack_a.ca_file)
            assert status == 200 and json.loads(body) == {"m.server": "%s:8448" % A_MATRIX}, body
            status, _headers, body = https_get("https://%s:%d/_matrix/federation/v1/version" % (B_MATRIX, bed_b.port(8448)),
                                               stack_b.ca_file)
            assert status == 200 and "Synapse" in body.decode(), body

        users: Dict[str, Dict[str, Any]] = {}
        for name, stack, server, matrix in (("alice", stack_a, A_SERVER, A_MATRIX), ("bob", stack_b, B_SERVER, B_MATRIX)):
            password = "pw-" + uuid.uuid4().hex
            user = "%s-%s" % (name, uuid.uuid4().hex[:6])
            registered = stack.register(user, password)
            assert registered.rc == 0, registered.tail(40)
            users[name] = {"url": "https://%s:%d" % (matrix, stack.bed.port(443)), "user_id": "@%s:%s" % (user, server),
                           "password": password, "ssl": ssl_context(stack.ca_file)}

        started = time.monotonic()
        with LoopbackNames([A_MATRIX, B_MATRIX]):
            seen = asyncio.run(_conversation(users["alice"], users["bob"]))
        timings["invite, join, two messages over federation"] = time.monotonic() - started
        assert len(seen["alice"]) == len(seen["bob"]) == 2, seen

        # The federation went between the targets' addresses: each proxy logged the other.
        time.sleep(1.5)  # the proxy flushes its access log once a second
        for bed, peer_ip in ((bed_a, b_ip), (bed_b, a_ip)):
            _rc, count = bed.sh("journalctl -u hearth-nginx-proxy -o cat --no-pager | grep -c '^%s .*/_matrix/federation/' || true"
                                % peer_ip.replace(".", "\\."))
            assert int(count.strip() or 0) > 0, "no federation request from %s in %s's proxy log" % (peer_ip, bed.target.name)
    timings["total"] = time.monotonic() - test_started
    print("federation timings (%s): %s" % (ENGINE, ", ".join("%s %.1f s" % item for item in timings.items())))
