# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME decisions and installation (module_utils/acme.py) with the real openssl CLI; the
client (certbot in a container) and the proxy's reload are a fake runner."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils import acme

OPENSSL = shutil.which("openssl") or ""
pytestmark = pytest.mark.skipif(not OPENSSL, reason="acme.py runs the openssl CLI on the host")
DOMAINS = ("example.org", "matrix.example.org")
CLIENT = ("/usr/bin/podman", "run", "--rm", "certbot-image")


def make_cert(directory: Path, names: Sequence[str], days: int = 90, ocsp: str = "") -> Tuple[Path, Path]:
    """A self-signed certificate standing in for the CA's, as certbot lays it out."""
    directory.mkdir(parents=True, exist_ok=True)
    key, crt = directory / "privkey.pem", directory / "fullchain.pem"
    ext = ["-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)]
    if ocsp:
        ext += ["-addext", "authorityInfoAccess=OCSP;URI:" + ocsp]
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", str(days), "-subj", "/CN=" + names[0]] + ext,
                   capture_output=True, check=True)
    return crt, key


class FakeHost:
    """Runs openssl for real; the client writes a certificate (or fails), kill is recorded."""

    def __init__(self, data_dir: Path, names: Sequence[str] = DOMAINS, fail_output: str = "", ocsp: str = "") -> None:
        self.data_dir, self.names, self.fail_output, self.ocsp = data_dir, names, fail_output, ocsp
        self.orders: List[List[str]] = []
        self.kills: List[List[str]] = []

    def __call__(self, argv: List[str]) -> Tuple[int, str, str]:
        if argv[:len(CLIENT)] == list(CLIENT):
            self.orders.append(argv)
            if self.fail_output:
                return 1, self.fail_output, ""
            make_cert(self.data_dir / "live" / "hearth", self.names, ocsp=self.ocsp)
            return 0, "", ""
        if argv[1:2] == ["kill"]:
            self.kills.append(argv)
            return 0, "", ""
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr


def request(tmp_path: Path, renew_days: int = 30, domains: Sequence[str] = DOMAINS) -> acme.AcmeRequest:
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir(exist_ok=True)
    return acme.AcmeRequest(domains=tuple(domains), data_dir=str(tmp_path / "acme"), tls_dir=str(tls_dir),
                            client_argv=CLIENT, engine_path="/usr/bin/podman", proxy_container="hearth-nginx-proxy",
                            renew_days=renew_days, uid=os.getuid(), gid=os.getgid())


def run_real(argv: List[str]) -> Tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def test_cert_problem(tmp_path: Path) -> None:
    crt, _key = make_cert(tmp_path / "a", DOMAINS, days=90)
    assert acme.cert_problem(run_real, OPENSSL, str(tmp_path / "none.pem"), DOMAINS, 30) == "no certificate yet"
    assert acme.cert_problem(run_real, OPENSSL, str(crt), DOMAINS, 30) is None
    # Upper case in the request is the same name; a superset of names still covers it.
    assert acme.cert_problem(run_real, OPENSSL, str(crt), ["MATRIX.example.org"], 30) is None
    assert acme.cert_problem(run_real, OPENSSL, str(crt), DOMAINS + ("element.example.org",), 30) == \
        "certificate lacks element.example.org"
    assert acme.cert_problem(run_real, OPENSSL, str(crt), DOMAINS, 100) == "certificate expires within 100 days"


def test_stapling_decision(tmp_path: Path) -> None:
    with_ocsp, _key = make_cert(tmp_path / "a", DOMAINS, ocsp="http://ocsp.example.net")
    without, _key = make_cert(tmp_path / "b", DOMAINS)
    assert acme.ocsp_url(run_real, OPENSSL, str(with_ocsp)) == "http://ocsp.example.net"
    assert acme.ocsp_url(run_real, OPENSSL, str(without)) == ""
    assert acme.stapling_wanted("http://ocsp.example.net")
    assert not acme.stapling_wanted("")
    assert not acme.stapling_wanted("ldap://x")


def test_certbot_args() -> None:
    req = acme.AcmeRequest(domains=DOMAINS, data_dir="/d", tls_dir="/t", client_argv=CLIENT, engine_path="/p",
                           proxy_container="p", directory_url="https://acme.test/dir")
    args = acme.certbot_args(req)
    assert args[0] == "certonly" and "--force-renewal" in args and "--register-unsafely-without-email" in args
    assert args[args.index("--server") + 1] == "https://acme.test/dir"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--domain"] == list(DOMAINS)
    assert args[args.index("--webroot-path") + 1] == acme.CONTAINER_WEBROOT
    with_mail = acme.certbot_args(dataclasses.replace(req, email="a@example.org"))
    assert with_mail[with_mail.index("--email") + 1] == "a@example.org"
    assert "--register-unsafely-without-email" not in with_mail


