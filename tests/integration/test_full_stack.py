# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole stack of issue 5 (mailer, identity, corporal, element) wired by hearth.matrix.site.

One target per engine, converged first with every component enabled; the tests then run in
file order and the later ones change the combination of enabled components (each converge
builds on the state the previous one left, which is also what an operator does).

Stand-ins, said plainly:
- corporal: the real matrix-corporal image cannot be built or pulled here. The corporal role
  runs ``localhost/hearth/gateway-standin:test`` instead (tests/bed/images/gateway-standin):
  a tiny Python reverse proxy that is NOT corporal and enforces no policy. It reads the
  config.json the role rendered for corporal, forwards to the homeserver API named there and
  records each request path, which proves the proxy's client-API route live. Everything else
  about corporal is checked with real parts: its config against the documented schema, and
  a shared-secret-auth login against the real Synapse with the secret corporal was given.
- element: Element's web bundle is not obtainable either; the element role serves its
  placeholder page (``element_placeholder``) from the bed's nginx image. config.json is the
  real generated file.
- mail: Exim (real) relays to a throw-away SMTP sink (smtp_sink.py) the tests start in a
  container on the stack network of the target.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Tuple

import jsonschema
import pytest
import yaml

from conftest import (ADMIN_PASSWORD, ADMIN_USER, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, Stack, converged_stack,
                      target_factory)
from full_stack_client import (header, https_json, message_texts, password_login, shared_secret_login,
                               shared_secret_token)
from harness import (FULL_STACK_VARS, PUBLIC_IDENTITY, REPO_ROOT, SMTP_SINK_DIR_ON_TARGET, SMTP_SINK_NAME, SMTP_SINK_SCRIPT,
                     SMTP_SINK_STORE, SMTP_SINK_VARS, LoopbackNames, PlaybookRun, failure_messages, http_get_no_redirect, https_get, quote,
                     smtp_sink_run_args, ssl_context, wait_for)
from matrix_client import round_trip

ELEMENT_HOSTNAME = "element.%s" % SERVER_NAME
NAMES = [MATRIX_HOSTNAME, SERVER_NAME, ELEMENT_HOSTNAME]
OUR_IDENTITY = "https://%s" % MATRIX_HOSTNAME

SERVICES = {
    "postgres": "hearth-postgres", "synapse": "hearth-synapse", "nginx_proxy": "hearth-nginx-proxy",
    "mailer": "hearth-mailer", "identity": "hearth-identity", "corporal": "hearth-corporal",
    "element": "hearth-element",
}
OPTIONAL = ("mailer", "identity", "corporal", "element")
BASE_DIR = "/opt/hearth-matrix"

STANDIN_RECORD = BASE_DIR + "/corporal/var/standin-requests.log"
CORPORAL_SCHEMA = REPO_ROOT / "roles" / "corporal" / "files" / "config.schema.json"

# The full stack of harness.FULL_STACK_VARS, with Exim relaying to the tests' SMTP sink.
FULL_VARS: Dict[str, Any] = dict(FULL_STACK_VARS, **SMTP_SINK_VARS)


def _flags(enabled: FrozenSet[str]) -> Dict[str, bool]:
    return {"hearth_%s_enabled" % name: name in enabled for name in OPTIONAL}


ALL = frozenset(OPTIONAL)


@dataclass
class FullStack:
    stack: Stack
    enabled: FrozenSet[str]

    @property
    def bed(self) -> Any:
        return self.stack.bed

    @property
    def engine(self) -> str:
        return self.stack.engine

    def url(self, host: str, path: str) -> str:
        return "https://%s:%d%s" % (host, self.bed.port(443), path)

    def converge_to(self, enabled: FrozenSet[str]) -> None:
        self.stack.extra_vars.update(_flags(enabled))
        run = self.stack.converge()
        assert run.rc == 0 and run.failed == 0, "converge to %s failed:\n%s" % (sorted(enabled), run.tail(80))
        self.enabled = enabled

    def read(self, path: str) -> str:
        return self.bed.sh("cat %s" % path)[1]


