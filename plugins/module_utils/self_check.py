# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of hearth.matrix.self_check: what is probed, how an answer is judged, the report.

The probes go out from the controller, the way a client or another homeserver reaches the
stack (names, ports and TLS as the world sees them); only the units' and containers' states
come from the host (modules/self_check.py). Judging is kept apart from probing: every
``check_*`` function takes what a probe saw and returns one :class:`Result`, so each verdict
and its advice are unit-tested without a network.

Probes that speak HTTP do not verify the certificate: the certificate checks do, once per
name and port, so a bad certificate is reported once, by name, and does not hide whether
the routes behind it work.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

OK = "ok"
WARN = "WARN"
FAIL = "FAIL"

DEFAULT_FEDERATION_PORT = 8448
# 502 Bad Gateway, 503, 504 Gateway Timeout: nginx's answers when an upstream is not there.
_UPSTREAM_DOWN = (502, 503, 504)


@dataclass(frozen=True)
class Result:
    """One line of the report: a stable name, ok/WARN/FAIL, what was seen, how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = "%-4s %s: %s" % (self.status, self.name, self.detail)
        if self.status != OK and self.fix:
            text += " -> fix: " + self.fix
        return text


@dataclass(frozen=True)
class HttpAnswer:
    """What an HTTP probe saw; ``error`` is set (and status 0) when no answer came."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class TlsAnswer:
    """What a verifying TLS handshake saw: ``error`` is why verification failed."""

    error: str = ""
    not_after: Optional[float] = None  # epoch seconds, when verified


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return "%s:%d" % (self.host, self.port)


@dataclass(frozen=True)
class Options:
    """How the controller reaches the stack.

    ``connect_address``: connect here instead of resolving the names (TLS still sends the
    real name); ``port_map``: connect to another port than the public one (NAT, tests).
    """

    connect_address: str = ""
    port_map: Mapping[int, int] = field(default_factory=dict)
    ca_file: str = ""
    timeout: float = 10.0
    expiry_warn_days: int = 30


Fetch = Callable[[Endpoint, str], HttpAnswer]
TlsProbe = Callable[[Endpoint], TlsAnswer]


# --- judging ------------------------------------------------------------------------------

def _json(answer: HttpAnswer) -> Tuple[Optional[Any], str]:
    """The JSON body, or why there is none (status, connection error, not JSON)."""
    if answer.error:
        return None, "no answer (%s)" % answer.error
    if answer.status != 200:
        return None, "HTTP %d" % answer.status
    try:
        return json.loads(answer.body.decode("utf-8")), ""
    except (UnicodeDecodeError, ValueError):
        return None, "HTTP 200 but not JSON: %r" % answer.body[:80]


def check_client_versions(where: Endpoint, answer: HttpAnswer) -> Result:
    name = "client API versions"
    body, why = _json(answer)
    if body is None or not isinstance(body, dict) or not isinstance(body.get("versions"), list):
        return Result(name, FAIL, "https://%s/_matrix/client/versions: %s" % (where, why or "no 'versions' list"),
                      "check that the proxy and Synapse run (systemctl status hearth-nginx-proxy hearth-synapse) "
                      "and that port %d is open to the outside" % where.port)
    return Result(name, OK, "%s answers, newest %s" % (where, body["versions"][-1] if body["versions"] else "none"))


def check_well_known_client(where: Endpoint, answer: HttpAnswer, base_url: str) -> Result:
    name = "well-known client"
    url = "https://%s/.well-known/matrix/client" % where
    fix = ("serve /.well-known/matrix/client on %s (the proxy does so for hearth_server_name; "
           "re-run hearth.matrix.site, or point the name at this host)" % where.host)
    body, why = _json(answer)
    if body is None:
        return Result(name, FAIL, "%s: %s" % (url, why), fix)
    found = body.get("m.homeserver", {}).get("base_url") if isinstance(body, dict) else None
    if not isinstance(found, str) or found.rstrip("/") != base_url.rstrip("/"):
        return Result(name, FAIL, "%s names m.homeserver %r, expected %r" % (url, found, base_url), fix)
    cors = {k.lower(): v for k, v in answer.headers.items()}.get("access-control-allow-origin")
    if cors != "*":
        return Result(name, FAIL, "%s has no 'Access-Control-Allow-Origin: *' (got %r): web clients cannot read it"
                      % (url, cors), "add the CORS header where the file is served")
    return Result(name, OK, "%s names %s, CORS *" % (url, found))


