# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self-check's verdicts and report, from recorded answers; the prober against a real TLS
server on loopback with certificates the openssl CLI makes."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils import self_check as sc
from ansible_collections.hearth.matrix.plugins.module_utils.topology import compute_topology

NOW = 1_800_000_000.0
MATRIX = sc.Endpoint("matrix.example.org", 443)
APEX = sc.Endpoint("example.org", 443)


def ok_json(body: Any, **headers: str) -> sc.HttpAnswer:
    return sc.HttpAnswer(status=200, headers=headers, body=json.dumps(body).encode())


# --- verdicts -------------------------------------------------------------------------------

def test_client_versions_ok_and_down() -> None:
    assert sc.check_client_versions(MATRIX, ok_json({"versions": ["r0.6.1", "v1.11"]})).status == sc.OK
    down = sc.check_client_versions(MATRIX, sc.HttpAnswer(error="Connection refused"))
    assert down.status == sc.FAIL and "Connection refused" in down.detail and "port 443" in down.fix
    assert sc.check_client_versions(MATRIX, ok_json({"no": 1})).status == sc.FAIL


def test_well_known_client_needs_the_base_url_and_cors() -> None:
    body = {"m.homeserver": {"base_url": "https://matrix.example.org"}}
    base = "https://matrix.example.org"
    assert sc.check_well_known_client(APEX, ok_json(body, **{"Access-Control-Allow-Origin": "*"}), base).status == sc.OK
    no_cors = sc.check_well_known_client(APEX, ok_json(body), base)
    assert no_cors.status == sc.FAIL and "Access-Control-Allow-Origin" in no_cors.detail
    wrong = sc.check_well_known_client(APEX, ok_json({"m.homeserver": {"base_url": "https://x"}},
                                                     **{"access-control-allow-origin": "*"}), base)
    assert wrong.status == sc.FAIL and "'https://x'" in wrong.detail
    missing = sc.check_well_known_client(APEX, sc.HttpAnswer(status=404, body=b"<html>"), base)
    assert missing.status == sc.FAIL and "HTTP 404" in missing.detail
    not_json = sc.check_well_known_client(APEX, sc.HttpAnswer(status=200, body=b"<html>"), base)
    assert "not JSON" in not_json.detail


@pytest.mark.parametrize("value, expected", [
    ("matrix.example.org:8448", sc.Endpoint("matrix.example.org", 8448)),
    ("Matrix.Example.org", sc.Endpoint("matrix.example.org", 8448)),
    ("matrix.example.org:443", sc.Endpoint("matrix.example.org", 443)),
    ("[2001:db8::1]:8449", sc.Endpoint("2001:db8::1", 8449)),
    ("[2001:db8::1]", sc.Endpoint("2001:db8::1", 8448)),
    ("", None), ("a:b", None), ("a:0", None), ("a:70000", None), ("https://a", None), (5, None),
    ("2001:db8::1", None), ("[::1", None), ("[::1]x", None),
])
def test_parse_server(value: Any, expected: Any) -> None:
    assert sc.parse_server(value) == expected


def test_well_known_server_gives_the_delegation() -> None:
    result, target = sc.check_well_known_server(APEX, ok_json({"m.server": "matrix.example.org:8448"}), "example.org")
    assert result.status == sc.OK and target == sc.Endpoint("matrix.example.org", 8448)
    result, target = sc.check_well_known_server(APEX, sc.HttpAnswer(status=404), "example.org")
    assert result.status == sc.FAIL and target is None and "cannot find the homeserver of example.org" in result.detail
    assert "m.server" in result.fix
    result, target = sc.check_well_known_server(APEX, ok_json({"m.server": "a/b"}), "example.org")
    assert result.status == sc.FAIL and target is None
    # A server name that is the matrix hostname needs no delegation: 404 means port 8448.
    result, target = sc.check_well_known_server(APEX, sc.HttpAnswer(status=404), "example.org", optional=True)
    assert result.status == sc.OK and target is None and "example.org:8448" in result.detail
    result, target = sc.check_well_known_server(APEX, sc.HttpAnswer(status=500), "example.org", optional=True)
    assert result.status == sc.FAIL and target is None