def _start_smtp_sink(full: FullStack) -> None:
    """The sink in a container on the stack network, so Exim reaches it by name."""
    bed = full.bed
    bed.sh("mkdir -p %s" % SMTP_SINK_DIR_ON_TARGET)
    results = bed.hosts().all.copy(src=str(SMTP_SINK_SCRIPT), dest=SMTP_SINK_DIR_ON_TARGET + "/smtp_sink.py", mode="0644")
    assert not next(iter(results.values())).get("failed"), results
    bed.engine_cmd("rm -f %s" % SMTP_SINK_NAME, check=False)
    bed.engine_cmd(quote(smtp_sink_run_args()))
    wait_for(lambda: full.bed.engine_cmd("exec %s test -f %s" % (SMTP_SINK_NAME, SMTP_SINK_STORE), check=False)[0] == 0,
             30, 1, "SMTP sink up")


def _sink_messages(full: FullStack) -> List[Dict[str, Any]]:
    _rc, out = full.bed.engine_cmd("exec %s cat %s" % (SMTP_SINK_NAME, SMTP_SINK_STORE))
    return [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]


@pytest.fixture(scope="module")
def full(engine: str, bed_images: Dict[str, Any]) -> Iterator[FullStack]:
    """A target converged with every component on (the first combination of the matrix)."""
    with target_factory(engine, "full") as bed_target:
        stack = converged_stack(bed_target, dict(FULL_VARS, **_flags(ALL)))
        full_stack = FullStack(stack=stack, enabled=ALL)
        _start_smtp_sink(full_stack)
        yield full_stack


def _client_round_trip(full: FullStack) -> None:
    with LoopbackNames(NAMES):
        result = round_trip(full.stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                            ssl_context(full.stack.ca_file))
    assert result.body in result.seen_by_second_session


def _synapse_config(full: FullStack) -> Dict[str, Any]:
    return yaml.safe_load(full.read(BASE_DIR + "/synapse/config/homeserver.yaml"))


def _standin_record(full: FullStack) -> str:
    return full.bed.sh("cat %s 2>/dev/null || true" % STANDIN_RECORD)[1]


def assert_consistent(full: FullStack) -> None:
    """Units, containers, Synapse's config, well-known, Element and the proxy agree with the
    enabled set; the base client round trip passes."""
    enabled = full.enabled | {"postgres", "synapse", "nginx_proxy"}
    for component, service in SERVICES.items():
        unit = "/etc/systemd/system/%s.service" % service
        inspect_rc, _out = full.bed.engine_cmd("container inspect %s" % service, check=False)
        if component in enabled:
            rc, state = full.bed.sh("systemctl is-active %s.service" % service, check=False)
            assert rc == 0, "%s should run: %s" % (service, state)
            assert inspect_rc == 0, "%s: no container" % service
        else:
            assert full.bed.sh("test -e %s" % unit, check=False)[0] != 0, "%s should be removed" % unit
            assert inspect_rc != 0, "container %s should be removed" % service

    identity = OUR_IDENTITY if "identity" in enabled else PUBLIC_IDENTITY
    config = _synapse_config(full)
    assert config["account_threepid_delegates"]["msisdn"] == identity
    assert ("email" in config) == ("mailer" in enabled)
    if "mailer" in enabled:
        assert (config["email"]["smtp_host"], config["email"]["smtp_port"]) == ("hearth-mailer", 8025)
    modules = [m["module"] for m in config.get("modules") or []]
    assert ("shared_secret_authenticator.SharedSecretAuthProvider" in modules) == ("corporal" in enabled)

    with LoopbackNames(NAMES):
        status, _h, body = https_get(full.url(SERVER_NAME, "/.well-known/matrix/client"), full.stack.ca_file)
        assert status == 200, body
        assert json.loads(body)["m.identity_server"]["base_url"] == identity
        status, _h, body = https_get(full.url(MATRIX_HOSTNAME, "/_matrix/identity/v2"), full.stack.ca_file)
        if "identity" in enabled:
            assert status == 200 and json.loads(body) == {}, (status, body)
        else:
            assert status == 404, (status, body)
        if "element" in enabled:
            status, _h, body = https_get(full.url(ELEMENT_HOSTNAME, "/config.json"), full.stack.ca_file)
            assert status == 200, body
            servers = json.loads(body)["default_server_config"]
            assert servers["m.homeserver"] == {"base_url": OUR_IDENTITY, "server_name": SERVER_NAME}
            assert servers["m.identity_server"]["base_url"] == identity

        probe = "/_matrix/client/versions?hearth_probe=%s" % uuid.uuid4().hex
        status, _h, body = https_get(full.url(MATRIX_HOSTNAME, probe), full.stack.ca_file)
        assert status == 200, (status, body)
    assert (("GET " + probe) in _standin_record(full)) == ("corporal" in enabled), \
        "client API %s the gateway stand-in" % ("bypasses" if "corporal" in enabled else "still goes through")
    wait_for(lambda: _client_round_trip(full) is None, 120, 3, "client round trip through the proxy")


