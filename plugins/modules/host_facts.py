#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_facts
short_description: Gather the host facts that hearth.matrix units need
version_added: "0.1.0"
description:
  - Finds the absolute paths of the container engine and of C(sh) on the host. systemd
    before v239 has no C(PATH) lookup for C(ExecStart=), and these binaries live in C(/bin)
    or C(/usr/bin) depending on the distribution, so units carry absolute paths.
  - Reports the systemd version, the cgroup version, whether the engine answers, and
    whether Ansible runs as root.
  - For a rootless engine mode, C(engine_argv) runs the engine as O(rootless_user) with its
    own storage (C(runuser) with C(HOME), C(XDG_RUNTIME_DIR) and C(DOCKER_HOST)).
  - Sets the fact C(hearth_host). Never changes anything.
options:
  engine:
    description: The container engine the stack uses.
    type: str
    required: true
    choices: [docker, podman, podman_rootless, docker_rootless]
  rootless_user:
    description: The service user of a rootless engine mode (C(hearth_rootless_user)).
    type: str
    default: hearth
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: Gathers facts only; there is never anything to diff.
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Gather host facts for the units
  hearth.matrix.host_facts:
    engine: docker

- name: Show where docker lives
  ansible.builtin.debug:
    msg: "{{ hearth_host.engine_path }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to the host's variables.
  returned: always
  type: dict
  contains:
    hearth_host:
      description: What the units need to know about this host.
      type: dict
      returned: always
      contains:
        engine:
          description: The engine asked for.
          type: str
          sample: docker
        engine_path:
          description: Absolute path of the engine binary, empty when not installed.
          type: str
          sample: /usr/bin/docker
        engine_argv:
          description: The command that runs the engine (for a rootless mode, as the service user).
          type: list
          elements: str
          sample: [/usr/bin/docker]
        engine_running:
          description: Whether C(<engine> info) succeeded.
          type: bool
          sample: true
        engine_unit:
          description: The systemd unit of the engine daemon (empty for daemonless podman).
          type: str
          sample: docker.service
        sh_path:
          description: Absolute path of the POSIX shell.
          type: str
          sample: /bin/sh
        systemd_version:
          description: The systemd version number, 0 when unknown.
          type: int
          sample: 252
        cgroup_version:
          description: 2 for the unified hierarchy, 1 for legacy or hybrid.
          type: int
          sample: 2
        rootless:
          description: Whether the module runs as a non-root user.
          type: bool
          sample: false
        sysusers_path:
          description: Absolute path of C(systemd-sysusers), empty when absent.
          type: str
          sample: /usr/bin/systemd-sysusers
"""

import os
import pwd
import re
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import (
    RootlessUser,
    engine_binary,
    is_rootless,
    run_as_argv,
)

_ENGINE_UNITS = {"docker": "docker.service", "podman": "", "podman_rootless": "", "docker_rootless": "docker.service"}


def _systemd_version(module: AnsibleModule) -> int:
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return 0
    rc, out, _err = module.run_command([systemctl, "--version"])
    match = re.match(r"systemd (\d+)", out or "")
    return int(match.group(1)) if rc == 0 and match else 0


def _cgroup_version() -> int:
    # cgroup.controllers exists only at the root of a unified (v2) hierarchy.
    return 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1


def _engine_argv(module: AnsibleModule, engine: str, engine_path: str, user: str) -> List[str]:
    if not engine_path or not is_rootless(engine):
        return [engine_path] if engine_path else []
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return []
    prefix = run_as_argv(module.get_bin_path("runuser") or "runuser", RootlessUser(user, entry.pw_dir), entry.pw_uid)
    return prefix + [engine_path]


def gather(module: AnsibleModule, engine: str, rootless_user: str = "hearth") -> Dict[str, Any]:
    engine_path = module.get_bin_path(engine_binary(engine)) or ""
    engine_argv = _engine_argv(module, engine, engine_path, rootless_user)
    engine_running = False
    if engine_argv:
        rc, _out, _err = module.run_command(engine_argv + ["info"])
        engine_running = rc == 0
    return {
        "engine": engine,
        "engine_path": engine_path,
        "engine_argv": engine_argv,
        "engine_running": engine_running,
        "engine_unit": _ENGINE_UNITS[engine],
        "sh_path": module.get_bin_path("sh") or "",
        "systemd_version": _systemd_version(module),
        "cgroup_version": _cgroup_version(),
        "rootless": os.geteuid() != 0,
        "sysusers_path": module.get_bin_path("systemd-sysusers") or "",
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={"engine": {"type": "str", "required": True, "choices": ["docker", "podman", "podman_rootless", "docker_rootless"]},
                       "rootless_user": {"type": "str", "default": "hearth"}},
        supports_check_mode=True,
    )
    facts = gather(module, module.params["engine"], module.params["rootless_user"])
    module.exit_json(changed=False, ansible_facts={"hearth_host": facts})


if __name__ == "__main__":
    main()
