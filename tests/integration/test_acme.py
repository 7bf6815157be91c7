# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME certificates (issue 12, item 1) against Pebble on the bed, one target for every check.

Pebble (Let's Encrypt's ACME test server) and pebble-challtestsrv (its DNS test server) run in
one bed container the test creates on the bed network (pebble_bed.py, shared with the
federation test). challtestsrv resolves every name to the target's bed address, so Pebble
checks HTTP-01 on the target's port 80, answered by the proxy from its ACME webroot. The stack is the base stack
with ``nginx_proxy_tls_source: acme``, the directory URL of that Pebble and its API's CA
(``hearth_acme_ca_bundle``), and certbot from Debian (image tests/bed/images/certbot). The
test talks to the loopback ports the bed publishes and to the Pebble container it created.

0. Check mode on the fresh host reports the order and changes nothing.
1. First converge: the proxy starts with the self-made certificate, certbot orders through
   it, the proxy serves Pebble's certificate for both names (the matrix hostname and the
   delegated server name); its chain verifies against Pebble's root (from Pebble's
   management port); the client's data dir is the client's only.
2. Second converge: changes nothing, Pebble issued nothing, same serial. Then the client's
   data survives a backup and restore: hearth.matrix.backup, the ACME data dir removed,
   hearth.matrix.restore (its closing converge included): certbot's ``live/`` links are back
   as the same relative links, Pebble issued nothing, the same certificate is served.
3. Renewal: ``hearth_acme_renew_days`` beyond the validity in the timer's settings, then the
   timer's service started: a new serial is served, the proxy was reloaded (same container
   start time), and a client loop running across it saw no failed request.
4. Failure: challtestsrv points the server name elsewhere; a converge that must order
   (with a new ACME account, so no earlier authorization is reused) fails naming that
   hostname, and the proxy still serves the last good certificate.
5. Back to the self-made certificate: the renewal timer's units, settings and code are gone,
   the client's data dir stays.

One engine (podman): what is tested is certbot, nginx's reload and the playbook's logic,
the same on both engines; the engine only runs one more container, which every other suite
covers for docker. Both engines would double the ~2 min this adds and check nothing new.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from conftest import BASE_VARS, ENGINES, BedTarget, target_factory
from harness import PLAYBOOKS, PlaybookRun, failure_messages, run_playbook
from pebble_bed import pebble

ENGINE = "podman"
SERVER_NAME, MATRIX_HOSTNAME = BASE_VARS["hearth_server_name"], BASE_VARS["hearth_matrix_hostname"]
SETTINGS_ON_TARGET = "/etc/hearth-matrix/acme.json"
BACKUP_ON_TARGET = "/var/backups/hearth-test-acme"
COMPONENTS = ["postgres", "synapse", "nginx", "certbot"]

pytestmark = pytest.mark.skipif(ENGINE not in ENGINES, reason="the ACME test runs on podman only (see the module doc)")


def _served_chain(port: int, name: str) -> List[str]:
    """The PEM certificates the proxy sends for SNI ``name`` (leaf first)."""
    done = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", name,
                           "-showcerts"], input="", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=20, check=False)
    blocks, current = [], []
    for line in done.stdout.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END CERTIFICATE-----"):
                blocks.append("\n".join(current) + "\n")
                current = []
    assert blocks, "no certificate from the proxy:\n" + done.stderr
    return blocks