# --- every component on --------------------------------------------------------------

def test_all_enabled_is_consistent(full: FullStack) -> None:
    """Wiring matrix, combination 1: everything on."""
    assert_consistent(full)
    # No unit dependency between corporal and Synapse: a Synapse restart (a setting changed)
    # leaves corporal running, and a stack restart starts both at once (corporal retries
    # Synapse on its own).
    _rc, deps = full.bed.sh("systemctl show -p Requires -p Wants -p After hearth-corporal.service")
    props = dict(line.split("=", 1) for line in deps.splitlines() if "=" in line)
    for key in ("Requires", "Wants", "After"):
        assert "hearth-synapse.service" not in props[key].split(), "corporal %s= Synapse: %s" % (key, deps)


def test_mail_leaves_synapse_and_arrives(full: FullStack) -> None:
    """Synapse sends an email validation link; Exim relays it to the sink; the link is there."""
    address = "bob-%s@mail.example.test" % uuid.uuid4().hex[:8]
    client_secret = "hearthsecret%s" % uuid.uuid4().hex
    with LoopbackNames(NAMES):
        token = password_login(full.stack.base_url, full.stack.ca_file, ADMIN_USER, ADMIN_PASSWORD)
        status, body = https_json("POST", full.stack.base_url + "/_matrix/client/v3/account/3pid/email/requestToken",
                                  full.stack.ca_file, {"client_secret": client_secret, "email": address,
                                                       "send_attempt": 1}, access_token=token)
    assert status == 200 and body.get("sid"), (status, body)

    def arrived() -> bool:
        return any(address in m["rcpt_to"] for m in _sink_messages(full))

    wait_for(arrived, 90, 2, "the validation mail at the SMTP sink")
    message = next(m for m in _sink_messages(full) if address in m["rcpt_to"])
    assert header(message["data"], "To") == address
    assert message["mail_from"].endswith("@" + SERVER_NAME), message["mail_from"]
    links = [t for t in message_texts(message["data"]) if client_secret in t and body["sid"] in t]
    assert links, "no validation link with our client_secret and sid in:\n" + message["data"][:3000]
    assert "https://%s/" % MATRIX_HOSTNAME in links[0]


def test_identity_named_everywhere_and_answers(full: FullStack) -> None:
    """Identity on: /_matrix/identity/v2 answers through the proxy, and Synapse's config,
    /.well-known/matrix/client and Element's config.json all name our server."""
    with LoopbackNames(NAMES):
        status, _h, body = https_get(full.url(MATRIX_HOSTNAME, "/_matrix/identity/v2"), full.stack.ca_file)
        assert status == 200 and json.loads(body) == {}, (status, body)
        _s, _h, well_known = https_get(full.url(SERVER_NAME, "/.well-known/matrix/client"), full.stack.ca_file)
        _s, _h, element = https_get(full.url(ELEMENT_HOSTNAME, "/config.json"), full.stack.ca_file)
    assert json.loads(well_known)["m.identity_server"]["base_url"] == OUR_IDENTITY
    assert json.loads(element)["default_server_config"]["m.identity_server"]["base_url"] == OUR_IDENTITY
    assert _synapse_config(full)["account_threepid_delegates"]["msisdn"] == OUR_IDENTITY


