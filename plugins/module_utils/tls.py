# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private CA and a server certificate, made with the openssl CLI on the host.

The target needs no Python crypto library. The CA is created once and its key never enters
a container; the server certificate is re-issued from the same CA only when it no longer
fits: other names, another CA, another key, or less than 30 days left. Clients trust
``<tls_dir>/ca.crt``. With ``replaceable`` a certificate from another issuer (ACME) is kept
while it is valid and matches the key and the names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import List, Optional

from ansible_collections.hearth.matrix.plugins.module_utils.component import Ownership, SelfSignedTls
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import (
    Host,
    HostError,
    Report,
    apply_attributes,
    attributes_differ,
)

_EXPIRY_MARGIN = 30 * 24 * 3600


def _openssl(host: Host, openssl: str, args: List[str]) -> str:
    rc, out, err = host.run_command([openssl] + args)
    if rc != 0:
        raise HostError("tls", "openssl %s failed: %s" % (args[0], (err or out).strip()))
    return out


def _server_cert_problem(host: Host, openssl: str, tls: SelfSignedTls) -> Optional[str]:
    """Why the server certificate must be (re-)issued, or None when it fits."""
    crt, key, ca = (os.path.join(tls.tls_dir, "server.crt"), os.path.join(tls.tls_dir, "server.key"),
                    os.path.join(tls.ca_dir, "ca.crt"))
    if not os.path.exists(crt):
        return "missing"
    rc, _out, _err = host.run_command([openssl, "verify", "-CAfile", ca, crt])
    # Another issuer's certificate (ACME) stays while it is valid: renewing it is its
    # issuer's job, and the self-made one only stands in when it is gone or expired.
    foreign = rc != 0
    if foreign and not tls.replaceable:
        return "not issued by the current CA"
    rc, _out, _err = host.run_command([openssl, "x509", "-in", crt, "-noout", "-checkend",
                                       "0" if foreign else str(_EXPIRY_MARGIN)])
    if rc != 0:
        return "expired" if foreign else "expires within 30 days"
    cert_key = _openssl(host, openssl, ["x509", "-in", crt, "-noout", "-pubkey"])
    own_key = _openssl(host, openssl, ["pkey", "-in", key, "-pubout"])
    if cert_key.strip() != own_key.strip():
        return "does not match the key"
    rc, out, _err = host.run_command([openssl, "x509", "-in", crt, "-noout", "-ext", "subjectAltName"])
    names = sorted({part.strip()[4:] for part in " ".join(out.splitlines()[1:]).split(",")
                    if part.strip().startswith("DNS:")}) if rc == 0 else []
    if names != sorted(tls.domains):
        return "names changed (%s)" % " ".join(names)
    return None


def _ensure_key(host: Host, openssl: str, path: str, own: Ownership, what: str, report: Report) -> bool:
    if os.path.exists(path):
        if attributes_differ(path, own):
            report.changes.append("%s %s: owner/mode" % (what, path))
            if not host.check_mode:
                apply_attributes(path, own)
        return False
    report.changes.append("%s %s: generated" % (what, path))
    if not host.check_mode:
        old_umask = os.umask(0o077)
        try:
            _openssl(host, openssl, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
        finally:
            os.umask(old_umask)
        apply_attributes(path, own)
    return True


def ensure_self_signed(host: Host, openssl: Optional[str], tls: SelfSignedTls, report: Report) -> None:
    """Converge the CA and the server certificate; a new server certificate asks for a restart."""
    if not openssl:
        raise HostError("tls", "the openssl CLI is not installed on the host (Debian/Ubuntu: apt install openssl)")
    root_only = Ownership("root", "root", "0600")
    ca_key, ca_crt = os.path.join(tls.ca_dir, "ca.key"), os.path.join(tls.ca_dir, "ca.crt")
    new_ca_key = _ensure_key(host, openssl, ca_key, root_only, "CA key", report)
    if new_ca_key or not os.path.exists(ca_crt):
        report.changes.append("CA certificate %s: created" % ca_crt)
        if host.check_mode:
            report.restart_reasons.append("new CA")
            return
        _openssl(host, openssl, ["req", "-x509", "-new", "-sha256", "-key", ca_key, "-days", str(tls.ca_days),
                                 "-subj", "/O=hearth.matrix/CN=hearth.matrix local CA for %s" % tls.common_name,
                                 "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", ca_crt])
        apply_attributes(ca_crt, root_only)
    _publish_ca(host, ca_crt, os.path.join(tls.tls_dir, "ca.crt"), Ownership("root", tls.cert_group, "0644"), report)
    server_key = os.path.join(tls.tls_dir, "server.key")
    new_key = _ensure_key(host, openssl, server_key, Ownership(tls.key_owner, tls.key_group, "0600"), "server key", report)
    problem = "new key" if new_key and host.check_mode else _server_cert_problem(host, openssl, tls)
    if problem is None:
        return
    report.changes.append("server certificate: issued (%s)" % problem)
    report.restart_reasons.append("server certificate")
    if not host.check_mode:
        _issue_server_cert(host, openssl, tls, server_key, ca_key, ca_crt)


def _publish_ca(host: Host, ca_crt: str, published: str, own: Ownership, report: Report) -> None:
    with open(ca_crt, "rb") as handle:
        data = handle.read()
    try:
        with open(published, "rb") as handle:
            same = handle.read() == data
    except FileNotFoundError:
        same = False
    if same and not attributes_differ(published, own):
        return
    report.changes.append("CA certificate for clients %s" % published)
    if not host.check_mode:
        shutil.copyfile(ca_crt, published)
        apply_attributes(published, own)


def _issue_server_cert(host: Host, openssl: str, tls: SelfSignedTls, key: str, ca_key: str, ca_crt: str) -> None:
    # In tls_dir: the rename into place is atomic and keeps owner and group.
    work = tempfile.mkdtemp(prefix=".hearth-tls-", dir=tls.tls_dir)
    try:
        ext = os.path.join(work, "ext.cnf")
        with open(ext, "w", encoding="ascii") as handle:
            handle.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                         "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
                         % ",".join("DNS:" + name for name in tls.domains))
        csr, crt = os.path.join(work, "server.csr"), os.path.join(work, "server.crt")
        serial = "0x" + os.urandom(16).hex()
        _openssl(host, openssl, ["req", "-new", "-key", key, "-subj", "/CN=%s" % tls.common_name, "-out", csr])
        _openssl(host, openssl, ["x509", "-req", "-sha256", "-in", csr, "-days", str(tls.days), "-CA", ca_crt,
                                 "-CAkey", ca_key, "-set_serial", serial, "-extfile", ext, "-out", crt])
        apply_attributes(crt, Ownership("root", tls.cert_group, "0644"))
        os.rename(crt, os.path.join(tls.tls_dir, "server.crt"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
