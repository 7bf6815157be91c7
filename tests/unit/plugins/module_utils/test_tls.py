# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private CA and server certificate, made with the real openssl CLI in a temporary directory."""

from __future__ import annotations

import dataclasses

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import SelfSignedTls
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import HostError, Report
from ansible_collections.hearth.matrix.plugins.module_utils.tls import ensure_self_signed
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import RealHost

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed; tls.py runs it on the host")
ME, MY_GROUP = str(os.getuid()), str(os.getgid())


def settings(tmp_path: Path, domains: Sequence[str] = ("example.org", "matrix.example.org")) -> SelfSignedTls:
    ca_dir, tls_dir = tmp_path / "ca", tmp_path / "tls"
    ca_dir.mkdir(exist_ok=True)
    tls_dir.mkdir(exist_ok=True)
    return SelfSignedTls(ca_dir=str(ca_dir), tls_dir=str(tls_dir), domains=tuple(sorted(domains)),
                         common_name="matrix.example.org", key_owner=ME, key_group=MY_GROUP, cert_group=MY_GROUP,
                         days=30 + 5, ca_days=3650)


def openssl(*args: str) -> str:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL] + list(args), capture_output=True, text=True, check=True).stdout


def snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Report]:
    """One real first run, shared (openssl is the slow part of these tests); copy before changing."""
    if OPENSSL is None:
        pytest.skip("the openssl CLI is not installed; tls.py runs it on the host")
    root = tmp_path_factory.mktemp("tls-first-run")
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, settings(root), report)
    return root, report


def issued(first: Tuple[Path, Report], tmp_path: Path) -> Path:
    """A private copy of the first run's directories."""
    root = tmp_path / "copy"
    shutil.copytree(str(first[0]), str(root))
    return root


def sans(cert: Path) -> List[str]:
    text = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    return sorted(part.strip()[4:] for part in " ".join(text.splitlines()[1:]).split(","))


def test_first_run_creates_ca_and_server_certificate(first_run: Tuple[Path, Report]) -> None:
    root, report = first_run
    ca, out = root / "ca", root / "tls"
    assert sorted(p.name for p in ca.iterdir()) == ["ca.crt", "ca.key"]
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "server.crt", "server.key"]
    assert mode_of(ca / "ca.key") == 0o600 and mode_of(ca / "ca.crt") == 0o600
    assert mode_of(out / "server.key") == 0o600 and mode_of(out / "server.crt") == 0o644
    assert mode_of(out / "ca.crt") == 0o644
    assert (out / "ca.crt").read_bytes() == (ca / "ca.crt").read_bytes()
    assert sans(out / "server.crt") == ["example.org", "matrix.example.org"]
    openssl("verify", "-CAfile", str(out / "ca.crt"), str(out / "server.crt"))  # raises if not issued by the CA
    subject = openssl("x509", "-in", str(out / "server.crt"), "-noout", "-subject")
    assert "matrix.example.org" in subject
    assert "CA:TRUE" in openssl("x509", "-in", str(ca / "ca.crt"), "-noout", "-ext", "basicConstraints")
    assert report.restart_reasons == ["server certificate"]
    assert any(change.startswith("server certificate: issued (missing)") for change in report.changes)


def test_second_run_changes_nothing(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    tls = settings(tmp_path)
    before = snapshot(tmp_path)
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, tls, report)
    assert report.changes == [] and report.restart_reasons == []
    assert snapshot(tmp_path) == before


def test_other_domains_reissue_the_certificate_from_the_same_ca(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    before = snapshot(tmp_path)
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, settings(tmp_path, ("element.example.org", "example.org",
                                                                "matrix.example.org")), report)
    after = snapshot(tmp_path)
    assert after["tls/server.crt"] != before["tls/server.crt"]
    for unchanged in ("ca/ca.key", "ca/ca.crt", "tls/ca.crt", "tls/server.key"):
        assert after[unchanged] == before[unchanged], unchanged
    assert sans(tmp_path / "tls" / "server.crt") == ["element.example.org", "example.org", "matrix.example.org"]
    assert report.restart_reasons == ["server certificate"]
    assert [c for c in report.changes if c.startswith("server certificate")] == [
        "server certificate: issued (names changed (example.org matrix.example.org))"]