CERTBOT_FAILURE = """Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:
  Domain: example.org
  Type:   connection
  Detail: 10.0.0.9: Fetching http://example.org/.well-known/acme-challenge/abc: Connection refused

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot.
"""


def test_failure_line() -> None:
    line = acme.failure_line(CERTBOT_FAILURE, DOMAINS)
    assert line.startswith("ACME challenge failed for example.org (")
    assert "Connection refused" in line and "\n" not in line
    other = acme.failure_line("An unexpected error occurred:\nrequests.exceptions.ConnectionError: boom\n", DOMAINS)
    assert other == "ACME order for example.org, matrix.example.org failed: requests.exceptions.ConnectionError: boom"


def test_first_run_orders_installs_reloads_then_nothing(tmp_path: Path) -> None:
    req = request(tmp_path)
    host = FakeHost(tmp_path / "acme")
    result = acme.converge(req, host, OPENSSL)
    assert (result.ordered, result.installed, result.reloaded, result.stapling) == (True, True, True, False)
    assert result.reason == "no certificate yet" and len(host.orders) == 1
    assert host.orders[0][len(CLIENT):] == acme.certbot_args(req)
    assert host.kills == [["/usr/bin/podman", "kill", "--signal=HUP", "hearth-nginx-proxy"]]
    served = Path(req.tls_dir)
    assert (served / "server.crt").read_bytes() == (tmp_path / "acme/live/hearth/fullchain.pem").read_bytes()
    assert stat.S_IMODE((served / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "acme").stat().st_mode) == 0o700
    again = acme.converge(req, host, OPENSSL)
    assert not again.changed and len(host.orders) == 1 and len(host.kills) == 1


def test_installs_without_ordering_when_the_client_has_a_good_certificate(tmp_path: Path) -> None:
    req = request(tmp_path)
    make_cert(tmp_path / "acme" / "live" / "hearth", DOMAINS)
    host = FakeHost(tmp_path / "acme")
    result = acme.converge(req, host, OPENSSL)
    assert not result.ordered and result.installed and host.orders == [] and len(host.kills) == 1


def test_renewal_within_renew_days(tmp_path: Path) -> None:
    host = FakeHost(tmp_path / "acme")
    acme.converge(request(tmp_path), host, OPENSSL)
    result = acme.converge(request(tmp_path, renew_days=1000), host, OPENSSL)
    assert result.ordered and result.reason == "certificate expires within 1000 days"
    assert len(host.orders) == 2 and len(host.kills) == 2


def test_failed_order_keeps_the_served_certificate(tmp_path: Path) -> None:
    req = request(tmp_path)
    served = Path(req.tls_dir) / "server.crt"
    served.write_text("the self-made certificate\n")
    host = FakeHost(tmp_path / "acme", fail_output=CERTBOT_FAILURE)
    with pytest.raises(acme.AcmeError, match="^ACME challenge failed for example.org "):
        acme.converge(req, host, OPENSSL)
    assert served.read_text() == "the self-made certificate\n" and host.kills == []


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    req = request(tmp_path)
    host = FakeHost(tmp_path / "acme")
    result = acme.converge(req, host, OPENSSL, check_mode=True)
    assert result.changed and result.ordered and result.reloaded
    assert host.orders == [] and host.kills == [] and not (tmp_path / "acme").exists()
    assert os.listdir(req.tls_dir) == []


def test_stapling_file_follows_the_certificate(tmp_path: Path) -> None:
    req = request(tmp_path)
    stapling = Path(req.tls_dir) / acme.STAPLING_FILE
    acme.converge(req, FakeHost(tmp_path / "acme", ocsp="http://ocsp.example.net"), OPENSSL)
    assert stapling.read_text() == acme.STAPLING_CONF
    result = acme.converge(request(tmp_path, renew_days=1000), FakeHost(tmp_path / "acme"), OPENSSL)
    assert not result.stapling and not stapling.exists()


def test_reload_of_a_missing_proxy_is_not_an_error(tmp_path: Path) -> None:
    class NoProxy(FakeHost):
        def __call__(self, argv: List[str]) -> Tuple[int, str, str]:
            if argv[1:2] == ["kill"]:
                return 125, "", "Error: no such container hearth-nginx-proxy"
            return super().__call__(argv)

    result = acme.converge(request(tmp_path), NoProxy(tmp_path / "acme"), OPENSSL)
    assert result.installed and not result.reloaded
