# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pebble (Let's Encrypt's ACME test server) on the bed, shared by the ACME and federation tests.

Pebble and pebble-challtestsrv (its DNS test server) run in one bed container the test creates
on the bed network (image tests/bed/images/pebble). challtestsrv resolves every name to one
target's bed address unless told otherwise (``point``), so Pebble checks HTTP-01 on that
target's port 80, answered by the proxy from its ACME webroot.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator

from conftest import RUN_ID, BedTarget
from harness import wait_for

PEBBLE_IMAGE = "localhost/hearth/pebble:test"
CERTBOT_IMAGE = "localhost/hearth/certbot:test"
API_CA_ON_TARGET = "/etc/hearth-test/pebble-api-ca.pem"


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError("podman %s failed: %s" % (" ".join(args), done.stderr))
    return done.stdout


def port_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


@dataclass(frozen=True)
class Pebble:
    """One running Pebble container: its name, bed address and the CA of its API's certificate."""

    name: str
    address: str
    api_ca: str

    def root(self) -> str:
        """The root every certificate Pebble issues chains to (made at Pebble's start)."""
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:
            handle.write(self.api_ca)
            handle.flush()
            context = ssl.create_default_context(cafile=handle.name)
            return urllib.request.urlopen(  # noqa: S310  the Pebble container the test created
                "https://%s:15000/roots/0" % self.address, context=context, timeout=10).read().decode()

    def point(self, host: str, address: str) -> None:
        """challtestsrv resolves ``host`` to ``address`` from now on."""
        request = urllib.request.Request("http://%s:8055/add-a" % self.address, method="POST", data=json.dumps(
            {"host": host, "addresses": [address]}).encode())
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310  the Pebble container the test created

    def issued(self) -> int:
        """How many certificates Pebble has issued (its log)."""
        logs = subprocess.run(["podman", "logs", self.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False).stdout
        return logs.count("Issued certificate serial")

    def stack_vars(self, bed_target: BedTarget, email: str) -> Dict[str, Any]:
        """The ACME variables of a stack on ``bed_target`` ordering from this Pebble; puts the
        API's CA on the target (the ACME client's ``hearth_acme_ca_bundle``)."""
        directory = str(Path(API_CA_ON_TARGET).parent)
        bed_target.sh("mkdir -p %s && cat > %s <<'EOF'\n%sEOF" % (directory, API_CA_ON_TARGET, self.api_ca))
        return {"nginx_proxy_tls_source": "acme", "hearth_acme_directory_url": "https://%s:14000/dir" % self.address,
                "hearth_acme_ca_bundle": API_CA_ON_TARGET, "hearth_acme_image": CERTBOT_IMAGE,
                "hearth_acme_email": email}


@contextlib.contextmanager
def pebble(target_ip: str) -> Iterator[Pebble]:
    """Pebble + challtestsrv in one bed container, every name resolving to ``target_ip``."""
    name = "hearth-bed-%s-pebble-%s" % (RUN_ID, uuid.uuid4().hex[:6])
    podman("run", "-d", "--name", name, "--label", "hearth.bed.run=%s" % RUN_ID,
           "-e", "TARGET_IP=%s" % target_ip, "-e", "PEBBLE_VA_NOSLEEP=1", "-e", "PEBBLE_WFE_NONCEREJECT=0",
           "-e", "PEBBLE_AUTHZREUSE=0", PEBBLE_IMAGE)
    try:
        address = podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).strip()
        wait_for(lambda: port_open(address, 14000) and port_open(address, 8055), timeout=60,
                 what="pebble and pebble-challtestsrv in %s" % name)
        # The API's CA is made by the container's start script before pebble listens.
        yield Pebble(name=name, address=address, api_ca=podman("exec", name, "cat", "/pebble/api-ca.crt"))
    finally:
        podman("rm", "--force", name, check=False)
