# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Federation end to end (issue 12, item 3): two stacks of this collection on two bed targets.

- Stack A: server name ``a.hearth.test``, found through ``/.well-known/matrix/server`` on
  ``a.hearth.test:443``, which delegates to ``matrix.a.hearth.test:8448`` (the proxy's
  default: federation on its own port).
- Stack B: server name = matrix hostname = ``b.hearth.test``, found on the federation port
  8448 of that host itself: B serves no ``.well-known/matrix/server``
  (``nginx_proxy_well_known_server_enabled: false``, a 404), so a peer falls back to
  ``b.hearth.test:8448``.

Certificates: both stacks order theirs (``nginx_proxy_tls_source: acme``) from ONE Pebble,
Let's Encrypt's ACME test server, in a bed container (pebble_bed.py, shared with the ACME
test); its DNS test server resolves A's names to A and B's to B, so each proxy answers its own
HTTP-01 challenges. Both Synapses trust Pebble's root, fetched from Pebble's management API
at run time, through ``synapse_federation_ca_files``; there is no DNS on the bed for the
stacks, so each resolves the other's names to the other target's address through
``hearth_extra_hosts``; and Synapse refuses federation to private addresses unless allowed,
so each allows the other's (``ip_range_whitelist`` in ``synapse_extra_config``). The two
targets talk to each other and to Pebble only over the bed's network; this test talks to the
loopback ports the bed publishes and to the Pebble container it created.

A user on A creates a room and invites a user on B, who joins over federation; each sends a
message and each reads both with matrix-nio.

