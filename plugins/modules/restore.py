#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restore
short_description: Restore a hearth.matrix backup, one step at a time
version_added: "0.2.0"
description:
  - The steps of the C(hearth.matrix.restore) playbook, in this order.
  - C(verify) reads C(manifest.json) of O(backup_dir) and checks the size and sha256 of every
    file and of the database dump. Changes nothing; can run on the controller.
  - C(check) compares the backup (O(manifest), as returned by C(verify)) with the host. It
    fails, changing nothing, when O(server_name) is not the backup's server name, or when the
    host already holds another server's data (another server name in
    C(<base>/synapse/config/homeserver.yaml) or another signing key) unless O(force).
  - C(files) verifies O(backup_dir) again and puts every kept file and directory in place under
    O(base_dir) with the owner and mode recorded in the manifest (files through a temporary
    file and a rename). Files already equal are left alone.
  - C(database) restores C(database.dump) with C(pg_restore --clean --if-exists --create) inside
    the running PostgreSQL container (C(<engine> exec -i)). The database is dropped and created
    again, then filled. Synapse must not be running (the playbook restores before Synapse first
    starts on the database).
  - Secrets never pass through Ansible. The module copies them on the host and returns only
    paths and checksums.
options:
  step:
    description: The step to run.
    type: str
    required: true
    choices: [verify, check, files, database]
  backup_dir:
    description: The backup directory (on the host where the module runs). Required by C(verify), C(files) and C(database).
    type: path
  manifest:
    description: The backup's summary as returned by the C(verify) step (C(manifest)); required by C(check).
    type: dict
  base_dir:
    description: The stack's base directory (C(hearth_base_dir)).
    type: path
    default: /opt/hearth-matrix
  server_name:
    description: The server name the stack is deployed with (C(hearth_server_name)); must be the backup's. Empty skips that comparison.
    type: str
    default: ""
  force:
    description: Overwrite a host that holds another server's data (C(hearth_restore_force)).
    type: bool
    default: false
  engine:
    description: The container engine of the stack.
    type: str
    default: docker
    choices: [docker, podman]
  postgres_service:
    description: The PostgreSQL container.
    type: str
    default: hearth-postgres
  database_user:
    description: The database user C(pg_restore) connects as (a superuser of the cluster).
    type: str
    default: synapse
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The paths the C(files) step writes (never their content) and the database the C(database) step replaces.
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Verify a fetched backup on the controller
  hearth.matrix.restore:
    step: verify
    backup_dir: /srv/backups/matrix/20261130T091500Z
  delegate_to: localhost
  become: false
  register: verified

- name: Refuse to overwrite another server's data
  hearth.matrix.restore:
    step: check
    manifest: "{{ verified.manifest }}"
    server_name: example.org

- name: Put the keys, secrets and media in place
  hearth.matrix.restore:
    step: files
    backup_dir: /var/backups/hearth-matrix/restore

- name: Restore the database (PostgreSQL running, Synapse not)
  hearth.matrix.restore:
    step: database
    backup_dir: /var/backups/hearth-matrix/restore
    engine: podman
"""

RETURN = r"""
manifest:
  description: What the backup holds (step C(verify) and C(check)); no secret values.
  returned: success
  type: dict
  sample:
    server_name: example.org
    signing_key_id: ed25519:a_AbCd
    signing_key_sha256: 4f1c...
    created: 20261130T091500Z
    versions: {synapse: 1.163.2, postgresql: "15.14"}
    database: true
    file_count: 12
    bytes: 1048576
host_state:
  description: C(fresh) (no data), C(same) (this server's data) or C(forced) (another server's, O(force) set); step C(check).
  returned: step check
  type: str
  sample: fresh
paths:
  description: Paths the C(files) step wrote or corrected (or would, in check mode).
  returned: step files
  type: list
  elements: str
