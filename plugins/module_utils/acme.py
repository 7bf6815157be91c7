# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME certificates for the proxy: decide, order (certbot in a container), install, reload.

Plain Python (standard library only, the openssl CLI for certificates): the module
hearth.matrix.acme uses it, and the host's renewal timer runs a copy of this file. The
module builds the client's hardened ``<engine> run`` argv (module_utils/container.py) and
hands it over in ``AcmeRequest.client_argv``; the timer reads the same request from its
settings file, so both make the same decision.

Decision: the client's certificate (``<data_dir>/live/<cert_name>/``) is ordered only when it
is missing, lacks one of the names, or expires within ``renew_days``. The served pair
(``<tls_dir>/server.crt`` and ``server.key``) is replaced when it differs from the client's,
then the proxy reloads (SIGHUP: nginx re-reads its certificates, open connections finish).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

Runner = Callable[[List[str]], Tuple[int, str, str]]

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# Where the client's data dir, the proxy's webroot and the CA bundle appear in its container.
CONTAINER_DATA = "/etc/letsencrypt"
CONTAINER_WEBROOT = "/var/www/acme"
CONTAINER_CA_BUNDLE = "/etc/hearth/acme-ca.pem"
# nginx includes <tls_dir>/*.stapling.conf: present only for a certificate with an OCSP URL.
STAPLING_FILE = "ocsp.stapling.conf"
STAPLING_CONF = "ssl_stapling on;\nssl_stapling_verify on;\n"


class AcmeError(Exception):
    """A failure worth one line: the converge (or the timer) fails with it."""


@dataclass(frozen=True)
class AcmeRequest:
    """What to order, where the client keeps its data, and where the proxy reads its pair."""

    domains: Tuple[str, ...]
    data_dir: str
    tls_dir: str
    client_argv: Tuple[str, ...]   # <engine> run ... <image> (certbot options follow)
    engine_path: str
    proxy_container: str
    directory_url: str = LETS_ENCRYPT
    email: str = ""
    ca_bundle: str = ""            # host path, mounted by client_argv; "" = the image's roots
    renew_days: int = 30
    cert_name: str = "hearth"
    uid: int = 991
    gid: int = 991


@dataclass
class AcmeResult:
    changed: bool = False
    ordered: bool = False
    installed: bool = False
    reloaded: bool = False
    reason: str = ""
    stapling: bool = False
    changes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, object]:
        return dict(changed=self.changed, ordered=self.ordered, installed=self.installed,
                    reloaded=self.reloaded, reason=self.reason, stapling=self.stapling,
                    changes=list(self.changes))


def cert_names(run: Runner, openssl: str, path: str) -> List[str]:
    """The DNS names of a certificate's subjectAltName, lower case and sorted."""
    rc, out, _err = run([openssl, "x509", "-in", path, "-noout", "-ext", "subjectAltName"])
    if rc != 0:
        return []
    text = " ".join(out.splitlines()[1:])
    return sorted({part.strip()[4:].lower() for part in text.split(",") if part.strip().startswith("DNS:")})


def cert_problem(run: Runner, openssl: str, path: str, domains: Sequence[str], renew_days: int) -> Optional[str]:
    """Why the certificate at path must be ordered again, or None when it is fine."""
    if not os.path.exists(path):
        return "no certificate yet"
    missing = sorted(set(d.lower() for d in domains) - set(cert_names(run, openssl, path)))
    if missing:
        return "certificate lacks %s" % ", ".join(missing)
    rc, _out, _err = run([openssl, "x509", "-in", path, "-noout", "-checkend", str(renew_days * 86400)])
    if rc != 0:
        return "certificate expires within %d days" % renew_days
    return None


def ocsp_url(run: Runner, openssl: str, path: str) -> str:
    """The certificate's OCSP responder URL, "" when it names none (Let's Encrypt since 2025)."""
    rc, out, _err = run([openssl, "x509", "-in", path, "-noout", "-ocsp_uri"])
    return out.strip().splitlines()[0] if rc == 0 and out.strip() else ""


def stapling_wanted(url: str) -> bool:
    """nginx staples only for a certificate with an OCSP URL; for one without it warns."""
    return url.startswith("http://") or url.startswith("https://")


def certbot_args(req: AcmeRequest) -> List[str]:
    """certbot's options for one order (the argv after the image)."""
    args = ["certonly", "--non-interactive", "--agree-tos", "--webroot", "--webroot-path", CONTAINER_WEBROOT,
            "--cert-name", req.cert_name, "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
            # Ordered only when cert_problem says so: certbot's own "not yet due" must not
            # second-guess renew_days.
            "--force-renewal", "--server", req.directory_url,
            "--config-dir", CONTAINER_DATA, "--work-dir", "/tmp/certbot-work", "--logs-dir", "/tmp/certbot-logs"]
    args += ["--email", req.email, "--no-eff-email"] if req.email else ["--register-unsafely-without-email"]
    for domain in req.domains:
        args += ["--domain", domain]
    return args


