#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the work happens in the action plugin of the same name, on the
# controller (as ansible.builtin.set_fact does it).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack
short_description: Check the hearth_* stack variables and compute the stack's topology
version_added: "0.1.0"
description:
  - Checks the variables a user writes to describe the stack and computes the topology from
    them (which components run, who requires whom, networks, start order, the values each
    role receives).
  - Sets the fact C(hearth_topology). Runs on the controller only; nothing touches the host.
  - Each option C(X) is the user's variable C(hearth_X), and every error is one line that
    names that variable, for example C(hearth_mailer_sender must be an email address, got 'x').
options:
  server_name:
    description: The Matrix server name (C(hearth_server_name)), e.g. C(example.org).
    type: str
    required: true
  matrix_hostname:
    description: Host name of the homeserver (C(hearth_matrix_hostname)); empty for C(matrix.<server_name>).
    type: str
    default: ""
  element_hostname:
    description: Host name of Element web (C(hearth_element_hostname)); empty for C(element.<server_name>).
    type: str
    default: ""
  engine:
    description: The container engine (C(hearth_engine)).
    type: str
    default: docker
    choices: [docker, podman]
  base_dir:
    description: Absolute directory under which every component keeps its files (C(hearth_base_dir)).
    type: str
    default: /opt/hearth-matrix
  enabled:
    description:
      - "Which components run, as a mapping of component name to a boolean or its text
        spelling (C(yes), C(false) ...), for example C({mailer: true, element: false})."
      - Components are C(postgres), C(synapse), C(nginx_proxy) (on by default), C(mailer),
        C(identity), C(corporal) and C(element) (off by default); C(corporal) needs the proxy.
      - Without this option the action reads the play's variables C(hearth_<component>_enabled),
        and errors name those variables.
    type: dict
  public_identity_server:
    description: Identity server named when the identity component is off (C(hearth_public_identity_server)); empty for none.
    type: str
    default: https://vector.im
  external_database:
    description:
      - The database when PostgreSQL is off (C(hearth_external_database)).
      - A mapping with C(host), C(name), C(user) and optionally C(port).
    type: dict
  external_database_password:
    description: Its password (C(hearth_external_database_password)); required when PostgreSQL is off. Never returned.
    type: str
    default: ""
  mailer_sender:
    description: Sender address of the stack's mail (C(hearth_mailer_sender)); empty for C(matrix@<server_name>).
    type: str
    default: ""
  images:
    description: "Image per component (C(hearth_images)), for example C({synapse: localhost/hearth/synapse:1.2})."
    type: dict
    default: {}
  network_subnet:
    description:
      - IPv4 subnet of the stack network (C(hearth_network_subnet)), at least 128 addresses.
      - Every component gets a fixed address in its upper half and every container an
        C(/etc/hosts) entry for each component, so no container depends on the engine's DNS
        to find another; the engine hands the lower half to other containers.
    type: str
    default: 10.89.91.0/24
  extra_hosts:
    description:
      - "Extra C(/etc/hosts) entries for every container of the stack (C(hearth_extra_hosts)),
        host name to IPv4 address, for example C({matrix.example.net: 192.0.2.10})."
      - Added to the entries for the stack's own components, never instead of them; a
        component's name (C(hearth-synapse) ...) cannot be used.
      - On a real server DNS finds federation peers and this stays empty. It is for names
        DNS does not give the containers (split-horizon DNS, closed networks, test beds).
      - The entries are part of every container, so changing them restarts every service.
    type: dict
    default: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: Computes data only; there is never anything to diff.
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Check the stack variables and compute the topology
  hearth.matrix.stack:
    server_name: "{{ hearth_server_name | default(omit) }}"
    engine: "{{ hearth_engine | default(omit) }}"
    mailer_sender: "{{ hearth_mailer_sender | default(omit) }}"

- name: The same, with the components given here instead of hearth_<component>_enabled
  hearth.matrix.stack:
    server_name: example.org
    enabled: {mailer: true, element: true}

- name: Show the start order
  ansible.builtin.debug:
    msg: "{{ hearth_topology.start_order }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to the host's variables.
  returned: success
  type: dict
  contains:
    hearth_topology:
      description:
        - Everything that crosses role boundaries (see plugins/module_utils/topology.py).
        - Keys include C(enabled), C(services) (per service C(requires), C(wants), C(after),
          C(networks), C(address)), C(network_subnet), C(hosts) (service name to address),
          C(extra_hosts) (the user's own entries, in every container's C(/etc/hosts)),
          C(start_order), C(stop_order), C(well_known), C(shared_secrets),
          and per component the values its role receives (C(synapse), C(proxy), C(element),
          C(corporal), C(identity), C(mailer)).
      type: dict
      returned: success
msg:
  description: On failure, one line naming the hearth_* variable to fix.
  returned: failure
  type: str
  sample: "hearth_mailer_sender must be an email address, got 'x'"
"""
