#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_cluster
short_description: Find the stack's PostgreSQL data directory; upgrade it to a new major version
version_added: "0.2.0"
description:
  - The clusters live under O(base_dir) - C(data) (the first one) and C(data-<major>) (made by
    an upgrade). The cluster in use is the one of the newest major, read from its C(PG_VERSION).
  - The major of O(image) comes from its environment (C(PG_MAJOR), else
    C(/usr/lib/postgresql/<major>/bin) in C(PATH), else C(PG_VERSION)).
  - C(find) (the postgres role) returns the data directory to mount. It fails, changing
    nothing, when O(image) is of a newer major than the cluster (run the upgrade playbook) or of
    an older one (it cannot read the data). Without a cluster it returns C(<base_dir>/data).
  - C(check) (the upgrade playbook) returns what the upgrade does - C(needed) false when the
    cluster already is of the image's major. Fails, changing nothing, when there is no cluster
    or the image's major is unknown or older.
  - C(prepare) dumps the running old server (C(pg_dumpall) in O(service)), saves its unit,
    initialises C(data-<major>.new) in a temporary container of O(image) made from
    O(component) (the role's hardened container, without network), restores the dump, compares
    the row counts of every table of O(database_name), and renames the directory to
    C(data-<major>). The old directory is never written to. Synapse must be stopped.
  - C(rollback) removes the new directory, puts the saved unit back and restarts the old
    server on the old directory. C(finish) removes the dump and the saved unit.
options:
  step:
    description: What to do.
    type: str
    required: true
    choices: [find, check, prepare, rollback, finish]
  base_dir:
    description: The postgres role's base directory (C(postgres_base_dir)).
    type: path
    required: true
  image:
    description: The PostgreSQL image the role runs (C(postgres_image)).
    type: str
    required: true
  engine:
    description:
      - The engine mode, C(docker), C(podman) or C(podman_rootless) (C(find) only; the upgrade
        steps need a rootful mode).
    type: str
    default: docker
  rootless_user:
    description: The service user of C(podman_rootless) (C(hearth_rootless_user)), whose image store C(find) reads.
    type: str
    default: hearth
  upgrading:
    description: C(find) only - accept an image of a newer major (the upgrade playbook's first look).
    type: bool
    default: false
  service:
    description: The PostgreSQL unit and container (C(postgres_service_name)).
    type: str
    default: hearth-postgres
  database_user:
    description: The cluster's superuser (C(postgres_db_user)).
    type: str
    default: synapse
  database_name:
    description: The database whose row counts are compared (C(postgres_db_name)).
    type: str
    default: synapse
  component:
    description: The postgres component as the role planned it (C(prepare) only).
    type: dict
  plan:
    description: What C(check) returned (C(prepare) and C(rollback)).
    type: dict
  unit_dir:
    description: Directory of the systemd units.
    type: path
    default: /etc/systemd/system
  ready_timeout:
    description: Seconds the temporary new server gets to come up.
    type: int
    default: 120
  pending_dir:
    description:
      - Where M(hearth.matrix.component) records restarts it still owes (its C(pending_dir)).
        C(rollback) removes the service's record - the old unit it puts back is what runs.
    type: path
    default: /run/hearth-matrix/pending-restart
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: C(find) and C(check) only read; C(prepare), C(rollback) and C(finish) report a change and do nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: C(prepare) shows the data directory before and after.
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: The data directory the role mounts
  hearth.matrix.postgres_cluster:
    step: find
    base_dir: /opt/hearth-matrix/postgres
    image: docker.io/library/postgres:17-bookworm
    engine: podman
  register: cluster

- name: What an upgrade to the image's major would do
  hearth.matrix.postgres_cluster:
    step: check
    base_dir: /opt/hearth-matrix/postgres
    image: docker.io/library/postgres:17-bookworm
  register: upgrade
"""

RETURN = r"""
data_dir:
  description: C(find) - the data directory to mount.
  returned: step is find
  type: str
  sample: /opt/hearth-matrix/postgres/data-17
cluster_major:
  description: C(find) - the major of the cluster in use (null without a cluster).
  returned: step is find
  type: int
  sample: 17
image_major:
  description: C(find) - the major of the image (null when it is not on the host or tells none).
  returned: step is find
  type: int
  sample: 17
needed:
  description: C(check) - whether the cluster is older than the image.
  returned: step is check
  type: bool
old_dir:
  description: C(check) - the cluster in use before the upgrade; it stays.
  returned: step is check
  type: str
  sample: /opt/hearth-matrix/postgres/data
old_major:
  description: C(check) - its major.
  returned: step is check
  type: int
  sample: 15
new_dir:
  description: C(check) - the upgrade's data directory.
  returned: step is check
  type: str
  sample: /opt/hearth-matrix/postgres/data-17
new_major:
  description: C(check) - the image's major.
  returned: step is check
  type: int
  sample: 17
tables:
  description: C(prepare) - how many tables were restored and compared.
  returned: step is prepare
  type: int
changes:
  description: C(rollback) - what it did.
  returned: step is rollback
  type: list
  elements: str
"""

import pwd
from typing import Any, Dict, List, Optional, Tuple, Union

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils import postgres_cluster as pc
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import (
    EngineModeError,
    RootlessUser,
    check_engine,
    engine_binary,
    is_rootless,
    run_as_argv,
)


def _engine(module: AnsibleModule) -> str:
    try:
        binary = engine_binary(check_engine(module.params["engine"], "postgres_engine"))
    except EngineModeError as error:
        raise pc.ClusterError(str(error)) from None
    path = module.get_bin_path(binary)
    if not path:
        raise pc.ClusterError("postgres_engine is %s but %s is not installed on the host" % (module.params["engine"], binary))
    return path


def _engine_argv(module: AnsibleModule) -> List[str]:
    """The engine; for a rootless mode, run as the service user (its own image store)."""
    path = _engine(module)
    if not is_rootless(module.params["engine"]):
        return [path]
    try:
        entry = pwd.getpwnam(module.params["rootless_user"])
    except KeyError:
        return []   # the user comes with the first converge: no image, no cluster yet
    user = RootlessUser(entry.pw_name, entry.pw_dir)
    return run_as_argv(module.get_bin_path("runuser") or "runuser", user, entry.pw_uid) + [path]


def _runner(module: AnsibleModule) -> pc.Runner:
    def run(argv: Union[str, List[str]]) -> Tuple[int, str, str]:
        return module.run_command(argv, use_unsafe_shell=isinstance(argv, str))
    return run


def _image_major(module: AnsibleModule) -> Optional[int]:
    argv = _engine_argv(module)
    if not argv:
        return None
    run = _runner(module)
    env = pc.inspect_image_env(lambda args: run(argv[:-1] + list(args)), argv[-1], module.params["image"])
    return pc.image_major(env) if env is not None else None


def _request(module: AnsibleModule) -> pc.UpgradeRequest:
    p = module.params
    if is_rootless(p["engine"]):
        raise pc.ClusterError("postgres_engine %s: the major upgrade runs with a rootful engine mode only" % p["engine"])
    return pc.UpgradeRequest(base_dir=p["base_dir"], image=p["image"], engine=p["engine"], engine_path=_engine(module),
                             service=p["service"], database_user=p["database_user"], database_name=p["database_name"],
                             unit_dir=p["unit_dir"], ready_timeout=p["ready_timeout"], pending_dir=p["pending_dir"])


def _plan(module: AnsibleModule) -> Dict[str, Any]:
    plan = module.params["plan"]
    if not plan or not plan.get("new_dir") or not plan.get("old_dir"):
        raise pc.ClusterError("the %s step needs plan (what the check step returned)" % module.params["step"])
    return plan


def step_find(module: AnsibleModule) -> Dict[str, Any]:
    p = module.params
    if not p["base_dir"].startswith("/"):
        raise pc.ClusterError("postgres_base_dir must be an absolute path, got '%s'" % p["base_dir"])
    # The image is asked only when there is a cluster to compare it with (a fresh host may
    # not have the engine yet). An image not on the host yet: its major is unknown, and the
    # newest cluster is used (a server of another major then refuses the files; nothing is
    # initialised empty).
    major = _image_major(module) if pc.current(p["base_dir"]) is not None else None
    return dict(changed=False, **pc.choose_data_dir(p["base_dir"], p["image"], major, upgrading=p["upgrading"]))


def step_check(module: AnsibleModule) -> Dict[str, Any]:
    p = module.params
    if pc.current(p["base_dir"]) is None:
        return dict(changed=False, **pc.plan_upgrade(p["base_dir"], p["image"], None))
    return dict(changed=False, **pc.plan_upgrade(p["base_dir"], p["image"], _image_major(module)))


def step_prepare(module: AnsibleModule) -> Dict[str, Any]:
    plan = _plan(module)
    if not module.params["component"]:
        raise pc.ClusterError("the prepare step needs component (the planned postgres component)")
    result: Dict[str, Any] = {"changed": True, "new_dir": plan["new_dir"], "old_dir": plan["old_dir"]}
    if module._diff:
        result["diff"] = {"before": "data directory %s\n" % plan["old_dir"], "after": "data directory %s\n" % plan["new_dir"]}
    if module.check_mode:
        return result
    result.update(pc.prepare(_runner(module), _request(module), plan, module.params["component"]))
    return result


def step_rollback(module: AnsibleModule) -> Dict[str, Any]:
    plan = _plan(module)
    if module.check_mode:
        return {"changed": True, "changes": []}
    return pc.rollback(_runner(module), _request(module), plan)


def step_finish(module: AnsibleModule) -> Dict[str, Any]:
    if module.check_mode:
        return {"changed": True}
    return pc.finish(_request(module))


STEPS = {"find": step_find, "check": step_check, "prepare": step_prepare, "rollback": step_rollback, "finish": step_finish}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "required": True, "choices": sorted(STEPS)},
            "base_dir": {"type": "path", "required": True},
            "image": {"type": "str", "required": True},
            # No choices here: the component check names postgres_engine when it is wrong, and
            # find needs the engine only on a host that has a cluster.
            "engine": {"type": "str", "default": "docker"},
            "rootless_user": {"type": "str", "default": "hearth"},
            "upgrading": {"type": "bool", "default": False},
            "service": {"type": "str", "default": "hearth-postgres"},
            "database_user": {"type": "str", "default": "synapse"},
            "database_name": {"type": "str", "default": "synapse"},
            "component": {"type": "dict"},
            "plan": {"type": "dict"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "ready_timeout": {"type": "int", "default": 120},
            "pending_dir": {"type": "path", "default": "/run/hearth-matrix/pending-restart"},
        },
        supports_check_mode=True,
    )
    try:
        result = STEPS[module.params["step"]](module)
    except pc.ClusterError as exc:
        module.fail_json(msg=str(exc))
        return
    except OSError as exc:
        module.fail_json(msg="postgres_cluster %s failed: %s: %s" % (module.params["step"], exc.filename or "", exc.strerror or exc))
        return
    module.exit_json(**result)


if __name__ == "__main__":
    main()