def test_corporal_config_matches_schema_and_secrets(full: FullStack) -> None:
    """The config rendered for corporal validates against its documented schema and carries
    the homeserver address and the very secrets Synapse uses."""
    config = json.loads(full.read(BASE_DIR + "/corporal/config/config.json"))
    schema = json.loads(CORPORAL_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(config), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    assert config["Matrix"]["HomeserverApiEndpoint"] == "http://hearth-synapse:8008"
    assert config["Matrix"]["HomeserverDomainName"] == SERVER_NAME
    assert config["Matrix"]["AuthSharedSecret"] == full.read(BASE_DIR + "/secrets/shared_secret_auth").strip()
    synapse = _synapse_config(full)
    assert config["Matrix"]["RegistrationSharedSecret"] == synapse["registration_shared_secret"]
    assert synapse["modules"][0]["config"]["shared_secret"] == config["Matrix"]["AuthSharedSecret"]
    assert config["HttpApi"]["Enabled"] is False


def test_shared_secret_auth_login_against_synapse(full: FullStack) -> None:
    """com.devture.shared_secret_auth with corporal's secret logs in; a wrong token does not."""
    user_id = "@%s:%s" % (ADMIN_USER, SERVER_NAME)
    secret = full.read(BASE_DIR + "/secrets/shared_secret_auth").strip()
    with LoopbackNames(NAMES):
        status, body = shared_secret_login(full.stack.base_url, full.stack.ca_file, user_id,
                                           shared_secret_token(secret, user_id))
        assert status == 200 and body.get("user_id") == user_id, (status, body)
        status, whoami = https_json("GET", full.stack.base_url + "/_matrix/client/v3/account/whoami",
                                    full.stack.ca_file, access_token=body["access_token"])
        assert status == 200 and whoami["user_id"] == user_id, whoami
        status, body = shared_secret_login(full.stack.base_url, full.stack.ca_file, user_id,
                                           shared_secret_token("not-the-secret", user_id))
        assert status == 403, (status, body)


def test_client_api_goes_through_the_gateway_standin(full: FullStack) -> None:
    """The proxy sends the client API to corporal's address (here the stand-in, NOT corporal):
    its record holds the round trip's client requests; federation does not pass it."""
    record = _standin_record(full)
    for path in ("/_matrix/client/v3/login", "/_matrix/client/v3/createRoom", "/_matrix/client/v3/rooms/"):
        assert path in record, "%s not recorded by the stand-in:\n%s" % (path, record[-2000:])
    assert "/_matrix/federation" not in record and "/_matrix/key" not in record


def test_element_config_through_proxy_and_non_root(full: FullStack) -> None:
    """Element's config.json (checked via the proxy in assert_consistent) and its placeholder."""
    with LoopbackNames(NAMES):
        status, _h, body = https_get(full.url(ELEMENT_HOSTNAME, "/"), full.stack.ca_file)
    assert status == 200 and b"Element web placeholder" in body
    _rc, user = full.bed.engine_cmd("exec hearth-element id -u")
    assert user.strip() == "991"


@pytest.mark.parametrize("container", list(SERVICES.values()))
def test_container_hardening(full: FullStack, container: str) -> None:
    """Non-root, no capabilities, read-only root, no-new-privileges: inspect and /proc/1/status."""
    full.bed.assert_hardened(container)


def test_no_change_rerun(full: FullStack) -> None:
    """A second converge of the same combination: changed=0, no container restarted."""
    before = {name: full.stack.started_at(name) for name in SERVICES.values()}
    run = full.stack.converge()
    assert run.rc == 0, run.tail()
    assert run.changed == 0, "re-run changed something:\n" + run.output
    assert {name: full.stack.started_at(name) for name in SERVICES.values()} == before


def test_peers_are_found_without_the_engines_dns(full: FullStack) -> None:
    """Every container has an /etc/hosts entry for every other component, at the address the
    engine gave that component: no lookup between the stack's containers goes through the
    engine's DNS (Debian 12's aardvark-dns 1.4 answered none for 20-40 s while containers on
    the network started or stopped)."""
    addresses = {}
    for service in SERVICES.values():
        _rc, out = full.bed.engine_cmd("inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' %s"
                                       % service)
        addresses[service] = out.strip()
    assert len(set(addresses.values())) == len(addresses), addresses
    script = "; ".join("echo == %s; %s exec %s cat /etc/hosts" % (container, full.engine, container)
                       for container in SERVICES.values())
    _rc, out = full.bed.sh(script)
    hosts: Dict[str, Dict[str, str]] = {}
    container = ""
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["=="]:
            container = fields[1]
            hosts[container] = {}
        elif len(fields) >= 2 and not fields[0].startswith("#"):
            for name in fields[1:]:
                hosts[container].setdefault(name, fields[0])
    for container in SERVICES.values():
        for peer in SERVICES.values():
            if peer != container:
                found = hosts[container].get(peer)
                assert found == addresses[peer], "%s: /etc/hosts has %s at %r, the engine gave it %s" % (
                    container, peer, found, addresses[peer])


# --- TLS audit and self-check on the full stack ----------------------------------------

PROXY_DIR = BASE_DIR + "/nginx-proxy"
WELL_KNOWN_SERVER = PROXY_DIR + "/www/.well-known/matrix/server"
# testssl.sh's finding ids for known vulnerabilities (-U); each must be rated OK or INFO.
TESTSSL_VULNERABILITIES = ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
                           "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN",
                           "LOGJAM", "BEAST", "LUCKY13", "RC4")


