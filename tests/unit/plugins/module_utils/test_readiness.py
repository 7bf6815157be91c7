# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-side readiness probes: the declaration, the unit line, and the probe program run
for real against small servers on loopback."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.container import Probe, SpecError, container_spec_from_dict, parse_probe
from ansible_collections.hearth.matrix.plugins.module_utils.readiness import HOST_NETNS, probe_argv
from ansible_collections.hearth.matrix.plugins.module_utils.unit import HostPaths, UnitSpec, readiness_argv, readiness_line, render_unit

PODMAN = HostPaths(engine="/usr/bin/podman", sh="/bin/sh", python="/usr/bin/python3")


def test_parse_each_kind() -> None:
    assert parse_probe(None) is None
    assert parse_probe({"kind": "tcp", "port": "8080"}) == Probe(kind="tcp", port=8080)
    assert parse_probe({"kind": "http", "port": 8008, "path": "/health"}) == Probe(kind="http", port=8008, path="/health")
    assert parse_probe({"kind": "postgres", "port": 5432, "user": "synapse"}) == Probe(
        kind="postgres", port=5432, user="synapse", database="synapse")


@pytest.mark.parametrize("raw, field_name", [
    ("tcp", "healthcheck.probe"),
    ({"kind": "udp", "port": 1}, "healthcheck.probe.kind"),
    ({"kind": "tcp", "port": 0}, "healthcheck.probe.port"),
    ({"kind": "tcp", "port": 70000}, "healthcheck.probe.port"),
    ({"kind": "tcp", "port": True}, "healthcheck.probe.port"),
    ({"kind": "http", "port": 80}, "healthcheck.probe.path"),
    ({"kind": "http", "port": 80, "path": "health check"}, "healthcheck.probe.path"),
    ({"kind": "postgres", "port": 5432, "user": "a; drop"}, "healthcheck.probe.user"),
    ({"kind": "tcp", "port": 1, "timeout": 3}, "healthcheck.probe"),
])
def test_bad_declarations_name_the_field(raw: Any, field_name: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_probe(raw)
    assert caught.value.field == field_name


def test_container_spec_reports_a_bad_probe_as_a_spec_error() -> None:
    with pytest.raises(SpecError) as caught:
        container_spec_from_dict("hearth-x", {"image": "i", "user": "1:1",
                                              "healthcheck": {"command": ["true"], "probe": {"kind": "tcp", "port": -1}}})
    assert caught.value.field == "healthcheck.probe.port"


def _spec(engine: str, paths: HostPaths, address: Any = "10.89.91.139", probe: Any = None) -> UnitSpec:
    check = {"command": ["python3", "-c", "pass"]}
    if probe is not None:
        check["probe"] = probe
    raw = {"image": "i", "user": "991:991", "networks": ["hearth"], "healthcheck": check}
    if address:
        raw["address"] = address
    return UnitSpec(container=container_spec_from_dict("hearth-synapse", raw), engine=engine, paths=paths, ready_timeout=60)


HTTP = {"kind": "http", "port": 8008, "path": "/health"}


def test_probe_from_the_host_when_everything_needed_is_there() -> None:
    argv = readiness_argv(_spec("podman", PODMAN, probe=HTTP))
    assert argv is not None and argv[:2] == ["/usr/bin/python3", "-c"]
    assert argv[3:] == ["10.89.91.139", "8008", "http", "/health", "-", "60"]
    text = render_unit(_spec("podman", PODMAN, probe=HTTP))
    assert "exec hearth-synapse" not in text and "ExecStartPost=/usr/bin/python3 -c " in text


@pytest.mark.parametrize("engine, paths, address, probe", [
    ("podman", PODMAN, "10.89.91.139", None),                                       # nothing declared
    ("podman", PODMAN, None, HTTP),                                                 # no fixed address
    ("podman", HostPaths(engine="/usr/bin/podman", sh="/bin/sh"), "10.89.91.139", HTTP),  # no python3 on the host
    ("podman_rootless", PODMAN, "10.89.91.139", HTTP),                              # the host cannot reach it
])
def test_probe_through_the_engine_otherwise(engine: str, paths: HostPaths, address: Any, probe: Any) -> None:
    spec = _spec("podman", paths, address, probe)
    spec = UnitSpec(container=spec.container, engine=engine, paths=paths, ready_timeout=60)
    argv = readiness_argv(spec)
    assert argv is not None and argv[:2] == ["/bin/sh", "-c"]
    assert "/usr/bin/podman exec hearth-synapse python3 -c pass" in argv[2]


def test_docker_probe_joins_the_host_network_with_full_privileges() -> None:
    """A docker unit's processes have no network (PrivateNetwork=): the probe joins PID 1's
    network namespace, which only the "+" prefix (no sandbox, all capabilities) allows."""
    spec = _spec("docker", PODMAN, probe=HTTP)
    argv = readiness_argv(spec)
    assert argv is not None and argv[3:] == ["10.89.91.139", "8008", "http", "/health", "-", "60", HOST_NETNS]
    text = render_unit(spec)
    assert "PrivateNetwork=yes" in text                        # the engine client keeps its sandbox
    assert "ExecStartPost=+/usr/bin/python3 -c " in text and " exec hearth-synapse" not in text
    podman_line = readiness_line(_spec("podman", PODMAN, probe=HTTP))
    assert podman_line is not None and podman_line.startswith("ExecStartPost=/usr/bin/python3 ")
    assert HOST_NETNS not in podman_line


def test_no_health_check_no_readiness() -> None:
    spec = UnitSpec(container=container_spec_from_dict("hearth-x", {"image": "i", "user": "1:1"}),
                    engine="docker", paths=PODMAN)
    assert readiness_argv(spec) is None


# --- the probe program, for real -------------------------------------------------------------

@pytest.fixture()
def server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """A loopback TCP server that hands each connection to ``handler``; returns its port."""
    sockets: List[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sockets.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _addr = listener.accept()
                except OSError:
                    return
                with conn:
                    try:
                        handler(conn)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in sockets:
        listener.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(probe: Probe, timeout: int = 1, env: Any = None, netns: str = "") -> Tuple[int, str]:
    argv = probe_argv(sys.executable, "127.0.0.1", probe, timeout, netns)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30,
                          env=env, check=False)
    return proc.returncode, proc.stdout


def _http(status: int) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 %d X\r\nContent-Length: 0\r\n\r\n" % status)
    return handle


def _postgres(first: bytes, fields: bytes = b"") -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        length, protocol = struct.unpack("!ii", conn.recv(8))
        assert protocol == 196608
        conn.recv(length - 8)
        conn.sendall(first + struct.pack("!i", 4 + len(fields)) + fields)
    return handle


def test_tcp_ready_once_something_listens(server: Any) -> None:
    assert _run(Probe(kind="tcp", port=server(lambda conn: None)))[0] == 0
    rc, output = _run(Probe(kind="tcp", port=_free_port()))
    assert rc != 0 and "not ready after 1s" in output


def test_http_ready_below_500_only(server: Any) -> None:
    assert _run(Probe(kind="http", port=server(_http(200)), path="/health"))[0] == 0
    assert _run(Probe(kind="http", port=server(_http(404)), path="/health"))[0] == 0
    assert _run(Probe(kind="http", port=server(_http(503)), path="/health"))[0] != 0


def test_postgres_ready_unless_starting_up(server: Any) -> None:
    auth_request = _postgres(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256\0\0")
    assert _run(Probe(kind="postgres", port=server(auth_request), user="synapse", database="synapse"))[0] == 0
    no_role = _postgres(b"E", b"SFATAL\0C28000\0Mno such role\0\0")
    assert _run(Probe(kind="postgres", port=server(no_role), user="synapse", database="synapse"))[0] == 0
    starting = _postgres(b"E", b"SFATAL\0C57P03\0Mthe database system is starting up\0\0")
    assert _run(Probe(kind="postgres", port=server(starting), user="synapse", database="synapse"))[0] != 0


def test_the_wait_ends_when_the_main_process_is_gone() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env = dict(os.environ, MAINPID=str(dead.pid))
    rc, output = _run(Probe(kind="tcp", port=_free_port()), timeout=30, env=env)
    assert rc != 0 and "exited before it was ready" in output


def test_a_path_that_is_no_network_namespace_is_refused(server: Any) -> None:
    rc, output = _run(Probe(kind="tcp", port=server(lambda conn: None)), netns=os.devnull)
    assert rc != 0 and "cannot join %s" % os.devnull in output


@pytest.mark.skipif(os.geteuid() != 0, reason="joining a network namespace needs CAP_SYS_ADMIN (root)")
def test_the_probe_joins_a_network_namespace(server: Any) -> None:
    """Its own namespace here: the loopback server is reached from inside it."""
    assert _run(Probe(kind="tcp", port=server(lambda conn: None)), netns="/proc/self/ns/net")[0] == 0
