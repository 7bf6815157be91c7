# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local sandbox: every component of the stack on a bed target, one command up, one down.

  sandbox up [--engine docker|podman] [ANSIBLE-PLAYBOOK ARGS ...]   e.g. -e @my-vars.yml
  sandbox mail       the messages the stack has sent (caught by the SMTP sink stand-in)
  sandbox status
  sandbox down

It deploys the stack the integration tests deploy (tests/integration/harness.py
FULL_STACK_VARS): postgres, synapse, nginx_proxy, mailer, identity, corporal and element,
with test stand-ins where the real thing cannot be built here (corporal's gateway, Element's
web bundle, the world's mail servers), each named as such in what it prints.

State lives in .sandbox/ at the repository root. `up` on a running sandbox re-converges it
(with the new extra arguments); `summary.json` is the machine-readable way in for other
tools: URLs, stand-ins, the CA to trust, the inventory, the engine and an admin's login.
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

# pylint: disable=wrong-import-position
import bed  # noqa: E402
from full_stack_client import header, message_texts  # noqa: E402
from harness import (CA_ON_TARGET, FULL_STACK_VARS, SANDBOX_STACK_VARS, SMTP_SINK_DIR_ON_TARGET,  # noqa: E402
                     SMTP_SINK_NAME, SMTP_SINK_SCRIPT, SMTP_SINK_STORE, SMTP_SINK_VARS, STACK_MATRIX_HOSTNAME,
                     STACK_SERVER_NAME, STANDIN_IMAGE, run_playbook, smtp_sink_run_args)
# pylint: enable=wrong-import-position

SANDBOX = REPO_ROOT / ".sandbox"
STATE = SANDBOX / "state.json"
SERVER_NAME = STACK_SERVER_NAME
MATRIX_HOSTNAME = STACK_MATRIX_HOSTNAME
ELEMENT_HOSTNAME = "element." + SERVER_NAME
ADMIN_USER = "admin"
BASE_DIR = "/opt/hearth-matrix"
COMPONENTS = ["postgres", "synapse", "nginx_proxy", "mailer", "identity", "corporal", "element"]
# Every component on, the test stand-ins of FULL_STACK_VARS, and Exim relaying to the sink.
STACK_VARS: Dict[str, Any] = {**SANDBOX_STACK_VARS, **FULL_STACK_VARS, **SMTP_SINK_VARS,
                              **{"hearth_%s_enabled" % name: True for name in COMPONENTS}}
# What is not the real thing, and how to get the real thing (-e @my-vars.yml on `up`).
STAND_INS: Dict[str, Dict[str, str]] = {
    "corporal": {
        "is": "TEST STAND-IN, not matrix-corporal: %s forwards the client API to Synapse and records the "
              "request paths; it enforces no policy" % STANDIN_IMAGE,
        "record": BASE_DIR + "/corporal/var/standin-requests.log (on the target)",
        "real_thing": "hearth_images.corporal: a matrix-corporal image, and corporal_container_entrypoint: '', "
                      "corporal_container_command: ['-config=/config/config.json'], corporal_healthcheck_command: []",
    },
    "element": {
        "is": "TEST STAND-IN page: the bed's nginx serves a placeholder instead of Element's web bundle; "
              "/config.json is the real generated config",
        "real_thing": "hearth_images.element: an element-web image, and element_placeholder: false",
    },
    "mail": {
        "is": "TEST STAND-IN for the world's mail servers: the real Exim relays every message to the SMTP sink "
              "container %s on the target, which keeps it and delivers nothing" % SMTP_SINK_NAME,
        "real_thing": "mailer_smarthost_host/_port/_security/_username/_password: your provider's smarthost "
                      "(empty host = direct delivery to the recipients' MX)",
    },
}


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


def _start_mail_sink(target: Any, engine: str) -> None:
    """The SMTP sink, unless it already runs (a re-converge keeps the mail it caught)."""
    running = bed.exec_in_target(target, [engine, "container", "inspect", "--format", "{{.State.Running}}",
                                          SMTP_SINK_NAME], check=False)
    if running.returncode == 0 and running.stdout.decode().strip() == "true":
        return
    bed.exec_in_target(target, ["sh", "-c", "mkdir -p %s && cat > %s/smtp_sink.py" % (
        SMTP_SINK_DIR_ON_TARGET, SMTP_SINK_DIR_ON_TARGET)], input_bytes=SMTP_SINK_SCRIPT.read_bytes())
    bed.exec_in_target(target, [engine, "rm", "-f", SMTP_SINK_NAME], check=False)
    bed.exec_in_target(target, [engine, *smtp_sink_run_args()])


def _services(target: Any) -> Dict[str, str]:
    """systemd's state of each component's unit on the target."""
    states = {}
    for component in COMPONENTS:
        unit = "hearth-%s.service" % component.replace("_", "-")
        proc = bed.exec_in_target(target, ["systemctl", "is-active", unit], check=False)
        states[component] = proc.stdout.decode().strip() or "unknown"
    return states


def _summary(engine: str, target: Any, inventory: Path, admin: Dict[str, str]) -> Dict[str, Any]:
    https, federation = target.ports["443"], target.ports["8448"]
    images = STACK_VARS["hearth_images"]
    states = _services(target)
    components = {name: {"service": "hearth-%s.service" % name.replace("_", "-"), "image": images[name],
                         "state": states[name], "stand_in": STAND_INS.get(name, {}).get("is")}
                  for name in COMPONENTS}
    return {
        "engine": engine,
        "server_name": SERVER_NAME,
        "client_base_url": "https://%s:%s" % (MATRIX_HOSTNAME, https),
        "federation_url": "https://%s:%s" % (MATRIX_HOSTNAME, federation),
        "well_known": {"client": "https://%s:%s/.well-known/matrix/client" % (SERVER_NAME, https),
                       "server": "https://%s:%s/.well-known/matrix/server" % (SERVER_NAME, https)},
        "element_url": "https://%s:%s/" % (ELEMENT_HOSTNAME, https),
        "identity_server_url": "https://%s:%s/_matrix/identity/v2" % (MATRIX_HOSTNAME, https),
        "mail": dict(STAND_INS["mail"], see="scripts/sandbox mail"),
        "resolve": {name: "127.0.0.1" for name in (MATRIX_HOSTNAME, SERVER_NAME, ELEMENT_HOSTNAME)},
        "ca_certificate": str(SANDBOX / "ca.crt"),
        "inventory": str(inventory),
        "target": target.name,
        "admin": admin,
        "components": components,
        "stand_ins": STAND_INS,
        "left_out": [],
    }


def _print_summary(summary: Dict[str, Any], https_port: str) -> None:
    curl = "curl --cacert %s %s" % (summary["ca_certificate"], " ".join(
        "--resolve %s:%s:127.0.0.1" % (name, https_port) for name in summary["resolve"]))
    lines = ["", "sandbox: up (%s). Everything below is also in %s" % (summary["engine"], SANDBOX / "summary.json"), ""]
    for name, component in summary["components"].items():
        marker = "   <- stand-in" if component["stand_in"] else ""
        lines.append("  %-12s %-8s %s%s" % (name, component["state"], component["image"], marker))
    lines += [
        "",
        "  Client API:   %s" % summary["client_base_url"],
        "  Federation:   %s" % summary["federation_url"],
        "  .well-known:  %s" % summary["well_known"]["client"],
        "                %s" % summary["well_known"]["server"],
        "  Identity:     %s   (sydent, through the proxy)" % summary["identity_server_url"],
        "  Element:      %s   (placeholder page: stand-in; /config.json is real)" % summary["element_url"],
        "  corporal:     the client API passes the gateway STAND-IN (not corporal, no policy);",
        "                requests recorded in %s" % STAND_INS["corporal"]["record"],
        "  Mail:         Exim relays to the SMTP sink STAND-IN on the target; read it: scripts/sandbox mail",
        "  CA to trust:  %s" % summary["ca_certificate"],
        "  Log in as:    %s   password in %s" % (summary["admin"]["user"], SANDBOX / "admin.json"),
        "  SSH:          ansible -i %s all -m ping" % summary["inventory"],
        "",
        "  The names resolve to 127.0.0.1 only with --resolve (or an /etc/hosts line), e.g.:",
        "  %s %s/_matrix/client/versions" % (curl, summary["client_base_url"]),
        "  %s %sconfig.json" % (curl, summary["element_url"]),
        "",
        "  Real corporal / Element / mail instead of the stand-ins: see \"stand_ins\" in summary.json",
        "  (pass the variables there with `scripts/sandbox up -e @my-vars.yml`).",
        "  Tear down:    scripts/sandbox down",
    ]
    print("\n".join(lines))


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
    extra = dict(STACK_VARS, hearth_engine=engine)
    print("sandbox: ansible-playbook hearth.matrix.site %s" % " ".join(playbook_args), flush=True)
    run = run_playbook(inventory, REPO_ROOT / "playbooks" / "site.yml", extra, args=playbook_args)
    print(run.output)
    if run.rc != 0:
        print("sandbox: converge failed (exit %d)" % run.rc)
        return run.rc
    _start_mail_sink(target, engine)

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
    summary = _summary(engine, target, inventory, admin)
    _save_private(SANDBOX / "summary.json", json.dumps(summary, indent=2))
    _print_summary(summary, target.ports["443"])
    return 0


def mail() -> int:
    """Print the messages the SMTP sink stand-in caught: sender, recipients, subject, text."""
    state = _load_state()
    if not _target_alive(state):
        print("sandbox: no sandbox is running (scripts/sandbox up)")
        return 1
    target = bed.load_target(state["name"])
    proc = bed.exec_in_target(target, [state["engine"], "exec", SMTP_SINK_NAME, "cat", SMTP_SINK_STORE], check=False)
    if proc.returncode != 0:
        print("sandbox: the SMTP sink does not answer: %s" % proc.stdout.decode().strip())
        return 1
    messages = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.startswith("{")]
    for message in messages:
        print("From %s to %s: %s" % (message["mail_from"], ", ".join(message["rcpt_to"]),
                                     header(message["data"], "Subject")))
        for text in message_texts(message["data"])[:1]:
            print("    " + "\n    ".join(text.strip().splitlines()))
    print("sandbox: %d message(s) in the SMTP sink stand-in %s" % (len(messages), SMTP_SINK_NAME))
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
    parser.add_argument("action", choices=["up", "down", "status", "mail"])
    parser.add_argument("--engine", choices=["docker", "podman"], default=os.environ.get("HEARTH_ENGINE", "docker"))
    args, playbook_args = parser.parse_known_args(argv)
    if args.action == "up":
        return up(args.engine, playbook_args)
    if args.action == "mail":
        return mail()
    if args.action == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