def parse_server(value: Any) -> Optional[Endpoint]:
    """``m.server`` -> host and port (8448 when none, as the server-server spec says)."""
    if not isinstance(value, str) or not value or "/" in value:
        return None
    host, port = value, DEFAULT_FEDERATION_PORT
    if value.startswith("["):  # [IPv6]:port
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _sep, text = value.partition(":")
        if not text.isdigit():
            return None
        port = int(text)
    elif ":" in value:
        return None
    if not host or not 0 < port < 65536:
        return None
    return Endpoint(host.lower(), port)


def check_well_known_server(where: Endpoint, answer: HttpAnswer, server_name: str,
                            optional: bool = False) -> Tuple[Result, Optional[Endpoint]]:
    """The delegation, and where it sends federation (None: not delegated or broken).

    ``optional``: the server name is the matrix hostname, so a 404 is no fault: other servers
    then use the server name on 8448 (nginx_proxy_well_known_server_enabled: false)."""
    name = "well-known server"
    url = "https://%s/.well-known/matrix/server" % where
    if optional and answer.status == 404 and not answer.error:
        return Result(name, OK, "%s: not served (404): other servers use %s:%d"
                      % (url, server_name, DEFAULT_FEDERATION_PORT)), None
    fix = ("serve /.well-known/matrix/server on %s with {\"m.server\": \"<matrix hostname>:<federation port>\"} "
           "(the proxy does so: re-run hearth.matrix.site)" % server_name)
    body, why = _json(answer)
    if body is None:
        return Result(name, FAIL, "%s: %s: other servers cannot find the homeserver of %s"
                      % (url, why, server_name), fix), None
    target = parse_server(body.get("m.server") if isinstance(body, dict) else None)
    if target is None:
        return Result(name, FAIL, "%s: no valid m.server in %r" % (url, body), fix), None
    return Result(name, OK, "%s delegates federation to %s" % (url, target)), target


def check_federation_keys(where: Endpoint, answer: HttpAnswer, server_name: str) -> Result:
    name = "federation keys"
    url = "https://%s/_matrix/key/v2/server" % where
    fix = ("check that port %d is open and reaches the proxy's federation listener "
           "(nginx_proxy_federation_enabled) and that Synapse runs" % where.port)
    body, why = _json(answer)
    if body is None:
        return Result(name, FAIL, "%s: %s" % (url, why), fix)
    if not isinstance(body, dict) or body.get("server_name") != server_name or not body.get("verify_keys"):
        return Result(name, FAIL, "%s: keys of %r, expected server_name %r with verify_keys"
                      % (url, body.get("server_name") if isinstance(body, dict) else body, server_name),
                      "Synapse's server_name must be hearth_server_name")
    return Result(name, OK, "%s: %d signing key(s) of %s" % (url, len(body["verify_keys"]), server_name))


def check_federation_version(where: Endpoint, answer: HttpAnswer) -> Result:
    name = "federation version"
    url = "https://%s/_matrix/federation/v1/version" % where
    body, why = _json(answer)
    server = body.get("server") if isinstance(body, dict) else None
    if not isinstance(server, dict):
        return Result(name, FAIL, "%s: %s" % (url, why or "no 'server' in the answer"),
                      "check that port %d reaches the proxy's federation listener and that Synapse runs" % where.port)
    return Result(name, OK, "%s: %s %s" % (url, server.get("name", "?"), server.get("version", "?")))


_RENEW_FIX = ("renew it: with nginx_proxy_tls_source: acme the timer renews it (journalctl -u "
              "hearth-matrix-acme shows why it has not), with files replace nginx_proxy_tls_certificate_path/"
              "_key_path and re-run hearth.matrix.site (the self-made one is re-issued by a run within 30 "
              "days of its end)")


def check_certificate(where: Endpoint, answer: TlsAnswer, now: float, warn_days: int, trust: str) -> Result:
    name = "certificate %s" % where
    if answer.error and "expired" in answer.error:
        # The name and the chain may be right: only a renewal helps.
        return Result(name, FAIL, "%s serves an expired certificate: %s (trusting %s)" % (where.host, answer.error, trust),
                      _RENEW_FIX)
    if answer.error:
        return Result(name, FAIL, "not valid for %s: %s (trusting %s)" % (where.host, answer.error, trust),
                      "give a certificate for %s from a CA clients trust (nginx_proxy_tls_source: acme, or files "
                      "with nginx_proxy_tls_certificate_path and nginx_proxy_tls_key_path), or add the name to "
                      "nginx_proxy_tls_domains for the self-made one, then re-run hearth.matrix.site; with acme, "
                      "journalctl -u hearth-matrix-acme shows why a renewal failed" % where.host)
    if answer.not_after is None:
        return Result(name, FAIL, "no certificate expiry date", "check the certificate file")
    days = (answer.not_after - now) / 86400.0
    until = time.strftime("%Y-%m-%d", time.gmtime(answer.not_after))
    if days < warn_days:
        return Result(name, WARN, "valid for %s, but expires in %.0f days (%s, threshold %d)"
                      % (where.host, days, until, warn_days), _RENEW_FIX)
    return Result(name, OK, "valid for %s, expires in %.0f days (%s)" % (where.host, days, until))