def _x509(pem: str, *args: str) -> str:
    return subprocess.run(["openssl", "x509", "-noout", *args], input=pem, stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()


def _serial(port: int) -> str:
    return _x509(_served_chain(port, MATRIX_HOSTNAME)[0], "-serial")


class ClientLoop(threading.Thread):
    """HTTPS requests to the client API, back to back, until stopped; counts failures."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.ok, self.failures = port, 0, []  # type: Tuple[int, int, List[str]]
        self.stop = threading.Event()
        # The certificate changes under the loop: it checks the requests, not the chain.
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw, \
                        self.context.wrap_socket(raw, server_hostname=MATRIX_HOSTNAME) as tls:
                    tls.sendall(("GET /_matrix/client/versions HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                                 % MATRIX_HOSTNAME).encode())
                    status = tls.recv(64).decode(errors="replace")
                if status.startswith("HTTP/1.1 200"):
                    self.ok += 1
                else:
                    self.failures.append(status.splitlines()[0] if status else "empty answer")
            except OSError as exc:
                self.failures.append(repr(exc))


def _converge(bed_target: BedTarget, extra: Dict[str, Any]) -> PlaybookRun:
    return run_playbook(bed_target.inventory, PLAYBOOKS / "site.yml", extra)


def test_acme_issue_renew_and_fail(bed_images: Dict[str, Any], tmp_path: Path) -> None:
    with target_factory(ENGINE, "acme", components=COMPONENTS) as bed_target, \
            pebble(bed_target.target.bridge_ip) as acme_ca:
        stack_vars = dict(BASE_VARS, hearth_engine=ENGINE, **acme_ca.stack_vars(bed_target, "admin@%s" % SERVER_NAME))
        https = bed_target.port(443)

        # 0. Check mode on the fresh host: reports the order, changes nothing.
        checked = run_playbook(bed_target.inventory, PLAYBOOKS / "site.yml", stack_vars, args=["--check", "--diff"])
        assert checked.rc == 0 and checked.failed == 0 and checked.changed > 0, checked.tail(40)
        assert "(a new certificate for %s, %s)" % (MATRIX_HOSTNAME, SERVER_NAME) in checked.output, checked.tail(40)
        _rc, left = bed_target.sh("ls /opt/hearth-matrix /etc/hearth-matrix /etc/systemd/system/hearth-matrix-acme.timer "
                                  "2>&1 | grep -vc 'No such file'", check=False)
        assert left.strip() == "0", left

        # 1. Issued through the proxy, both names, chain to Pebble's root.
        first = _converge(bed_target, stack_vars)
        assert first.rc == 0 and first.failed == 0, "first converge failed:\n" + first.tail(60)
        chain = _served_chain(https, MATRIX_HOSTNAME)
        names = _x509(chain[0], "-ext", "subjectAltName")
        assert "DNS:%s" % MATRIX_HOSTNAME in names and "DNS:%s" % SERVER_NAME in names, names
        assert "Pebble" in _x509(chain[0], "-issuer"), _x509(chain[0], "-issuer")
        (tmp_path / "root.pem").write_text(acme_ca.root())
        (tmp_path / "chain.pem").write_text("".join(chain[1:]))
        (tmp_path / "leaf.pem").write_text(chain[0])
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted",
                                   str(tmp_path / "chain.pem"), str(tmp_path / "leaf.pem")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        assert verified.returncode == 0, verified.stdout
        # The data dir is the client's only; the keys in it are private to it besides.
        _rc, modes = bed_target.sh("stat -c '%a %u' /opt/hearth-matrix/acme; find /opt/hearth-matrix/acme "
                                   "\\( -name 'privkey*.pem' -o -name private_key.json \\) -type f -perm /go+rwx | wc -l; "
                                   "find /opt/hearth-matrix/acme \\( -name 'privkey*.pem' -o -name private_key.json \\) -type f | wc -l")
        assert modes.split()[:2] == ["700", "991"] and modes.split()[2] == "0" and modes.split()[3] != "0", modes
        _rc, timer = bed_target.sh("systemctl is-enabled hearth-matrix-acme.timer; systemctl is-active hearth-matrix-acme.timer")
        assert timer.split() == ["enabled", "active"], timer

        # 2. A second converge orders nothing and changes nothing.
        serial, issued = _serial(https), acme_ca.issued()
        second = _converge(bed_target, stack_vars)
        assert second.rc == 0 and second.changed == 0, "second converge changed something:\n" + second.tail(60)
        assert (_serial(https), acme_ca.issued()) == (serial, issued)

        # 2b. Backup, the ACME data gone, restore: nothing ordered, same links, same certificate.
        backup = dict(stack_vars, hearth_backup_dir=BACKUP_ON_TARGET, hearth_backup_keep=0)
        taken = run_playbook(bed_target.inventory, PLAYBOOKS / "backup.yml", backup)
        assert taken.rc == 0, "backup failed:\n" + taken.tail(40)
        _rc, links = bed_target.sh("cd /opt/hearth-matrix/acme && find live -type l -printf '%p %l\\n' | sort")
        assert links.strip() and all(" ../../archive/" in line for line in links.splitlines()), links
        bed_target.sh("rm -rf /opt/hearth-matrix/acme")
        restored = run_playbook(bed_target.inventory, PLAYBOOKS / "restore.yml", dict(stack_vars, hearth_restore_dir=BACKUP_ON_TARGET))
        assert restored.rc == 0 and restored.failed == 0, "restore failed:\n" + restored.tail(60)
        _rc, links_after = bed_target.sh("cd /opt/hearth-matrix/acme && find live -type l -printf '%p %l\\n' | sort")
        assert links_after == links, (links, links_after)
        assert (_serial(https), acme_ca.issued()) == (serial, issued)
        bed_target.sh("rm -rf " + BACKUP_ON_TARGET)

        # 3. The timer's service renews (renew_days beyond the validity), the proxy reloads.
        started = _podman_on(bed_target, "inspect --format '{{.State.StartedAt}}' hearth-nginx-proxy")
        _set_renew_days(bed_target, 100000)
        loop = ClientLoop(https)
        loop.start()
        try:
            threading.Event().wait(1)
            rc, out = bed_target.sh("systemctl start hearth-matrix-acme.service; "
                                    "journalctl -u hearth-matrix-acme.service -n 5 --no-pager", check=False)
            threading.Event().wait(1)
        finally:
            loop.stop.set()
            loop.join(30)
        assert rc == 0, out
        renewed = _serial(https)
        assert renewed != serial and acme_ca.issued() == issued + 1, (serial, renewed, out)
        assert _podman_on(bed_target, "inspect --format '{{.State.StartedAt}}' hearth-nginx-proxy") == started
        assert loop.ok > 0 and not loop.failures, (loop.ok, loop.failures[:5])

        # 4. The server name points elsewhere: the order fails naming it, the cert stays.
        acme_ca.point(SERVER_NAME, "127.0.0.1")
        # A new ACME account, so no authorization of the earlier orders can stand in for the
        # challenge: Pebble reuses a valid one 1 time in 100 even with PEBBLE_AUTHZREUSE=0
        # (a new one only when rand.Intn(100) > 0), and the order then succeeds unchallenged.
        bed_target.sh("mv /opt/hearth-matrix/acme/accounts /opt/hearth-matrix/acme/accounts.before-step-4")
        failed = _converge(bed_target, dict(stack_vars, hearth_acme_renew_days=100000))
        assert failed.rc != 0, failed.tail(40)
        messages = [m for m in failure_messages(failed.output) if "ACME" in m]
        assert messages and "challenge failed for %s " % SERVER_NAME in messages[0], failure_messages(failed.output)
        assert MATRIX_HOSTNAME not in messages[0].split(":")[0], messages[0]
        assert _serial(https) == renewed

        # 5. Back to the self-made certificate: the same converge call removes the renewal
        # timer (units, settings, code); the client's data dir stays.
        off = _converge(bed_target, dict(stack_vars, nginx_proxy_tls_source="self_signed"))
        assert off.rc == 0, off.tail(40)
        rc, left = bed_target.sh("ls /etc/systemd/system/hearth-matrix-acme.timer /etc/systemd/system/hearth-matrix-acme.service "
                                 "%s 2>&1" % SETTINGS_ON_TARGET, check=False)
        assert rc != 0 and left.count("No such file") == 3, left
        rc, _out = bed_target.sh("test -d /opt/hearth-matrix/acme", check=False)
        assert rc == 0, "the ACME data dir went with the timer"


def _podman_on(bed_target: BedTarget, args: str) -> str:
    return bed_target.engine_cmd(args)[1].strip()


def _set_renew_days(bed_target: BedTarget, days: int) -> None:
    bed_target.sh("python3 - <<'EOF'\nimport json\np = %r\ns = json.load(open(p))\ns['renew_days'] = %d\n"
                  "json.dump(s, open(p, 'w'))\nEOF" % (SETTINGS_ON_TARGET, days))
