# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local sandbox: the whole stack on a bed target, one command up, one command down.

  sandbox up [--engine docker|podman] [ANSIBLE-PLAYBOOK ARGS ...]   e.g. -e @my-vars.yml
  sandbox down
  sandbox status

State lives in .sandbox/ at the repository root. `up` on a running sandbox re-converges it
(with the new extra arguments); `summary.json` is the machine-readable way in for other
tools: URLs, the CA to trust, the inventory, the engine and an admin's credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "bed"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))

import bed  # noqa: E402  pylint: disable=wrong-import-position
from harness import (CA_ON_TARGET, SANDBOX_STACK_VARS, STACK_MATRIX_HOSTNAME,  # noqa: E402  pylint: disable=wrong-import-position
                     STACK_SERVER_NAME, run_playbook)

SANDBOX = REPO_ROOT / ".sandbox"
STATE = SANDBOX / "state.json"
SERVER_NAME = STACK_SERVER_NAME
MATRIX_HOSTNAME = STACK_MATRIX_HOSTNAME
ADMIN_USER = "admin"


def _load_state() -> Dict[str, Any]:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def _save_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(text)


def _target_alive(state: Dict[str, Any]) -> bool:
    if not state.get("name"):
        return False
    try:
        target = bed.load_target(state["name"])
        return bed.exec_in_target(target, ["true"], check=False).returncode == 0
    except Exception:  # pylint: disable=broad-except  # any failure means "start a new one"
        return False


def up(engine: str, playbook_args: List[str]) -> int:
    SANDBOX.mkdir(mode=0o700, exist_ok=True)
    state = _load_state()
    if state and state.get("engine") != engine and _target_alive(state):
        print("sandbox: a %s sandbox is running; `sandbox down` first to switch engines" % state["engine"])
        return 2
    print("sandbox: building (or reusing) local images ...", flush=True)
    bed.build_images()
    if _target_alive(state):
        target = bed.load_target(state["name"])
        print("sandbox: re-converging the running sandbox %s" % state["name"], flush=True)
    else:
        name = "sandbox-" + secrets.token_hex(3)
        workdir = SANDBOX / "target"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(mode=0o700)
        print("sandbox: starting target %s (%s) ..." % (name, engine), flush=True)
        target = bed.up(name, engine, workdir, owner_pid=None)
        state = {"name": target.name, "engine": engine}
        STATE.write_text(json.dumps(state))
    inventory = SANDBOX / "target" / "inventory.yml"
    extra = dict(SANDBOX_STACK_VARS, hearth_engine=engine)
    print("sandbox: ansible-playbook hearth.matrix.site %s" % " ".join(playbook_args), flush=True)
    run = run_playbook(inventory, REPO_ROOT / "playbooks" / "site.yml", extra, args=playbook_args)
    print(run.output)
    if run.rc != 0:
        print("sandbox: converge failed (exit %d)" % run.rc)
        return run.rc

    admin_file = SANDBOX / "admin.json"
    admin = json.loads(admin_file.read_text()) if admin_file.exists() else {
        "user": "@%s:%s" % (ADMIN_USER, SERVER_NAME), "password": secrets.token_urlsafe(18)}
    _save_private(admin_file, json.dumps(admin))
    registered = run_playbook(inventory, REPO_ROOT / "playbooks" / "register_user.yml", dict(extra, **{
        "hearth_user_name": ADMIN_USER, "hearth_user_password": admin["password"], "hearth_user_admin": True}),
        args=playbook_args)
    if registered.rc != 0:
        print(registered.tail())
        return registered.rc

    ca_pem = bed.exec_in_target(target, ["cat", CA_ON_TARGET]).stdout.decode()
    (SANDBOX / "ca.crt").write_text(ca_pem)
    https_port = target.ports["443"]
    summary = {
        "engine": engine,
        "server_name": SERVER_NAME,
        "client_base_url": "https://%s:%s" % (MATRIX_HOSTNAME, https_port),
        "federation_url": "https://%s:%s" % (MATRIX_HOSTNAME, target.ports["8448"]),
        "resolve": {MATRIX_HOSTNAME: "127.0.0.1", SERVER_NAME: "127.0.0.1"},
        "ca_certificate": str(SANDBOX / "ca.crt"),
        "inventory": str(inventory),
        "target": target.name,
        "admin": admin,
    }
    _save_private(SANDBOX / "summary.json", json.dumps(summary, indent=2))
    print("""
sandbox: up. Everything about it: %(summary)s
  Client API:   %(url)s   (the name resolves to 127.0.0.1 only with --resolve/hosts entry)
  Try:          curl --cacert %(ca)s --resolve %(host)s:%(port)s:127.0.0.1 %(url)s/_matrix/client/versions
  Log in as:    %(user)s  password in %(admin)s
  SSH:          ansible -i %(inv)s all -m ping
  Tear down:    scripts/sandbox down
""" % {"summary": SANDBOX / "summary.json", "url": summary["client_base_url"], "ca": summary["ca_certificate"],
       "host": MATRIX_HOSTNAME, "port": https_port, "user": admin["user"], "admin": admin_file, "inv": inventory})
    return 0


def down() -> int:
    state = _load_state()
    if state.get("name"):
        bed.down_by_name(state["name"])
        print("sandbox: removed %s" % state["name"])
    shutil.rmtree(SANDBOX, ignore_errors=True)
    return 0


def status() -> int:
    state = _load_state()
    alive = _target_alive(state)
    print(json.dumps({"running": alive, **state}))
    return 0 if alive else 1


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--engine", choices=["docker", "podman"], default=os.environ.get("HEARTH_ENGINE", "docker"))
    args, playbook_args = parser.parse_known_args(argv)
    if args.action == "up":
        return up(args.engine, playbook_args)
    if args.action == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