def check_upstream(route: str, upstream: str, where: Endpoint, path: str, answer: HttpAnswer) -> Result:
    """The proxy reaches ``upstream``: any answer but a connection error or 502-504 from nginx."""
    service = _host_of(upstream)
    name = "proxy reaches %s" % upstream.split("://", 1)[-1]
    url = "https://%s%s" % (where, path)
    if answer.error or answer.status in _UPSTREAM_DOWN:
        return Result(name, FAIL, "%s (%s): %s" % (url, route, answer.error or "HTTP %d" % answer.status),
                      "start %s (systemctl status %s.service; journalctl -u %s.service) and check that the proxy "
                      "and it share a container network" % (service, service, service))
    return Result(name, OK, "%s (%s): HTTP %d" % (url, route, answer.status))


def _host_of(upstream: str) -> str:
    return upstream.split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]


def check_service(name: str, state: Mapping[str, Any]) -> Result:
    """A unit and its container, from modules/self_check.py's answer on the host."""
    label = "service %s" % name
    fix = "systemctl restart %s.service; journalctl -u %s.service -n 50" % (name, name)
    active = state.get("active", "unknown")
    if active != "active":
        return Result(label, FAIL, "unit %s.service is %s" % (name, active), fix)
    if not state.get("container"):
        return Result(label, OK, "unit active (no container of that name)")
    if not state.get("running"):
        return Result(label, FAIL, "unit active but container %s not running" % name, fix)
    health = state.get("health") or "none"
    if health == "none":
        return Result(label, OK, "unit active, container running (no health check)")
    if health != "healthy":
        return Result(label, FAIL, "unit active, container %s is %s" % (name, health),
                      "%s; the health check's output: %s inspect %s" % (fix, state.get("engine", "docker"), name))
    return Result(label, OK, "unit active, container healthy")


# --- what to probe --------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """What the checks need from the topology (module_utils/topology.py)."""

    server_name: str
    matrix_hostname: str
    https_port: int
    element_hostname: str = ""
    # (route, upstream URL, host name served, path) for every enabled upstream of the proxy.
    upstreams: Tuple[Tuple[str, str, str, str], ...] = ()


def plan_from_topology(topology: Mapping[str, Any], https_port: int) -> Plan:
    matrix_hostname = topology["matrix_hostname"]
    proxy = topology.get("proxy") or {}
    upstreams: List[Tuple[str, str, str, str]] = []
    if proxy:
        upstreams.append(("client API", proxy["client_upstream"], matrix_hostname, "/_matrix/client/versions"))
        upstreams.append(("federation", proxy["federation_upstream"], matrix_hostname, "/_matrix/federation/v1/version"))
        if proxy.get("identity_upstream"):
            upstreams.append(("identity", proxy["identity_upstream"], matrix_hostname, "/_matrix/identity/v2"))
    element = proxy.get("element") or {}
    if element:
        upstreams.append(("Element", element["upstream"], element["hostname"], "/config.json"))
    # One check per upstream: the client and federation routes often share Synapse.
    seen: Dict[str, Tuple[str, str, str, str]] = {}
    for item in upstreams:
        if item[1] in seen:
            first = seen[item[1]]
            seen[item[1]] = (first[0] + ", " + item[0],) + first[1:]
        else:
            seen[item[1]] = item
    return Plan(server_name=topology["server_name"], matrix_hostname=matrix_hostname, https_port=https_port,
                element_hostname=element.get("hostname", ""),
                upstreams=tuple(seen.values()))