Then a peer this collection did not configure: a plain Synapse from the same image, started by
the test inside target A with its own minimal config (SQLite, its own TLS listener on 8448,
server name ``c.hearth.test:8448`` so no discovery is needed to reach it, a certificate the
test issues from A's CA). Its user creates a room and invites the user on A, who joins; both
talk and read. It finds A the way any server does: ``.well-known`` on ``a.hearth.test:443``,
then ``matrix.a.hearth.test:8448`` (names from its own ``--add-host``, the target's address),
and trusts Pebble's root for it. Its own certificate comes from a CA the test makes on A,
which A trusts besides Pebble's root: Pebble would check an HTTP-01 challenge on the peer's
port 80 from the bed network, but the peer sits on A's internal stack network with no port 80
(a plain Synapse, no proxy, no ACME client), and a peer with a CA of its own is also what a
private federation looks like.

One engine (podman): federation is Synapse and nginx talking HTTPS between two hosts, the
same on both engines; what the engine does here (published ports, a container reaching
another host) is covered per engine by the other suites. Both engines would add two more
targets and converges (~3 min) and check nothing new.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from conftest import BASE_VARS, ENGINES, BedTarget, Stack, parallel_targets
from harness import LoopbackNames, collections_path, https_get, ssl_context, wait_for
from matrix_client import join, send_text, session, wait_for_bodies, wait_for_invite
from pebble_bed import pebble

ENGINE = "podman"
A_SERVER, A_MATRIX = "a.hearth.test", "matrix.a.hearth.test"
B_SERVER = B_MATRIX = "b.hearth.test"
PEBBLE_ROOT = "/etc/hearth-test/pebble-root.pem"
# The foreign peer, inside target A on the stack network: a fixed address in the lower half
# (where the engine puts containers of the user's), so A's /etc/hosts can name it.
C_HOST, C_SERVER, C_ADDRESS = "c.hearth.test", "c.hearth.test:8448", "10.89.91.100"
C_CONTAINER, C_DIR, C_SECRET = "hearth-test-foreign-peer", "/opt/hearth-test/foreign-peer", "foreign-" + uuid.uuid4().hex
# The foreign peer's own CA, made by the test on A; A trusts it besides Pebble's root.
C_CA, C_CA_KEY = C_DIR + "/ca/ca.pem", C_DIR + "/ca/ca.key"
SYNAPSE_IMAGE = "localhost/hearth/synapse:test"
COMPONENTS = ["postgres", "synapse", "nginx", "certbot"]
_RATE = {"per_second": 50, "burst_count": 500}

pytestmark = pytest.mark.skipif(ENGINE not in ENGINES, reason="federation runs on podman only (see the module doc)")


def _stack_vars(server_name: str, matrix_hostname: str, peers: Dict[str, str], acme: Dict[str, Any]) -> Dict[str, Any]:
    return dict(
        BASE_VARS,
        **acme,
        hearth_engine=ENGINE,
        hearth_server_name=server_name,
        hearth_matrix_hostname=matrix_hostname,
        # No DNS on the bed: the peers' names, at the peers' addresses.
        hearth_extra_hosts=dict(peers),
        synapse_extra_config={
            # Synapse sends no federation request to a private address unless allowed.
            "ip_range_whitelist": sorted(set(peers.values())),
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
        if run.rc != 0 or run.failed != 0:
            _rc, journal = stack.bed.sh("journalctl -u hearth-synapse -n 60 --no-pager -o cat", check=False)
            raise AssertionError("%s on %s failed:\n%s\n\nSynapse's journal:\n%s" % (
                what, stack.bed.target.name, run.tail(40), journal))
    return time.monotonic() - started


def _hosts_file(bed: BedTarget, container: str) -> Dict[str, str]:
    _rc, out = bed.engine_cmd("exec %s cat /etc/hosts" % container)
    entries: Dict[str, str] = {}
    for line in out.splitlines():
        fields = line.split()
        for name in fields[1:]:
            entries.setdefault(name, fields[0])
    return entries


def _foreign_peer_config(a_ip: str) -> Dict[str, Any]:
    """A minimal homeserver.yaml of the test's own (JSON is YAML), nothing from the collection."""
    return {
        "server_name": C_SERVER,
        "pid_file": "/tmp/homeserver.pid",
        "report_stats": False,
        "signing_key_path": "/conf/signing.key",
        "tls_certificate_path": "/conf/tls.crt",
        "tls_private_key_path": "/conf/tls.key",
        "media_store_path": "/data/media_store",
        "database": {"name": "sqlite3", "args": {"database": "/data/homeserver.db"}},
        "registration_shared_secret": C_SECRET,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_custom_ca_list": ["/conf/pebble-root.pem"],
        "ip_range_whitelist": [a_ip],
        "listeners": [
            {"port": 8448, "tls": True, "type": "http", "bind_addresses": ["0.0.0.0"],
             "resources": [{"names": ["client", "federation"]}]},
            # Registration with the shared secret, from inside the container only.
            {"port": 8008, "tls": False, "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]},
        ],
    }


_PEER_CA_SCRIPT = """set -e
mkdir -p {d}/ca && cd {d}/ca
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=foreign peer test CA' \\
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \\
  -keyout {ca_key} -out {ca} 2>/dev/null
chmod 0600 {ca_key}
"""

_FOREIGN_PEER_SCRIPT = """set -e
mkdir -p {d}/conf {d}/data && cd {d}/conf
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -subj /CN={host} -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:{host}\\n' > ext.cnf
openssl x509 -req -sha256 -in tls.csr -CA {ca} -CAkey {ca_key} -set_serial 0x$(openssl rand -hex 8) -days 2 \\
  -extfile ext.cnf -out tls.crt 2>/dev/null
cp {root} pebble-root.pem
python3 -c "import base64, os; print('ed25519 c1 ' + base64.b64encode(os.urandom(32)).decode().rstrip('='))" > signing.key
printf '%s\\n' '{config}' > homeserver.yaml
chown 991:991 tls.key signing.key {d}/data && chmod 0600 tls.key signing.key && chmod 0644 tls.crt pebble-root.pem homeserver.yaml
{engine} run -d --name {name} --network hearth --ip {address} --add-host {a_server}:{a_ip} --add-host {a_matrix}:{a_ip} \\
  --user 991:991 --cap-drop=ALL --security-opt no-new-privileges --read-only --tmpfs /tmp \\
  -v {d}/conf:/conf:ro -v {d}/data:/data --entrypoint python {image} \\
  -m synapse.app.homeserver --config-path /conf/homeserver.yaml
"""


def _start_foreign_peer(bed_a: BedTarget, a_ip: str) -> None:
    """The plain Synapse on A's stack network: a certificate from the test's CA, its own signing key."""
    bed_a.sh(_FOREIGN_PEER_SCRIPT.format(
        d=C_DIR, host=C_HOST, ca=C_CA, ca_key=C_CA_KEY, root=PEBBLE_ROOT, config=json.dumps(_foreign_peer_config(a_ip)),
        engine=ENGINE, name=C_CONTAINER, address=C_ADDRESS, a_server=A_SERVER, a_matrix=A_MATRIX, a_ip=a_ip,
        image=SYNAPSE_IMAGE))


@contextlib.contextmanager
def _tunnel(bed: BedTarget, address: str, port: int) -> Iterator[int]:
    """An SSH tunnel from a loopback port here to address:port as seen from the target."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        local = int(sock.getsockname()[1])
    argv = bed.target.ssh_argv()
    proc = subprocess.Popen(argv[:-1] + ["-N", "-L", "127.0.0.1:%d:%s:%d" % (local, address, port), argv[-1]],
                            stdin=subprocess.DEVNULL)
    try:
        yield local
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _conversation(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, List[str]]:
    """User a creates a room and invites user b (another server); b joins over federation; both
    talk, both read. The result is keyed alice/bob: the inviter and the invitee."""
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
    with parallel_targets(ENGINE, ["fed-a", "fed-b"], components=COMPONENTS) as (bed_a, bed_b):
        timings["two targets up"] = time.monotonic() - started
        a_ip, b_ip = bed_a.target.bridge_ip, bed_b.target.bridge_ip
        with pebble(a_ip) as acme_ca:
            # One CA for both: A's names resolve to A (challtestsrv's default), B's to B.
            acme_ca.point(B_SERVER, b_ip)
            root = tmp_path / "pebble-root.pem"
            root.write_text(acme_ca.root())
            stack_a = Stack(bed=bed_a, ca_file=root, extra_vars=_stack_vars(
                A_SERVER, A_MATRIX, {B_SERVER: b_ip, C_HOST: C_ADDRESS}, acme_ca.stack_vars(bed_a, "admin@" + A_SERVER)))
            stack_b = Stack(bed=bed_b, ca_file=root, extra_vars=dict(_stack_vars(
                B_SERVER, B_MATRIX, {A_SERVER: a_ip, A_MATRIX: a_ip}, acme_ca.stack_vars(bed_b, "admin@" + B_SERVER)),
                # B is found on its own name's port 8448: no delegation document at all.
                nginx_proxy_well_known_server_enabled=False))
            timings["first converges (ACME)"] = _converge_both([stack_a, stack_b], {}, "first converge")
            issued = acme_ca.issued()
            assert issued == 2, "Pebble issued %d certificates for two stacks" % issued

            # Both Synapses trust Pebble's root; A also the foreign peer's CA (made here).
            bed_a.sh(_PEER_CA_SCRIPT.format(d=C_DIR, ca=C_CA, ca_key=C_CA_KEY))
            for bed in (bed_a, bed_b):
                bed.sh("mkdir -p %s && cat > %s <<'EOF'\n%sEOF" % (str(Path(PEBBLE_ROOT).parent), PEBBLE_ROOT, root.read_text()))
            synapse_before = {id(s): s.started_at("hearth-synapse") for s in (stack_a, stack_b)}
            proxy_before = {id(s): s.started_at("hearth-nginx-proxy") for s in (stack_a, stack_b)}
            stack_a.extra_vars["synapse_federation_ca_files"] = [PEBBLE_ROOT, C_CA]
            stack_b.extra_vars["synapse_federation_ca_files"] = [PEBBLE_ROOT]
            timings["converges with Pebble's root"] = _converge_both([stack_a, stack_b], {}, "converge with Pebble's root")
            for stack in (stack_a, stack_b):
                # The new option restarts Synapse and nothing else; no new certificate ordered.
                assert stack.started_at("hearth-synapse") != synapse_before[id(stack)]
                assert stack.started_at("hearth-nginx-proxy") == proxy_before[id(stack)]
                _rc, mounted = stack.bed.engine_cmd("exec hearth-synapse cat /federation-ca/0.pem")
                assert mounted.strip() == root.read_text().strip()
            assert acme_ca.issued() == issued
        # Pebble is gone from here on: the certificates it issued stay valid and served.

        # The peer's names join the stack's own entries in /etc/hosts, never replace them.
        hosts_a = _hosts_file(bed_a, "hearth-synapse")
        assert hosts_a.get(B_SERVER) == b_ip and hosts_a.get("hearth-postgres") == "10.89.91.138", hosts_a
        hosts_b = _hosts_file(bed_b, "hearth-nginx-proxy")
        assert hosts_b.get(A_MATRIX) == a_ip and hosts_b.get("hearth-synapse") == "10.89.91.139", hosts_b

        # Discovery as a peer sees it, over Pebble's certificates: A delegates through
        # .well-known; B has no .well-known/matrix/server and answers on its name's 8448.
        with LoopbackNames([A_SERVER, A_MATRIX, B_SERVER]):
            status, _headers, body = https_get("https://%s:%d/.well-known/matrix/server" % (A_SERVER, bed_a.port(443)), root)
            assert status == 200 and json.loads(body) == {"m.server": "%s:8448" % A_MATRIX}, body
            status, _headers, body = https_get("https://%s:%d/.well-known/matrix/server" % (B_SERVER, bed_b.port(443)), root)
            assert status == 404, (status, body)
            status, _headers, body = https_get("https://%s:%d/.well-known/matrix/client" % (B_SERVER, bed_b.port(443)), root)
            assert status == 200 and B_MATRIX in body.decode(), (status, body)
            status, _headers, body = https_get("https://%s:%d/_matrix/federation/v1/version" % (B_MATRIX, bed_b.port(8448)), root)
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
        # A peer we did not configure, federating with A.
        started = time.monotonic()
        _start_foreign_peer(bed_a, a_ip)
        with _tunnel(bed_a, C_ADDRESS, 8448) as c_port:
            _rc, c_ca = bed_a.sh("cat " + C_CA)
            (tmp_path / "c-ca.pem").write_text(c_ca.strip() + "\n")
            carol = {"url": "https://%s:%d" % (C_HOST, c_port), "password": "pw-" + uuid.uuid4().hex,
                     "ssl": ssl_context(tmp_path / "c-ca.pem"), "user_id": "@carol:%s" % C_SERVER}
            wait_for(lambda: bed_a.engine_cmd("exec %s register_new_matrix_user -u carol -p %s --no-admin -k %s "
                                              "http://127.0.0.1:8008" % (C_CONTAINER, carol["password"], C_SECRET),
                                              check=False)[0] == 0,
                     90, 2, "the foreign peer's Synapse to register a user")
            with LoopbackNames([A_MATRIX, C_HOST]):
                seen = asyncio.run(_conversation(carol, users["alice"]))
        timings["foreign peer: start, invite, join, two messages"] = time.monotonic() - started
        assert len(seen["alice"]) == len(seen["bob"]) == 2, seen

        time.sleep(1.5)  # the proxy flushes its access log once a second
        for bed, peer_ip in ((bed_a, b_ip), (bed_b, a_ip)):
            _rc, count = bed.sh("journalctl -u hearth-nginx-proxy -o cat --no-pager | grep -c '^%s .*/_matrix/federation/' || true"
                                % peer_ip.replace(".", "\\."))
            assert int(count.strip() or 0) > 0, "no federation request from %s in %s's proxy log" % (peer_ip, bed.target.name)
    timings["total"] = time.monotonic() - test_started
    print("federation timings (%s): %s" % (ENGINE, ", ".join("%s %.1f s" % item for item in timings.items())))