# On the run's first engine only (indirect: the same module-scoped stack as the other tests
# of that engine): the TLS settings are the proxy's nginx config, the same on either engine.
@pytest.mark.parametrize("engine", ENGINES[:1], indirect=True)
def test_testssl_tls12_plus_no_vulnerability_hsts(full: FullStack, tmp_path: Path) -> None:
    """testssl.sh (Debian) against the proxy's 443 on the target's loopback-published port only
    (--ip 127.0.0.1, no DNS lookups): SSLv2-TLS 1.1 not offered, TLS 1.2 and 1.3 offered, no
    known vulnerability, HSTS with the role's one-year default. Protocols, vulnerabilities
    and headers only (-p -U -h): about 35 s."""
    testssl = shutil.which("testssl")
    assert testssl, "testssl.sh is not installed: run tests/bed/prepare-host"
    report = tmp_path / "testssl.json"
    started = time.monotonic()
    proc = subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                           "--ip", "127.0.0.1", "-p", "-U", "-h", "--jsonfile", str(report),
                           "%s:%d" % (MATRIX_HOSTNAME, full.bed.port(443))],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    print("testssl.sh took %.0f s" % (time.monotonic() - started))
    assert report.exists(), proc.stdout[-3000:]
    findings = {item["id"]: item for item in json.loads(report.read_text())}
    summary = "\n".join("%s %s %s" % (i["id"], i["severity"], i["finding"]) for i in findings.values())
    for protocol in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[protocol]["finding"].startswith("not offered"), summary
    for protocol in ("TLS1_2", "TLS1_3"):
        assert findings[protocol]["finding"].startswith("offered"), summary
    for vulnerability in TESTSSL_VULNERABILITIES:
        assert vulnerability in findings, "testssl.sh did not rate %s:\n%s" % (vulnerability, summary)
        assert findings[vulnerability]["severity"] in ("OK", "INFO"), summary
    assert findings["HSTS_time"]["severity"] == "OK" and "31536000" in findings["HSTS_time"]["finding"], summary


def test_port_80_serves_acme_challenges_and_redirects_the_rest(full: FullStack) -> None:
    """HTTP: a token put in the ACME webroot is served as it is (what an HTTP-01 challenge
    needs); everything else, on every name, is a redirect to HTTPS. HSTS on the matrix
    hostname only."""
    token = "hearth-test-%s" % uuid.uuid4().hex
    challenge_dir = PROXY_DIR + "/acme/.well-known/acme-challenge"
    full.bed.sh("printf %%s %s.thumbprint > %s/%s && chmod 0644 %s/%s" % (token, challenge_dir, token, challenge_dir, token))
    port = full.bed.port(80)
    try:
        request = urllib.request.Request("http://127.0.0.1:%d/.well-known/acme-challenge/%s" % (port, token),
                                         headers={"Host": MATRIX_HOSTNAME})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and response.read() == ("%s.thumbprint" % token).encode()
    finally:
        full.bed.sh("rm -f %s/%s" % (challenge_dir, token))
    status, headers = http_get_no_redirect("http://127.0.0.1:%d/.well-known/acme-challenge/%s" % (port, token))
    assert status == 404, status
    for path in ("/", "/.well-known/matrix/server", "/_matrix/client/versions"):
        status, headers = http_get_no_redirect("http://127.0.0.1:%d%s" % (port, path))
        assert status == 301 and headers["location"].startswith("https://"), (path, status, headers)
    with LoopbackNames(NAMES):
        _s, matrix_headers, _b = https_get(full.url(MATRIX_HOSTNAME, "/.well-known/matrix/client"), full.stack.ca_file)
        _s, apex_headers, _b = https_get(full.url(SERVER_NAME, "/.well-known/matrix/client"), full.stack.ca_file)
    assert matrix_headers.get("strict-transport-security") == "max-age=31536000", matrix_headers
    assert "strict-transport-security" not in apex_headers, apex_headers