def test_certificate_of_another_ca_is_reissued(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    (tmp_path / "ca" / "ca.key").unlink()
    (tmp_path / "ca" / "ca.crt").unlink()
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, settings(tmp_path), report)
    out = tmp_path / "tls"
    assert (out / "ca.crt").read_bytes() == (tmp_path / "ca" / "ca.crt").read_bytes()
    openssl("verify", "-CAfile", str(out / "ca.crt"), str(out / "server.crt"))
    assert "server certificate: issued (not issued by the current CA)" in report.changes


@needs_openssl
def test_check_mode_on_an_empty_directory_writes_nothing(tmp_path: Path) -> None:
    tls = settings(tmp_path)
    report = Report()
    ensure_self_signed(RealHost(check_mode=True), OPENSSL, tls, report)
    assert snapshot(tmp_path) == {}
    assert report.changed and report.restart_reasons


def test_check_mode_with_new_domains_writes_nothing(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    before = snapshot(tmp_path)
    report = Report()
    ensure_self_signed(RealHost(check_mode=True), OPENSSL, settings(tmp_path, ("other.example.org",)), report)
    assert snapshot(tmp_path) == before
    assert report.restart_reasons == ["server certificate"]


def test_missing_openssl_names_tls(tmp_path: Path) -> None:
    with pytest.raises(HostError) as info:
        ensure_self_signed(RealHost(), None, settings(tmp_path), Report())
    assert info.value.field == "tls" and "openssl" in str(info.value)


def _other_filesystem(than: Path) -> str:
    for candidate in ("/dev/shm", "/run", "/tmp", "/var/tmp"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK) and os.stat(candidate).st_dev != than.stat().st_dev:
            return candidate
    pytest.skip("no writable directory on another file system than %s" % than)


@needs_openssl
def test_server_certificate_keeps_its_group_when_the_temp_dir_is_another_file_system(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The certificate is made in a temporary directory and moved into tls_dir.

    When /tmp is a tmpfs and tls_dir is on disk (the usual case), the move is a copy, and a
    copy does not keep the group set before the move.
    """
    if os.getuid() != 0:
        pytest.skip("needs root to give the certificate a group the test user is not in")
    tempdir = _other_filesystem(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", tempdir)
    tls = settings(tmp_path)
    tls = dataclasses.replace(tls, cert_group="4242")
    ensure_self_signed(RealHost(), OPENSSL, tls, Report())
    assert (tmp_path / "tls" / "ca.crt").stat().st_gid == 4242
    assert (tmp_path / "tls" / "server.crt").stat().st_gid == 4242


def _foreign_certificate(tmp_path: Path, names: Sequence[str], days: int) -> bytes:
    """A certificate of another issuer (ACME) for the existing server key, installed in tls/."""
    out = tmp_path / "tls"
    openssl("req", "-x509", "-new", "-key", str(out / "server.key"), "-days", str(days), "-subj", "/CN=acme",
            "-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names), "-out", str(out / "server.crt"))
    return (out / "server.crt").read_bytes()


def test_replaceable_keeps_a_valid_certificate_of_another_issuer(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    foreign = _foreign_certificate(tmp_path, ("example.org", "matrix.example.org"), 90)
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, dataclasses.replace(settings(tmp_path), replaceable=True), report)
    assert report.changes == [] and report.restart_reasons == []
    assert (tmp_path / "tls" / "server.crt").read_bytes() == foreign
    # Without replaceable the self-made CA takes its certificate back.
    ensure_self_signed(RealHost(), OPENSSL, settings(tmp_path), report)
    assert "server certificate: issued (not issued by the current CA)" in report.changes


def test_replaceable_reissues_a_certificate_for_other_names(first_run: Tuple[Path, Report], tmp_path: Path) -> None:
    tmp_path = issued(first_run, tmp_path)
    tls = dataclasses.replace(settings(tmp_path), replaceable=True)
    _foreign_certificate(tmp_path, ("matrix.example.org",), 90)
    report = Report()
    ensure_self_signed(RealHost(), OPENSSL, tls, report)
    assert report.restart_reasons == ["server certificate"]
    openssl("verify", "-CAfile", str(tmp_path / "tls" / "ca.crt"), str(tmp_path / "tls" / "server.crt"))