"""

import os
import shlex
from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils import backup as bk


def _need(module: AnsibleModule, option: str) -> Any:
    value = module.params[option]
    if not value:
        raise bk.BackupError("the %s step needs %s" % (module.params["step"], option))
    return value


def step_verify(module: AnsibleModule) -> Dict[str, Any]:
    manifest = bk.verify(_need(module, "backup_dir"))
    return {"changed": False, "manifest": bk.summary(manifest)}


def step_check(module: AnsibleModule) -> Dict[str, Any]:
    summary = _need(module, "manifest")
    for key in ("server_name", "signing_key_sha256"):
        if not summary.get(key):
            raise bk.BackupError("manifest has no %s: pass the manifest the verify step returned" % key)
    host = bk.host_identity(module.params["base_dir"])
    state = bk.check_restore(summary, host, module.params["server_name"], module.params["force"])
    return {"changed": False, "manifest": summary, "host_state": state}


def step_files(module: AnsibleModule) -> Dict[str, Any]:
    backup_dir = _need(module, "backup_dir")
    base_dir = module.params["base_dir"]
    manifest = bk.verify(backup_dir)
    plan = [placement for placement in bk.plan_restore(backup_dir, base_dir, bk.manifest_entries(manifest)) if placement.changed]
    paths = [os.path.join(base_dir, p.entry.path) if p.entry.path != "." else base_dir for p in plan]
    result: Dict[str, Any] = {"changed": bool(plan), "paths": paths}
    if module._diff:
        # Paths only: these files hold keys and secrets.
        result["diff"] = {"before": "", "after": "".join("%s (%s)\n" % (path, "content" if p.content else "owner/mode")
                                                         for path, p in zip(paths, plan))}
    if not module.check_mode:
        for placement in plan:
            bk.apply_placement(backup_dir, base_dir, placement)
    return result


def step_database(module: AnsibleModule) -> Dict[str, Any]:
    p = module.params
    backup_dir = _need(module, "backup_dir")
    manifest = bk.read_manifest(backup_dir)
    database = manifest.get("database")
    if not database:
        raise bk.BackupError("the backup at %s holds no database dump (taken with an external database)" % backup_dir)
    dump = os.path.join(backup_dir, bk.DUMP)
    if bk.sha256_file(dump) != database["sha256"]:
        raise bk.BackupError("the backup is damaged: the sha256 of %s differs from the manifest" % bk.DUMP)
    result: Dict[str, Any] = {"changed": True}
    if module._diff:
        result["diff"] = {"before": "database %s\n" % database["name"], "after": "database %s restored from %s\n" % (database["name"], dump)}
    if module.check_mode:
        return result
    engine = module.get_bin_path(p["engine"])
    if not engine:
        raise bk.BackupError("hearth_engine is %s but %s is not installed on the host" % (p["engine"], p["engine"]))
    argv = [engine, "exec", "-i", p["postgres_service"], "pg_restore", "--clean", "--if-exists", "--create", "--no-owner",
            "--exit-on-error", "--username", p["database_user"], "--dbname", "postgres"]
    command = "%s < %s" % (" ".join(shlex.quote(arg) for arg in argv), shlex.quote(dump))
    rc, _out, err = module.run_command(command, use_unsafe_shell=True)
    if rc != 0:
        raise bk.BackupError("pg_restore in %s failed (rc=%d): %s" % (p["postgres_service"], rc, " ".join(err.split())[-400:]))
    return result


STEPS = {"verify": step_verify, "check": step_check, "files": step_files, "database": step_database}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "required": True, "choices": sorted(STEPS)},
            "backup_dir": {"type": "path"},
            "manifest": {"type": "dict"},
            "base_dir": {"type": "path", "default": "/opt/hearth-matrix"},
            "server_name": {"type": "str", "default": ""},
            "force": {"type": "bool", "default": False},
            "engine": {"type": "str", "default": "docker", "choices": ["docker", "podman"]},
            "postgres_service": {"type": "str", "default": "hearth-postgres"},
            "database_user": {"type": "str", "default": "synapse"},
        },
        supports_check_mode=True,
    )
    bk.finish(module, "restore", lambda: STEPS[module.params["step"]](module))


if __name__ == "__main__":
    main()
