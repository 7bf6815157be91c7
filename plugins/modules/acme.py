#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Order and install the proxy's ACME certificate (certbot in a hardened container)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: acme
short_description: ACME (HTTP-01) certificate for the hearth.matrix proxy, renewed by a timer
version_added: "0.1.0"
description:
  - Orders a certificate for O(domains) with certbot, run once per order as a container
    (O(image)) with uid O(uid), no capability, C(no-new-privileges), a read-only root, its
    data dir O(data_dir) (account key and certificates, mode 0700) and the proxy's ACME
    webroot O(webroot) mounted. The proxy serves the challenge on port 80.
  - Orders only when the client's certificate is missing, lacks one of O(domains) or
    expires within O(renew_days) days. Installs it as C(server.crt)/C(server.key) in
    O(tls_dir) when it differs from the served pair, writes C(ocsp.stapling.conf) there only
    when the certificate names an OCSP responder, then reloads the proxy (SIGHUP, no restart).
  - A failed order leaves the served certificate as it is and fails with one line naming the
    hostnames whose challenge failed.
  - Writes O(settings_path) (mode 0600) with the same request, for the host's renewal timer.
options:
  domains:
    description: DNS names of the certificate (no wildcards; HTTP-01 cannot prove them).
    type: list
    elements: str
    required: true
  engine:
    description: Container engine on the host.
    type: str
    choices: [docker, podman]
    required: true
  image:
    description: Image with C(certbot) on its PATH (the official C(certbot/certbot) works).
    type: str
    required: true
  uid:
    description: User the client runs as; owns O(data_dir) and the challenge directory.
    type: int
    default: 991
  gid:
    description: Group of the client and of the installed certificate and key.
    type: int
    default: 991
  network:
    description: Container network the client joins for its outgoing connections.
    type: str
    default: hearth
  data_dir:
    description: The client's data directory on the host (account key, certificates).
    type: path
    required: true
  webroot:
    description: The proxy's ACME webroot on the host (served at C(/.well-known/acme-challenge/)).
    type: path
    required: true
  tls_dir:
    description: Directory on the host with the proxy's C(server.crt) and C(server.key).
    type: path
    required: true
  proxy_container:
    description: Container reloaded (SIGHUP) after a new certificate was installed.
    type: str
    default: hearth-nginx-proxy
  directory_url:
    description: ACME directory URL (Let's Encrypt by default).
    type: str
    default: https://acme-v02.api.letsencrypt.org/directory
  ca_bundle:
    description: CA bundle on the host that the client trusts for O(directory_url); empty for the image's roots.
    type: path
    default: ""
  email:
    description: Account contact address; empty registers without one.
    type: str
    default: ""
  renew_days:
    description: Order again when the certificate expires within this many days.
    type: int
    default: 30
  settings_path:
    description: Where the renewal timer's copy of this request is written; empty writes none.
    type: path
    default: /etc/hearth-matrix/acme.json
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports what would be ordered, installed and reloaded; runs nothing but openssl.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The served certificate's serial, expiry and names before and after (never a key).
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Certificate for the matrix hostname and the server name
  hearth.matrix.acme:
    domains: [matrix.example.org, example.org]
    engine: podman
    image: docker.io/certbot/certbot:v5.8.0
    data_dir: /opt/hearth-matrix/acme
    webroot: /opt/hearth-matrix/nginx-proxy/acme
    tls_dir: /opt/hearth-matrix/nginx-proxy/tls
    email: admin@example.org
"""

RETURN = r"""
ordered:
  description: A certificate was (or in check mode would be) ordered.
  type: bool
  returned: always
installed:
  description: The served certificate was (would be) replaced.
  type: bool
  returned: always
reloaded:
  description: The proxy was (would be) reloaded.
  type: bool
  returned: always
reason:
  description: Why a certificate was ordered, empty when none was.
  type: str
  returned: always
stapling:
  description: OCSP stapling is on (the certificate names an OCSP responder).
  type: bool
  returned: always
changes:
  description: What changed, in words.
  type: list
  elements: str
  returned: always
"""

import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hearth.matrix.plugins.module_utils.acme import (
    CONTAINER_CA_BUNDLE,
    CONTAINER_DATA,
    CONTAINER_WEBROOT,
    AcmeError,
    AcmeRequest,
    converge,
)
from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    SpecError,
    container_spec_from_dict,
    create_argv,
)


def client_argv(params: dict, engine_path: str) -> list:
    """The hardened ``<engine> run --rm`` argv of one certbot run (container.py's defaults)."""
    mounts = [{"source": params["data_dir"], "target": CONTAINER_DATA, "read_only": False},
              {"source": params["webroot"], "target": CONTAINER_WEBROOT, "read_only": False}]
    env = {}
    if params["ca_bundle"]:
        mounts.append({"source": params["ca_bundle"], "target": CONTAINER_CA_BUNDLE, "read_only": True})
        # certbot talks through requests, which reads this variable.
        env["REQUESTS_CA_BUNDLE"] = CONTAINER_CA_BUNDLE
    spec = container_spec_from_dict("hearth-acme", {
        "image": params["image"], "user": "%d:%d" % (params["uid"], params["gid"]), "read_only": True,
        "tmpfs": [{"path": "/tmp", "size": "64m"}], "mounts": mounts, "networks": [params["network"]],
        "env": env, "entrypoint": "certbot", "memory": "256m", "pids_limit": 64, "stop_timeout": 10,
        "labels": {"org.hearth-matrix.component": "acme"}})
    argv = create_argv(spec, params["engine"], engine_path)
    # One run, attached: its output is the error message; --rm leaves nothing behind.
    return [argv[0], "run", "--rm"] + [arg for arg in argv[2:] if not arg.startswith("--log-driver")]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            domains=dict(type="list", elements="str", required=True),
            engine=dict(type="str", choices=["docker", "podman"], required=True),
            image=dict(type="str", required=True),
            uid=dict(type="int", default=991),
            gid=dict(type="int", default=991),
            network=dict(type="str", default="hearth"),
            data_dir=dict(type="path", required=True),
            webroot=dict(type="path", required=True),
            tls_dir=dict(type="path", required=True),
            proxy_container=dict(type="str", default="hearth-nginx-proxy"),
            directory_url=dict(type="str", default="https://acme-v02.api.letsencrypt.org/directory"),
            ca_bundle=dict(type="path", default=""),
            email=dict(type="str", default=""),
            renew_days=dict(type="int", default=30),
            settings_path=dict(type="path", default="/etc/hearth-matrix/acme.json"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    domains = [d.lower() for d in params["domains"]]
    if not domains or any(d.startswith("*.") for d in domains):
        module.fail_json(msg="domains must be DNS names without wildcards (HTTP-01), got %s" % domains)
    if params["renew_days"] < 1:
        module.fail_json(msg="renew_days must be at least 1, got %d" % params["renew_days"])
    if params["ca_bundle"] and not os.path.isfile(params["ca_bundle"]):
        module.fail_json(msg="ca_bundle %s is not a file on the host" % params["ca_bundle"])
    engine_path = module.get_bin_path(params["engine"], required=True)
    openssl = module.get_bin_path("openssl", required=True)
    try:
        argv = client_argv(params, engine_path)
    except SpecError as exc:
        module.fail_json(msg="acme client container: %s" % exc)
    request = AcmeRequest(
        domains=tuple(domains), data_dir=params["data_dir"], tls_dir=params["tls_dir"], client_argv=tuple(argv),
        engine_path=engine_path, proxy_container=params["proxy_container"], directory_url=params["directory_url"],
        email=params["email"], ca_bundle=params["ca_bundle"], renew_days=params["renew_days"],
        uid=params["uid"], gid=params["gid"])
    settings_changed = False
    if params["settings_path"]:
        settings_changed = write_settings(module, params["settings_path"], request)

    def run(argv_: list) -> tuple:
        return module.run_command(argv_)

    served = os.path.join(params["tls_dir"], "server.crt")
    before = describe(run, openssl, served)
    try:
        result = converge(request, run, openssl, module.check_mode)
    except (AcmeError, OSError) as exc:
        module.fail_json(msg=str(exc))
    data = result.as_dict()
    data["changed"] = result.changed or settings_changed
    if module._diff:  # pylint: disable=protected-access
        after = "(a new certificate for %s)\n" % ", ".join(domains) if module.check_mode and result.installed \
            else describe(run, openssl, served)
        data["diff"] = {"before": before, "after": after, "before_header": served, "after_header": served}
    module.exit_json(**data)


def describe(run: Any, openssl: str, path: str) -> str:
    """Serial, expiry and names of a certificate, for the diff."""
    if not os.path.exists(path):
        return "(none)\n"
    rc, out, _err = run([openssl, "x509", "-in", path, "-noout", "-serial", "-enddate", "-ext", "subjectAltName"])
    return out if rc == 0 else "(unreadable)\n"


def write_settings(module: AnsibleModule, path: str, request: AcmeRequest) -> bool:
    """The renewal timer's request (root 0600); True when it changed."""
    text = json.dumps(request_to_dict(request), indent=2, sort_keys=True) + "\n"
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    if not module.check_mode:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.rename(tmp, path)
    return True


def request_to_dict(request: AcmeRequest) -> dict:
    data = dict(request.__dict__)
    data["domains"] = list(request.domains)
    data["client_argv"] = list(request.client_argv)
    return data


if __name__ == "__main__":
    main()