def run_checks(plan: Plan, fetch: Fetch, tls_probe: TlsProbe, now: float, warn_days: int,
               trust: str) -> List[Result]:
    """Every outside check, in report order."""
    matrix = Endpoint(plan.matrix_hostname, plan.https_port)
    delegating = Endpoint(plan.server_name, plan.https_port)
    results = [check_client_versions(matrix, fetch(matrix, "/_matrix/client/versions")),
               check_well_known_client(delegating, fetch(delegating, "/.well-known/matrix/client"),
                                       "https://%s%s" % (plan.matrix_hostname,
                                                         "" if plan.https_port == 443 else ":%d" % plan.https_port))]
    well_known, delegated = check_well_known_server(delegating, fetch(delegating, "/.well-known/matrix/server"),
                                                    plan.server_name, plan.server_name == plan.matrix_hostname)
    results.append(well_known)
    # Without a delegation, other servers try the server name on 8448 (the spec's fallback).
    federation = delegated or Endpoint(plan.server_name, DEFAULT_FEDERATION_PORT)
    results.append(check_federation_keys(federation, fetch(federation, "/_matrix/key/v2/server"), plan.server_name))
    results.append(check_federation_version(federation, fetch(federation, "/_matrix/federation/v1/version")))
    names = [matrix, delegating, federation]
    if plan.element_hostname:
        names.append(Endpoint(plan.element_hostname, plan.https_port))
    for where in _unique(names):
        results.append(check_certificate(where, tls_probe(where), now, warn_days, trust))
    for route, upstream, host, path in plan.upstreams:
        where = Endpoint(host, plan.https_port)
        results.append(check_upstream(route, upstream, where, path, fetch(where, path)))
    return results


def _unique(endpoints: Sequence[Endpoint]) -> List[Endpoint]:
    result: List[Endpoint] = []
    for endpoint in endpoints:
        if endpoint not in result:
            result.append(endpoint)
    return result


def service_results(services: Mapping[str, Mapping[str, Any]]) -> List[Result]:
    return [check_service(name, state) for name, state in services.items()]


def report(results: Sequence[Result]) -> List[str]:
    """The report's lines, then a summary line."""
    lines = [result.line() for result in results]
    failed = [r.name for r in results if r.status == FAIL]
    warned = [r.name for r in results if r.status == WARN]
    summary = "%d checks: %d failed%s, %d warning(s)" % (len(results), len(failed),
                                                         (" (" + ", ".join(failed) + ")") if failed else "",
                                                         len(warned))
    return lines + [summary]


# --- probing (the network) ------------------------------------------------------------------

class Prober:
    """HTTPS probes and TLS handshakes as ``options`` says to reach the stack."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def _socket(self, where: Endpoint) -> socket.socket:
        address = self.options.connect_address or where.host
        port = int(self.options.port_map.get(where.port, where.port))
        return socket.create_connection((address, port), timeout=self.options.timeout)

    def fetch(self, where: Endpoint, path: str) -> HttpAnswer:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate checks verify, see the module docstring
        try:
            raw = self._socket(where)
            connection = http.client.HTTPSConnection(where.host, where.port, timeout=self.options.timeout)
            connection.sock = context.wrap_socket(raw, server_hostname=_sni(where.host))
            try:
                connection.request("GET", path, headers={"User-Agent": "hearth.matrix self_check",
                                                         "Accept": "application/json"})
                response = connection.getresponse()
                return HttpAnswer(status=response.status, headers=dict(response.getheaders()),
                                  body=response.read(1024 * 1024))
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            return HttpAnswer(error=_error_text(error))

    def tls(self, where: Endpoint) -> TlsAnswer:
        context = ssl.create_default_context(cafile=self.options.ca_file or None)
        try:
            with self._socket(where) as raw:
                with context.wrap_socket(raw, server_hostname=where.host) as tls:
                    cert = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as error:
            return TlsAnswer(error=error.verify_message or str(error))
        except (OSError, ssl.SSLError) as error:
            return TlsAnswer(error=_error_text(error))
        not_after = cert.get("notAfter")
        return TlsAnswer(not_after=float(ssl.cert_time_to_seconds(not_after)) if not_after else None)


def _sni(host: str) -> Optional[str]:
    """No SNI for an IP address (TLS forbids it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _error_text(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    return text.replace("\n", " ")[:200]


def parse_port_map(raw: Any) -> Dict[int, int]:
    """``{public port: port to connect to}``; keys may be strings (YAML, -e JSON)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("port_map must be a mapping of port to port, got %r" % (raw,))
    result: Dict[int, int] = {}
    for key, value in raw.items():
        try:
            public, actual = int(key), int(value)
        except (TypeError, ValueError):
            raise ValueError("port_map must map port numbers to port numbers, got %r: %r" % (key, value)) from None
        if not (0 < public < 65536 and 0 < actual < 65536):
            raise ValueError("port_map ports must be within 1-65535, got %r: %r" % (key, value))
        result[public] = actual
    return result