def _self_check(full: FullStack) -> Tuple[PlaybookRun, List[str]]:
    """hearth.matrix.self_check from the controller, reaching the target's loopback ports
    under the real names; returns the run and the failed checks of its report, each of
    which the play's failure message must name."""
    run = full.stack.converge({
        "hearth_self_check_connect_address": "127.0.0.1",
        "hearth_self_check_port_map": {443: full.bed.port(443), 8448: full.bed.port(8448)},
        "hearth_self_check_ca_file": str(full.stack.ca_file),
    }, playbook="self_check.yml")
    failed = [line[len("FAIL "):].split(": ", 1)[0] for line in _report(run).splitlines() if line.startswith("FAIL ")]
    if failed:
        message = " ".join(" ".join(failure_messages(run.output)).split())
        assert "Self-check failed: " in message, run.tail(40)
        for name in failed:
            assert name in message, "%s is not named in the failure: %s" % (name, message)
    return run, failed


def _report(run: PlaybookRun) -> str:
    """The report the playbook printed (the debug task's YAML result, which wraps long lines)."""
    lines = run.output.splitlines()
    task = next(i for i, line in enumerate(lines) if line.startswith("TASK [Report]"))
    start = next(i for i in range(task, len(lines)) if lines[i].startswith("ok: ["))
    block: List[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line)
    printed = yaml.safe_load("\n".join(block))
    return "\n".join(printed["hearth__self_check.report"])


def test_self_check_green_on_the_healthy_stack(full: FullStack) -> None:
    """Every check ok: client API, well-known, federation via the delegation, every name's
    certificate, every upstream through the proxy, every unit and container."""
    run, failed = _self_check(full)
    assert run.rc == 0 and not failed, "%s\n%s" % (failed, run.tail(80))
    report = _report(run)
    expected = ["client API versions", "well-known client", "well-known server", "federation keys",
                "federation version", "certificate %s:443" % MATRIX_HOSTNAME, "certificate %s:443" % SERVER_NAME,
                "certificate %s:8448" % MATRIX_HOSTNAME, "certificate %s:443" % ELEMENT_HOSTNAME,
                "proxy reaches hearth-corporal:41080", "proxy reaches hearth-synapse:8008",
                "proxy reaches hearth-identity:8090", "proxy reaches hearth-element:8080"]
    expected += ["service %s" % name for name in SERVICES.values()]
    for name in expected:
        assert "ok   %s:" % name in report, "%s missing:\n%s" % (name, report)
    assert "FAIL" not in report, report


