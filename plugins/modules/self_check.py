#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The action plugin of the same name runs the outside checks on the controller and calls
# this module on the host for the units' and containers' states.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: self_check
short_description: Check a deployed hearth.matrix stack from outside and on the host
version_added: "0.1.0"
description:
  - Runs on the controller and reaches the stack the way clients and other homeservers do
    (host names, published ports, TLS), then asks the host for the state of every unit and
    container. Returns one report line per check (C(ok), C(WARN) or C(FAIL), what was seen
    and, for a problem, how to fix it); the playbook C(hearth.matrix.self_check) prints it and
    fails naming each failed check.
  - "From the controller: C(/_matrix/client/versions) on the matrix hostname;
    C(/.well-known/matrix/client) (JSON naming the homeserver, C(Access-Control-Allow-Origin: *))
    and C(/.well-known/matrix/server) on the server name; C(/_matrix/key/v2/server) and
    C(/_matrix/federation/v1/version) where the delegation points (the server name on 8448
    without one); the certificate of every name and port probed (chain, name, days to expiry);
    that the proxy reaches every enabled upstream (no 502-504 on its route)."
  - "On the host: every unit of the topology is active, its container runs and its health check
    passes."
  - HTTP probes do not verify certificates, the certificate checks do; so a bad certificate is
    reported once, under its own name.
  - Reads only; never changes anything (check mode runs every check as well).
options:
  topology:
    description: The stack's topology, C(hearth_topology) as computed by M(hearth.matrix.stack).
    type: dict
    required: true
  engine:
    description: The container engine of the stack.
    type: str
    default: docker
    choices: [docker, podman]
  https_port:
    description: Public HTTPS port of the proxy (C(nginx_proxy_https_host_port)).
    type: int
    default: 443
  connect_address:
    description:
      - Connect to this address instead of resolving the host names (TLS and HTTP still use the
        names). For a stack whose names do not resolve to it from the controller yet.
    type: str
    default: ""
  port_map:
    description:
      - Public port to the port actually connected to, for example C({443 = 10443}) behind port
        forwarding. Ports not listed are used as they are.
    type: dict
    default: {}
  ca_file:
    description: CA bundle on the controller to verify certificates with; empty for the system's trust store.
    type: path
    default: ""
  expiry_warn_days:
    description: Warn when a certificate expires within this many days.
    type: int
    default: 30
  timeout:
    description: Seconds each connection may take.
    type: float
    default: 10
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, so check mode runs every check.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: Nothing ever changes.
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Check the stack
  hearth.matrix.self_check:
    topology: "{{ hearth_topology }}"
    engine: podman
  register: hearth_self_check

- name: Print the report
  ansible.builtin.debug:
    var: hearth_self_check.report

- name: Behind port forwarding, before DNS points at the server
  hearth.matrix.self_check:
    topology: "{{ hearth_topology }}"
    connect_address: 203.0.113.7
    port_map: {443: 10443, 8448: 18448}
    ca_file: /etc/ssl/my-private-ca.crt
"""

RETURN = r"""
report:
  description: "One line per check (C(ok|WARN|FAIL <check>: <what> -> fix: <how>)), then a summary line."
  returned: always
  type: list
  elements: str
  sample:
    - "ok   client API versions: matrix.example.org:443 answers, newest v1.11"
    - "FAIL service hearth-synapse: unit hearth-synapse.service is inactive -> fix: systemctl restart hearth-synapse.service; ..."
    - "2 checks: 1 failed (service hearth-synapse), 0 warning(s)"
checks:
  description: Every check as data.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's stable name, for example C(certificate matrix.example.org:443).
      type: str
    status:
      description: C(ok), C(WARN) or C(FAIL).
      type: str
    detail:
      description: What was seen.
      type: str
    fix:
      description: How to fix it (empty when ok).
      type: str
failed_checks:
  description: Names of the failed checks.
  returned: always
  type: list
  elements: str
  sample: [service hearth-synapse]
services:
  description: State of each service on the host (the module's own answer).
  returned: always
  type: dict
  sample: {"hearth-synapse": {"active": "active", "container": true, "running": true, "health": "healthy", "engine": "podman"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils.self_check_host import read_services, service_names

ARGUMENT_SPEC = {
    "topology": {"type": "dict", "required": True},
    "engine": {"type": "str", "default": "docker", "choices": ["docker", "podman"]},
    "https_port": {"type": "int", "default": 443},
    "connect_address": {"type": "str", "default": ""},
    "port_map": {"type": "dict", "default": {}},
    "ca_file": {"type": "path", "default": ""},
    "expiry_warn_days": {"type": "int", "default": 30},
    "timeout": {"type": "float", "default": 10},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    engine = module.params["engine"]
    systemctl = module.get_bin_path("systemctl", required=True)
    engine_path = module.get_bin_path(engine)
    if not engine_path:
        module.fail_json(msg="engine: %s is not installed on the host" % engine)
    services = read_services(module.run_command, systemctl, engine, engine_path, service_names(module.params["topology"]))
    module.exit_json(changed=False, services=services)


if __name__ == "__main__":
    main()
