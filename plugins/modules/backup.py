#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup
short_description: Back up a running hearth.matrix stack on the host
version_added: "0.2.0"
description:
  - Takes a backup of the stack while it runs, without stopping anything. The database is
    dumped with C(pg_dump --format=custom) inside the PostgreSQL container (C(<engine> exec)),
    which reads one consistent snapshot; the dump streams to a file on the host. Then the
    files that cannot be regenerated are copied, after the dump, so every media file the
    dump references is there. Kept are Synapse's signing key, every generated secret
    (C(<base>/secrets), C(<base>/*/secrets)), the proxy's private CA and certificate
    (C(<base>/nginx-proxy/ca), C(<base>/nginx-proxy/tls)), the media store
    (C(<base>/synapse/data/media_store)) and the identity server's database
    (C(<base>/identity/data)).
  - Writes C(manifest.json) (server name, signing key id, Synapse and PostgreSQL versions,
    every file with its size, sha256, owner and mode), C(database.dump) and C(files/). The
    whole backup is root only (directories 0700, files 0600).
  - Keeps the newest O(keep) backups under O(root) (directories named by their UTC timestamp)
    and removes older ones.
  - Secrets never pass through Ansible. The module copies them on the host and returns only
    paths and checksums.
options:
  base_dir:
    description: The stack's base directory (C(hearth_base_dir)).
    type: path
    default: /opt/hearth-matrix
  engine:
    description: The container engine of the stack.
    type: str
    default: docker
    choices: [docker, podman]
  root:
    description: Directory that holds the backups, one sub-directory per backup.
    type: path
    default: /var/backups/hearth-matrix
  name:
    description:
      - Name of this backup's directory under O(root). Empty means the current UTC time
        (C(20261130T091500Z)). An existing directory is an error.
    type: str
    default: ""
  keep:
    description: How many backups (named by timestamp) to keep under O(root); C(0) keeps all.
    type: int
    default: 7
  database:
    description: Dump the database of the stack's PostgreSQL container. C(false) when the stack uses an external database.
    type: bool
    default: true
  postgres_service:
    description: The PostgreSQL container.
    type: str
    default: hearth-postgres
  database_name:
    description: Synapse's database.
    type: str
    default: synapse
  database_user:
    description: The database user C(pg_dump) connects as.
    type: str
    default: synapse
  synapse_service:
    description: The Synapse container (asked for its version).
    type: str
    default: hearth-synapse
  server_name:
    description: The server name recorded when C(<base>/synapse/config/homeserver.yaml) names none.
    type: str
    default: ""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports the directory it would write and the backups it would remove.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The list of backups under O(root) before and after.
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Back up the stack, keep the newest 7
  hearth.matrix.backup:
    engine: podman
    keep: 7
  register: backup

- name: Where it went
  ansible.builtin.debug:
    msg: "{{ backup.path }} ({{ backup.signing_key_id }})"
"""

RETURN = r"""
path:
  description: The backup directory.
  returned: always
  type: str
  sample: /var/backups/hearth-matrix/20261130T091500Z
name:
  description: Its name under O(root).
  returned: always
  type: str
  sample: 20261130T091500Z
server_name:
  description: The server the backup is of.
  returned: success, not in check mode
  type: str
  sample: example.org
signing_key_id:
  description: The id of Synapse's signing key.
  returned: success, not in check mode
  type: str
  sample: ed25519:a_AbCd
versions:
  description: Synapse's and PostgreSQL's versions (C(unknown) when the container did not answer).
  returned: success, not in check mode
  type: dict
  sample: {synapse: 1.163.2, postgresql: "15.14"}
files:
  description: Every file of the backup, relative to its directory (the manifest first).
  returned: success, not in check mode
  type: list
  elements: str
  sample: [manifest.json, database.dump, files/synapse/keys/signing.key]
bytes:
  description: Total size of the files and the dump.
  returned: success, not in check mode
  type: int
removed:
  description: Older backups removed (or that would be removed in check mode) to keep O(keep).
  returned: always
  type: list
  elements: str
"""

import dataclasses
from typing import Any, Dict, List, Tuple, Union

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils import backup as bk


def run(module: AnsibleModule) -> Dict[str, Any]:
    p = module.params
    request = bk.BackupRequest(engine_path="", **{k: p[k] for k in (
        "base_dir", "root", "name", "keep", "database", "postgres_service", "database_name", "database_user", "synapse_service", "server_name")})
    plan = bk.plan_backup(request)
    result: Dict[str, Any] = {"changed": True, "path": plan["path"], "name": plan["name"], "removed": plan["removed"]}
    if module._diff:
        after = sorted(set(plan["before"] + [plan["name"]]) - set(plan["removed"]))
        result["diff"] = {"before": "\n".join(plan["before"]) + "\n", "after": "\n".join(after) + "\n",
                          "before_header": p["root"], "after_header": p["root"]}
    if module.check_mode:
        return result
    engine_path = module.get_bin_path(p["engine"])
    if not engine_path:
        raise bk.BackupError("hearth_engine is %s but %s is not installed on the host" % (p["engine"], p["engine"]))

    def run_command(command: Union[str, List[str]]) -> Tuple[int, str, str]:
        return module.run_command(command, use_unsafe_shell=isinstance(command, str))

    result.update(bk.take_backup(dataclasses.replace(request, engine_path=str(engine_path)), run_command, plan))
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_dir": {"type": "path", "default": "/opt/hearth-matrix"},
            "engine": {"type": "str", "default": "docker", "choices": ["docker", "podman"]},
            "root": {"type": "path", "default": "/var/backups/hearth-matrix"},
            "name": {"type": "str", "default": ""},
            "keep": {"type": "int", "default": 7},
            "database": {"type": "bool", "default": True},
            "postgres_service": {"type": "str", "default": "hearth-postgres"},
            "database_name": {"type": "str", "default": "synapse"},
            "database_user": {"type": "str", "default": "synapse"},
            "synapse_service": {"type": "str", "default": "hearth-synapse"},
            "server_name": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    bk.finish(module, "backup", lambda: run(module))


if __name__ == "__main__":
    main()