def _expired_certificate(full: FullStack) -> Tuple[str, str]:
    """A certificate (PEM, key PEM) for every served name from the stack's own CA, expired
    yesterday: only its date is wrong, so the report must say expired, not a name or CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_cert = x509.load_pem_x509_certificate(full.stack.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(full.read(PROXY_DIR + "/ca/ca.key").encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MATRIX_HOSTNAME)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in NAMES]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def test_self_check_names_each_fault(full: FullStack) -> None:
    """Three faults at once, each reported by its own check with a fix: Synapse's unit
    stopped, a certificate for another name served (the proxy reloaded with it), the
    .well-known/matrix/server delegation gone. Then an expired certificate for the right
    names from the right CA (the proxy reloaded again): the report says expired, names the
    host and says how to renew. Everything is put back afterwards (also when the test fails)
    and the self-check is green again."""
    tls = PROXY_DIR + "/tls"
    saved_well_known = full.read(WELL_KNOWN_SERVER)
    bed = full.bed
    try:
        bed.sh("systemctl stop hearth-synapse.service")
        bed.sh("cd %s && cp -p server.crt server.crt.hearth-test && cp -p server.key server.key.hearth-test && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
               "-subj /CN=wrong.example.test -addext subjectAltName=DNS:wrong.example.test "
               "-keyout server.key -out server.crt 2>/dev/null && chown 991:991 server.key && chmod 0600 server.key "
               "&& chmod 0644 server.crt" % tls)
        bed.engine_cmd("kill --signal HUP hearth-nginx-proxy")
        bed.sh("rm %s" % WELL_KNOWN_SERVER)
        run, failed = _self_check(full)
        report = _report(run)
        assert run.rc != 0, run.tail(60)
        for name in ("service hearth-synapse", "certificate %s:443" % MATRIX_HOSTNAME, "well-known server"):
            assert name in failed, "%s not named among the failures %s:\n%s" % (name, failed, report)
            line = next(line for line in report.splitlines() if "FAIL %s:" % name in line)
            assert "-> fix: " in line, line
        assert "service hearth-postgres" not in failed and "well-known client" not in failed, failed

        cert_pem, key_pem = _expired_certificate(full)
        bed.sh("cd %s && cat > server.crt <<'EOF'\n%sEOF\ncat > server.key <<'EOF'\n%sEOF\n" % (tls, cert_pem, key_pem))
        bed.engine_cmd("kill --signal HUP hearth-nginx-proxy")
        run, failed = _self_check(full)
        report = _report(run)
        name = "certificate %s:443" % MATRIX_HOSTNAME
        assert run.rc != 0 and name in failed, "%s not named among the failures %s:\n%s" % (name, failed, report)
        line = next(line for line in report.splitlines() if "FAIL %s:" % name in line)
        assert "%s serves an expired certificate" % MATRIX_HOSTNAME in line and "-> fix: renew it" in line, line
    finally:
        bed.sh("cd %s && if [ -e server.crt.hearth-test ]; then mv server.crt.hearth-test server.crt && "
               "mv server.key.hearth-test server.key; fi" % tls)
        bed.engine_cmd("kill --signal HUP hearth-nginx-proxy", check=False)
        bed.sh("printf '%%s\\n' %s > %s && chown root:991 %s && chmod 0640 %s"
               % (quote([saved_well_known.strip()]), WELL_KNOWN_SERVER, WELL_KNOWN_SERVER, WELL_KNOWN_SERVER))
        bed.sh("systemctl start hearth-synapse.service")
    wait_for(lambda: _self_check(full)[0].rc == 0, 180, 5, "a green self-check after the faults were undone")


# --- the other combinations, chained on the same target ---------------------------------

def test_identity_off(full: FullStack) -> None:
    """Combination 2: identity off -> Synapse, well-known and Element name the public server;
    the identity unit and container are gone, its data stays."""
    full.converge_to(ALL - {"identity"})
    assert_consistent(full)
    assert full.bed.sh("test -d %s/identity/data" % BASE_DIR, check=False)[0] == 0, "identity data removed"


def test_corporal_on_alone(full: FullStack) -> None:
    """Combination 3: corporal on (mailer, identity, element off): still through the stand-in."""
    full.converge_to(frozenset({"corporal"}))
    assert_consistent(full)


def test_mailer_off(full: FullStack) -> None:
    """Combination 4: everything but the mailer (identity and element come back)."""
    full.converge_to(ALL - {"mailer"})
    assert_consistent(full)
    assert "email" not in _synapse_config(full)


def test_element_off_and_corporal_off(full: FullStack) -> None:
    """Combination 5: element off, and corporal off too: the client API goes straight to Synapse
    again (the stand-in records nothing new) and both units and containers are gone."""
    full.converge_to(ALL - {"element", "corporal"})
    assert_consistent(full)
    # The absent path of the disabled roles is idempotent too: nothing changes, nothing restarts.
    running = [SERVICES[c] for c in ("postgres", "synapse", "nginx_proxy", "mailer", "identity")]
    before = {name: full.stack.started_at(name) for name in running}
    run = full.stack.converge()
    assert run.rc == 0 and run.changed == 0, "re-run with disabled components changed something:\n" + run.output
    assert {name: full.stack.started_at(name) for name in running} == before
