#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_service
short_description: Install one container as a hardened systemd service
version_added: "0.1.0"
description:
  - Validates a container spec (the collection's one model of a container) and writes the
    systemd unit that supervises it (the collection's one model of a unit).
  - The container runs non-root with all capabilities dropped, C(no-new-privileges) and a
    read-only root unless the spec says otherwise; running as root or adding a capability
    requires C(root_reason) in O(container).
  - The unit removes a stale container, creates the container, connects it to its extra
    networks and starts it attached, so its output goes to the journal under
    C(SyslogIdentifier=<name>). It uses C(DefaultDependencies=no) plus explicit shutdown
    ordering, which avoids the ordering cycle with a C(docker.service) that has
    C(After=multi-user.target).
  - Only writes the unit file. Reload, enable and (re)start belong to
    M(ansible.builtin.systemd_service); RV(restart_needed) tells when a restart is due.
  - With O(state=absent), stops and disables the service, removes the unit and the
    container.
options:
  name:
    description: Name of the service, the unit (without C(.service)) and the container.
    type: str
    required: true
  state:
    description: Whether the service should exist.
    type: str
    choices: [present, absent]
    default: present
  engine:
    description: Container engine.
    type: str
    choices: [docker, podman]
    default: docker
  engine_path:
    description: Absolute path of the engine binary on the host (see M(hearth.matrix.host_facts)).
    type: path
  sh_path:
    description: Absolute path of C(sh) on the host, used by the readiness wait.
    type: path
    default: /bin/sh
  engine_unit:
    description: Unit of the engine daemon to require, empty for none (podman).
    type: str
    default: ""
  unit_dir:
    description: Directory for the unit file.
    type: path
    default: /etc/systemd/system
  description:
    description: Unit description.
    type: str
    default: ""
  requires:
    description: Units this service requires (and is ordered after).
    type: list
    elements: str
    default: []
  wants:
    description: Units this service wants (and is ordered after).
    type: list
    elements: str
    default: []
  after:
    description: Extra units this service is ordered after.
    type: list
    elements: str
    default: []
  restart_sec:
    description: Seconds systemd waits before restarting the service.
    type: int
    default: 5
  ready_timeout:
    description: Seconds the unit waits for the container's health command to succeed.
    type: int
    default: 120
  fingerprint:
    description:
      - Opaque text written into the unit, for example checksums of the service's config
        files and the image ID. When it changes the unit changes and a restart is due.
    type: str
    default: ""
  container:
    description:
      - The container spec. Keys - V(image), V(user) (C(uid:gid)), V(root_reason),
        V(cap_add), V(read_only), V(tmpfs) (paths or C(path/size/mode) dicts), V(mounts)
        (C(source/target/read_only) dicts, absolute paths), V(networks) (first is primary),
        V(ports) (C(host_address/host_port/container_port/protocol) dicts), V(env_file),
        V(env), V(labels), V(sysctls) (only namespaced ones - C(net.*), C(kernel.shm*),
        C(kernel.msg*), C(kernel.sem), C(fs.mqueue.*)),
        V(healthcheck) (C(command/interval/timeout/retries/start_period)),
        V(memory), V(pids_limit), V(stop_timeout), V(command), V(entrypoint), V(workdir).
      - Required when O(state=present).
    type: dict
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Install the Synapse service
  hearth.matrix.container_service:
    name: hearth-synapse
    engine: docker
    engine_path: "{{ hearth_host.engine_path }}"
    sh_path: "{{ hearth_host.sh_path }}"
    engine_unit: docker.service
    requires: [hearth-postgres.service]
    container:
      image: localhost/hearth/synapse:test
      user: "991:991"
      networks: [hearth]
      tmpfs: [/tmp]
      mounts:
        - {source: /opt/hearth-matrix/synapse/config, target: /config}
        - {source: /opt/hearth-matrix/synapse/data, target: /data, read_only: false}
      healthcheck:
        command: [/usr/local/bin/healthcheck]
  register: synapse_unit

- name: Remove the identity server service
  hearth.matrix.container_service:
    name: hearth-identity
    state: absent
    engine: podman
    engine_path: /usr/bin/podman
"""

RETURN = r"""
unit_path:
  description: Path of the unit file.
  returned: always
  type: str
  sample: /etc/systemd/system/hearth-synapse.service
restart_needed:
  description: Whether the unit changed, so the service must be restarted to apply it.
  returned: always
  type: bool
  sample: true
argv:
  description: The C(create) command the unit runs, as a list.
  returned: when state is present
  type: list
  elements: str
  sample: [/usr/bin/docker, create, --name=hearth-synapse, --user=991:991, --cap-drop=ALL]
"""

import os
import tempfile
from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    SpecError,
    container_spec_from_dict,
    create_argv,
)
from ansible_collections.hearth.matrix.plugins.module_utils.unit import (
    HostPaths,
    UnitSpec,
    check_unit_names,
    render_unit,
)

ARGUMENT_SPEC: Dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "engine": {"type": "str", "choices": ["docker", "podman"], "default": "docker"},
    "engine_path": {"type": "path"},
    "sh_path": {"type": "path", "default": "/bin/sh"},
    "engine_unit": {"type": "str", "default": ""},
    "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
    "description": {"type": "str", "default": ""},
    "requires": {"type": "list", "elements": "str", "default": []},
    "wants": {"type": "list", "elements": "str", "default": []},
    "after": {"type": "list", "elements": "str", "default": []},
    "restart_sec": {"type": "int", "default": 5},
    "ready_timeout": {"type": "int", "default": 120},
    "fingerprint": {"type": "str", "default": ""},
    "container": {"type": "dict"},
}


def build_unit_spec(params: Dict[str, Any]) -> UnitSpec:
    """Turn module parameters into a validated UnitSpec (raises SpecError)."""
    if not params.get("container"):
        raise SpecError("container", "is required when state is present")
    if not params.get("engine_path"):
        raise SpecError("engine_path", "is required when state is present")
    if params["restart_sec"] < 0:
        raise SpecError("restart_sec", "must be >= 0")
    if params["ready_timeout"] < 1:
        raise SpecError("ready_timeout", "must be >= 1")
    if "\n" in params["fingerprint"] or "\n" in params["description"]:
        raise SpecError("fingerprint", "fingerprint and description must be single lines")
    engine_unit = params["engine_unit"]
    if engine_unit:
        check_unit_names("engine_unit", [engine_unit])
    # Checked here, not only in render_unit, so that a relative path fails with its field
    # name instead of a traceback.
    paths = HostPaths(engine=params["engine_path"], sh=params["sh_path"])
    paths.validate()
    return UnitSpec(
        container=container_spec_from_dict(params["name"], params["container"]),
        engine=params["engine"],
        paths=paths,
        description=params["description"],
        engine_unit=engine_unit,
        requires=check_unit_names("requires", params["requires"]),
        wants=check_unit_names("wants", params["wants"]),
        after=check_unit_names("after", params["after"]),
        restart_sec=params["restart_sec"],
        ready_timeout=params["ready_timeout"],
        fingerprint=params["fingerprint"],
    )


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_atomically(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp_path = tempfile.mkstemp(prefix=".hearth-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_path, 0o644)
        module.atomic_move(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def ensure_present(module: AnsibleModule, unit_path: str) -> None:
    params = module.params
    try:
        spec = build_unit_spec(params)
    except SpecError as error:
        module.fail_json(msg="%s: %s" % (params["name"], error), field=error.field)
    text = render_unit(spec)
    before = _read(unit_path)
    changed = before != text
    if changed and not module.check_mode:
        if not os.path.isdir(os.path.dirname(unit_path)):
            module.fail_json(msg="unit_dir: %s does not exist" % os.path.dirname(unit_path), field="unit_dir")
        _write_atomically(module, unit_path, text)
    result: Dict[str, Any] = {
        "changed": changed,
        "unit_path": unit_path,
        "restart_needed": changed,
        "argv": create_argv(spec.container, spec.engine, spec.paths.engine),
    }
    if module._diff:
        result["diff"] = {"before": before or "", "after": text, "before_header": unit_path, "after_header": unit_path}
    module.exit_json(**result)


def ensure_absent(module: AnsibleModule, unit_path: str) -> None:
    name = module.params["name"]
    before = _read(unit_path)
    if before is None:
        module.exit_json(changed=False, unit_path=unit_path, restart_needed=False)
    if not module.check_mode:
        systemctl = module.get_bin_path("systemctl", required=True)
        # A unit that is already stopped or was never enabled is fine: ignore those failures.
        module.run_command([systemctl, "disable", "--now", name + ".service"])
        os.unlink(unit_path)
        module.run_command([systemctl, "daemon-reload"], check_rc=True)
        if module.params["engine_path"]:
            module.run_command([module.params["engine_path"], "rm", "--force", name])
    result: Dict[str, Any] = {"changed": True, "unit_path": unit_path, "restart_needed": False}
    if module._diff:
        result["diff"] = {"before": before, "after": "", "before_header": unit_path, "after_header": unit_path}
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    unit_path = os.path.join(module.params["unit_dir"], module.params["name"] + ".service")
    if module.params["state"] == "present":
        ensure_present(module, unit_path)
    else:
        ensure_absent(module, unit_path)


if __name__ == "__main__":
    main()