def test_federation_checks() -> None:
    fed = sc.Endpoint("matrix.example.org", 8448)
    keys = {"server_name": "example.org", "verify_keys": {"ed25519:a": {"key": "x"}}}
    assert sc.check_federation_keys(fed, ok_json(keys), "example.org").status == sc.OK
    other = sc.check_federation_keys(fed, ok_json(dict(keys, server_name="other.org")), "example.org")
    assert other.status == sc.FAIL and "'other.org'" in other.detail
    closed = sc.check_federation_keys(fed, sc.HttpAnswer(error="timed out"), "example.org")
    assert closed.status == sc.FAIL and "port 8448" in closed.fix
    assert sc.check_federation_version(fed, ok_json({"server": {"name": "Synapse", "version": "1"}})).status == sc.OK
    assert sc.check_federation_version(fed, ok_json({})).status == sc.FAIL


def test_certificate_verdicts() -> None:
    bad = sc.check_certificate(MATRIX, sc.TlsAnswer(error="Hostname mismatch"), NOW, 30, "ca.crt")
    assert bad.status == sc.FAIL and bad.name == "certificate matrix.example.org:443"
    assert "nginx_proxy_tls_certificate_path" in bad.fix and "ca.crt" in bad.detail
    soon = sc.check_certificate(MATRIX, sc.TlsAnswer(not_after=NOW + 10 * 86400), NOW, 30, "x")
    assert soon.status == sc.WARN and "10 days" in soon.detail and "threshold 30" in soon.detail
    fine = sc.check_certificate(MATRIX, sc.TlsAnswer(not_after=NOW + 90 * 86400), NOW, 30, "x")
    assert fine.status == sc.OK and "90 days" in fine.detail
    assert sc.check_certificate(MATRIX, sc.TlsAnswer(), NOW, 30, "x").status == sc.FAIL
    # An expired certificate fails the verifying handshake: reported under the endpoint's name,
    # with the ACME timer's journal as the place to look.
    expired = sc.check_certificate(MATRIX, sc.TlsAnswer(error="certificate has expired"), NOW, 30, "ca.crt")
    assert expired.status == sc.FAIL and expired.name == "certificate matrix.example.org:443"
    assert "certificate has expired" in expired.detail and "hearth-matrix-acme" in expired.fix
    assert "matrix.example.org serves an expired certificate" in expired.detail and expired.fix.startswith("renew it")


@pytest.mark.parametrize("answer, status", [
    (sc.HttpAnswer(status=200), sc.OK), (sc.HttpAnswer(status=404), sc.OK), (sc.HttpAnswer(status=401), sc.OK),
    (sc.HttpAnswer(status=502), sc.FAIL), (sc.HttpAnswer(status=504), sc.FAIL), (sc.HttpAnswer(error="reset"), sc.FAIL),
])
def test_upstream_is_down_only_on_gateway_errors(answer: sc.HttpAnswer, status: str) -> None:
    result = sc.check_upstream("client API", "http://hearth-synapse:8008", MATRIX, "/_matrix/client/versions", answer)
    assert result.status == status and result.name == "proxy reaches hearth-synapse:8008"
    if status == sc.FAIL:
        assert "systemctl status hearth-synapse.service" in result.fix