_DOMAIN_LINE = re.compile(r"^\s*Domain:\s*(\S+)\s*$")
_DETAIL_LINE = re.compile(r"^\s*Detail:\s*(.+?)\s*$")


def failure_line(output: str, domains: Sequence[str]) -> str:
    """One line naming the hostnames whose challenge failed, from certbot's output."""
    failed: List[str] = []
    detail = ""
    for line in output.splitlines():
        match = _DOMAIN_LINE.match(line)
        if match and match.group(1).lower() not in failed:
            failed.append(match.group(1).lower())
        match = _DETAIL_LINE.match(line)
        if match and not detail:
            detail = match.group(1)
    if failed:
        return ("ACME challenge failed for %s (does the name point at this server, port 80 open?): %s"
                % (", ".join(failed), detail or "see the client's output"))
    last = [line.strip() for line in output.splitlines() if line.strip()]
    return "ACME order for %s failed: %s" % (", ".join(domains), last[-1] if last else "no output")


def _same_file(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as one, open(b, "rb") as two:
            return one.read() == two.read()
    except FileNotFoundError:
        return False


def _install(src: str, dest: str, uid: int, gid: int, mode: int) -> None:
    # A temporary file in the same directory and a rename: nginx never reads half a file.
    handle, tmp = tempfile.mkstemp(prefix=".hearth-acme-", dir=os.path.dirname(dest))
    try:
        with os.fdopen(handle, "wb") as out, open(src, "rb") as data:
            out.write(data.read())
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ensure_data_dir(req: AcmeRequest, check_mode: bool, result: AcmeResult) -> None:
    # The account key and the certificates: the client's uid only, never world-readable.
    if not os.path.isdir(req.data_dir):
        result.changes.append("data dir %s: created" % req.data_dir)
        if check_mode:
            return
        os.makedirs(req.data_dir, 0o700)
    stat = os.stat(req.data_dir)
    if (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777) != (req.uid, req.gid, 0o700):
        if not result.changes:
            result.changes.append("data dir %s: owner/mode" % req.data_dir)
        if not check_mode:
            os.chown(req.data_dir, req.uid, req.gid)
            os.chmod(req.data_dir, 0o700)


def converge(req: AcmeRequest, run: Runner, openssl: str, check_mode: bool = False) -> AcmeResult:
    """Order when needed, install the client's certificate for the proxy, reload it."""
    result = AcmeResult()
    _ensure_data_dir(req, check_mode, result)
    live = os.path.join(req.data_dir, "live", req.cert_name)
    chain, key = os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem")
    lock_path = os.path.join(req.data_dir, ".hearth-acme.lock")
    lock = None if check_mode else open(lock_path, "a")  # pylint: disable=consider-using-with
    try:
        if lock is not None:
            # The timer and a converge never order at the same time.
            fcntl.flock(lock, fcntl.LOCK_EX)
        result.reason = cert_problem(run, openssl, chain, req.domains, req.renew_days) or ""
        if result.reason:
            result.ordered = result.changed = True
            result.changes.append("certificate ordered (%s)" % result.reason)
            if check_mode:
                result.installed = result.reloaded = True
                return result
            rc, out, err = run(list(req.client_argv) + certbot_args(req))
            if rc != 0:
                raise AcmeError(failure_line(out + "\n" + err, req.domains))
        served_crt, served_key = os.path.join(req.tls_dir, "server.crt"), os.path.join(req.tls_dir, "server.key")
        if not (_same_file(chain, served_crt) and _same_file(key, served_key)):
            result.installed = result.changed = True
            result.changes.append("certificate installed for the proxy")
            if not check_mode:
                # Key first: a crt that does not match its key is never read together
                # with it, nginx reads both only at the reload below.
                _install(key, served_key, req.uid, req.gid, 0o600)
                _install(chain, served_crt, 0, req.gid, 0o644)
        result.stapling = _converge_stapling(req, run, openssl, chain, check_mode, result)
        if result.changed and not check_mode:
            rc, _out, err = run([req.engine_path, "kill", "--signal=HUP", req.proxy_container])
            result.reloaded = rc == 0
            if rc != 0 and "no such container" not in err.lower():
                raise AcmeError("reloading %s failed: %s" % (req.proxy_container, err.strip()))
        elif result.changed:
            result.reloaded = True
        return result
    finally:
        if lock is not None:
            lock.close()


def _converge_stapling(req: AcmeRequest, run: Runner, openssl: str, chain: str, check_mode: bool,
                       result: AcmeResult) -> bool:
    path = os.path.join(req.tls_dir, STAPLING_FILE)
    wanted = os.path.exists(chain) and stapling_wanted(ocsp_url(run, openssl, chain))
    present = os.path.exists(path)
    if wanted != present:
        result.changed = True
        result.changes.append("OCSP stapling %s" % ("on" if wanted else "off"))
        if not check_mode:
            if wanted:
                with open(path, "w", encoding="ascii") as handle:
                    handle.write(STAPLING_CONF)
                os.chmod(path, 0o644)
            else:
                os.unlink(path)
    return wanted


def which(name: str) -> str:
    return shutil.which(name) or ""