@pytest.mark.parametrize("state, status, words", [
    ({"active": "active", "container": True, "running": True, "health": "healthy"}, sc.OK, "healthy"),
    ({"active": "active", "container": True, "running": True, "health": "none"}, sc.OK, "no health check"),
    ({"active": "active", "container": False}, sc.OK, "no container"),
    ({"active": "inactive", "container": True, "running": False}, sc.FAIL, "is inactive"),
    ({"active": "failed"}, sc.FAIL, "is failed"),
    ({"active": "active", "container": True, "running": False}, sc.FAIL, "not running"),
    ({"active": "active", "container": True, "running": True, "health": "unhealthy"}, sc.FAIL, "is unhealthy"),
])
def test_service_verdicts(state: Dict[str, Any], status: str, words: str) -> None:
    result = sc.check_service("hearth-synapse", state)
    assert result.status == status and words in result.detail and result.name == "service hearth-synapse"
    if status == sc.FAIL:
        assert result.fix.startswith("systemctl restart hearth-synapse.service")


def test_report_lines_and_summary() -> None:
    results = [sc.Result("a", sc.OK, "fine", "unused"), sc.Result("b", sc.FAIL, "broken", "do x"),
               sc.Result("c", sc.WARN, "soon", "do y")]
    lines = sc.report(results)
    assert lines == ["ok   a: fine", "FAIL b: broken -> fix: do x", "WARN c: soon -> fix: do y",
                     "3 checks: 1 failed (b), 1 warning(s)"]


# --- plan and run ---------------------------------------------------------------------------

def topology(**components: bool) -> Dict[str, Any]:
    enabled = {"postgres": True, "synapse": True, "nginx_proxy": True}
    enabled.update(components)
    return compute_topology({"server_name": "example.org", "components": enabled})


def test_plan_names_every_enabled_upstream_once() -> None:
    plan = sc.plan_from_topology(topology(), 443)
    assert plan.upstreams == (("client API, federation", "http://hearth-synapse:8008", "matrix.example.org",
                               "/_matrix/client/versions"),)
    plan = sc.plan_from_topology(topology(corporal=True, identity=True, element=True), 8443)
    assert [u[1] for u in plan.upstreams] == ["http://hearth-corporal:41080", "http://hearth-synapse:8008",
                                              "http://hearth-identity:8090", "http://hearth-element:8080"]
    assert plan.element_hostname == "element.example.org" and plan.https_port == 8443
    assert sc.plan_from_topology(topology(nginx_proxy=False), 443).upstreams == ()


class FakeStack:
    """Answers like a healthy stack; ``broken`` paths answer 404, ``bad_tls`` names fail TLS."""

    def __init__(self) -> None:
        self.broken: List[str] = []
        self.bad_tls: List[str] = []
        self.fetched: List[Tuple[str, str]] = []

    def fetch(self, where: sc.Endpoint, path: str) -> sc.HttpAnswer:
        self.fetched.append((str(where), path))
        if path in self.broken:
            return sc.HttpAnswer(status=404)
        bodies = {
            "/_matrix/client/versions": {"versions": ["v1.11"]},
            "/.well-known/matrix/client": {"m.homeserver": {"base_url": "https://matrix.example.org"}},
            "/.well-known/matrix/server": {"m.server": "matrix.example.org:8448"},
            "/_matrix/key/v2/server": {"server_name": "example.org", "verify_keys": {"ed25519:a": {}}},
            "/_matrix/federation/v1/version": {"server": {"name": "Synapse", "version": "1"}},
        }
        return ok_json(bodies.get(path, {}), **{"Access-Control-Allow-Origin": "*"})

    def tls(self, where: sc.Endpoint) -> sc.TlsAnswer:
        if where.host in self.bad_tls:
            return sc.TlsAnswer(error="Hostname mismatch, certificate is not valid for %r." % where.host)
        return sc.TlsAnswer(not_after=NOW + 200 * 86400)


def test_run_checks_healthy_then_broken() -> None:
    plan = sc.plan_from_topology(topology(element=True), 443)
    stack = FakeStack()
    results = sc.run_checks(plan, stack.fetch, stack.tls, NOW, 30, "ca")
    assert all(r.status == sc.OK for r in results), sc.report(results)
    names = [r.name for r in results]
    assert names == ["client API versions", "well-known client", "well-known server", "federation keys",
                     "federation version", "certificate matrix.example.org:443", "certificate example.org:443",
                     "certificate matrix.example.org:8448", "certificate element.example.org:443",
                     "proxy reaches hearth-synapse:8008", "proxy reaches hearth-element:8080"]
    assert ("matrix.example.org:8448", "/_matrix/key/v2/server") in stack.fetched

    stack.broken.append("/.well-known/matrix/server")
    stack.bad_tls.append("matrix.example.org")
    failed = {r.name for r in sc.run_checks(plan, stack.fetch, stack.tls, NOW, 30, "ca") if r.status == sc.FAIL}
    # Without a delegation, federation falls back to the server name on 8448.
    assert failed == {"well-known server", "certificate matrix.example.org:443"}
    assert ("example.org:8448", "/_matrix/key/v2/server") in stack.fetched


def test_port_map_parsing() -> None:
    assert sc.parse_port_map({"443": "10443", 8448: 18448}) == {443: 10443, 8448: 18448}
    assert sc.parse_port_map(None) == {}
    with pytest.raises(ValueError, match="port_map must map port numbers"):
        sc.parse_port_map({"https": 1})
    with pytest.raises(ValueError, match="within 1-65535"):
        sc.parse_port_map({443: 0})
    with pytest.raises(ValueError, match="mapping"):
        sc.parse_port_map([443])


# --- the prober, for real, on loopback ------------------------------------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI makes the test certificates")


def _make_cert(directory: Path, name: str, days: int) -> Tuple[Path, Path]:
    assert OPENSSL is not None
    key, cert = directory / ("%s.key" % name), directory / ("%s.crt" % name)
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=%s" % name,
                    "-addext", "subjectAltName=DNS:%s" % name], check=True, capture_output=True)
    return cert, key


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (the stdlib's name)
        body = json.dumps({"path": self.path, "host": self.headers.get("Host")}).encode()
        self.send_response(200 if self.path != "/gone" else 502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(name="tls_server")
def fixture_tls_server(tmp_path: Path) -> Iterator[Tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate for matrix.example.test."""
    cert, key = _make_cert(tmp_path, "matrix.example.test", 45)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


@needs_openssl
def test_prober_reaches_the_names_through_the_port_map(tls_server: Tuple[int, Path]) -> None:
    port, cert = tls_server
    prober = sc.Prober(sc.Options(connect_address="127.0.0.1", port_map={8448: port}, ca_file=str(cert), timeout=5))
    where = sc.Endpoint("matrix.example.test", 8448)
    answer = prober.fetch(where, "/_matrix/key/v2/server")
    assert answer.status == 200 and json.loads(answer.body) == {"path": "/_matrix/key/v2/server",
                                                                "host": "matrix.example.test:8448"}
    assert prober.fetch(where, "/gone").status == 502
    tls = prober.tls(where)
    assert tls.error == "" and tls.not_after is not None
    assert 44 <= (tls.not_after - time.time()) / 86400 <= 45
    # Another name: the same server's certificate does not cover it.
    wrong = prober.tls(sc.Endpoint("other.example.test", 8448))
    assert "other.example.test" in wrong.error or "mismatch" in wrong.error.lower(), wrong
    # Not trusted without the CA file (the system store does not know it).
    untrusted = sc.Prober(sc.Options(connect_address="127.0.0.1", port_map={8448: port}, timeout=5)).tls(where)
    assert "self-signed" in untrusted.error or "verify" in untrusted.error, untrusted


def test_prober_reports_a_closed_port() -> None:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    prober = sc.Prober(sc.Options(connect_address="127.0.0.1", port_map={443: closed}, timeout=2))
    answer = prober.fetch(sc.Endpoint("matrix.example.test", 443), "/")
    assert answer.status == 0 and answer.error
    assert prober.tls(sc.Endpoint("matrix.example.test", 443)).error
