# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input fails before anything changes; two roles work in a user's own playbook.

Both run on one fresh target per engine: the bad-input cases first (the host must stay
exactly as it was), then the user's own playbook converges on it.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

from conftest import BASE_VARS, BedTarget
from harness import PLAYBOOKS, failure_messages, run_playbook, wait_for
from matrix_client import round_trip

OWN_PLAYBOOK = Path(__file__).parent / "playbooks" / "own_homeserver.yml"
_MISSING = object()

# (id, variable overrides, text the error must contain: the variable's name)
BAD_INPUTS = [
    ("missing-server-name", {"hearth_server_name": _MISSING}, "hearth_server_name"),
    ("invalid-domain", {"hearth_server_name": "not a domain!"}, "hearth_server_name"),
    ("invalid-matrix-hostname", {"hearth_matrix_hostname": "under_score.example"}, "hearth_matrix_hostname"),
    ("unknown-engine", {"hearth_engine": "lxc"}, "hearth_engine"),
    ("flag-not-boolean", {"hearth_postgres_enabled": "maybe"}, "hearth_postgres_enabled"),
    ("relative-base-dir", {"hearth_base_dir": "opt/hearth"}, "hearth_base_dir"),
    ("no-external-database", {"hearth_postgres_enabled": False}, "external_database"),
    ("corporal-without-synapse", {"hearth_synapse_enabled": False, "hearth_nginx_proxy_enabled": False,
                                  "hearth_postgres_enabled": False, "hearth_corporal_enabled": True}, "corporal"),
    ("upload-size-format", {"synapse_max_upload_size": "lots"}, "synapse_max_upload_size"),
    ("key-servers-wrong-type", {"synapse_trusted_key_servers": "matrix.org"}, "synapse_trusted_key_servers"),
    ("listener-port-range", {"synapse_listener_port": 70000}, "synapse_listener_port"),
    ("synapse-root-uid", {"synapse_uid": 0}, "synapse_uid"),
    ("proxy-port-clash", {"nginx_proxy_https_host_port": 8448}, "nginx_proxy_"),
    ("relative-tls-path", {"nginx_proxy_tls_certificate_path": "certs/fullchain.pem",
                           "nginx_proxy_tls_key_path": "certs/privkey.pem"}, "nginx_proxy_tls_certificate_path"),
    ("images-wrong-type", {"hearth_images": ["localhost/hearth/synapse:test"]}, "hearth_images"),
]

# What "the host changed" means: any file under our paths, a unit, a container, a network,
# the service account.
SNAPSHOT = (
    "find /opt /etc/systemd/system /etc/sysusers.d -xdev -printf '%p %m %u %s %T@\\n' 2>/dev/null | sort; "
    "{engine} ps -a --format '{{{{.Names}}}}' | sort; {engine} network ls --format '{{{{.Name}}}}' | sort; "
    "getent passwd hearth-matrix || true"
)


def _snapshot(target: BedTarget) -> str:
    _rc, out = target.sh(SNAPSHOT.format(engine=target.engine))
    return out


@pytest.mark.parametrize("case_id,overrides,expected", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_fails_before_any_change(fresh_target: BedTarget, case_id: str, overrides: Dict[str, Any],
                                           expected: str) -> None:
    extra_vars: Dict[str, Any] = dict(BASE_VARS, hearth_engine=fresh_target.engine)
    for key, value in overrides.items():
        if value is _MISSING:
            extra_vars.pop(key, None)
        else:
            extra_vars[key] = value
    before = _snapshot(fresh_target)
    run = run_playbook(fresh_target.inventory, PLAYBOOKS / "site.yml", extra_vars)
    after = _snapshot(fresh_target)
    assert run.rc != 0, "%s: the play succeeded with bad input" % case_id
    messages = failure_messages(run.output)
    assert any(expected in message for message in messages), "%s: no error naming %s in %r:\n%s" % (
        case_id, expected, messages, run.tail(40))
    assert after == before, "%s: the host changed although the input was rejected" % case_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def tunnel(fresh_target: BedTarget) -> Iterator[int]:
    """An SSH tunnel to the target's loopback:8008, where the user's playbook publishes Synapse."""
    port = _free_port()
    argv = fresh_target.target.ssh_argv()
    command = argv[:-1] + ["-N", "-L", "127.0.0.1:%d:127.0.0.1:8008" % port, argv[-1]]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _own_playbook(target: BedTarget, password: str) -> Any:
    return run_playbook(target.inventory, OWN_PLAYBOOK, {"my_engine": target.engine, "my_db_password": password})


def test_two_roles_in_a_users_own_playbook(fresh_target: BedTarget, tunnel: int) -> None:
    password = "db-" + uuid.uuid4().hex
    run = _own_playbook(fresh_target, password)
    assert run.rc == 0, run.tail(80)
    rc, _out = fresh_target.sh("systemctl is-active hearth-postgres.service hearth-synapse.service", check=False)
    assert rc == 0
    rc, units = fresh_target.sh("ls /etc/systemd/system/ | grep hearth- || true")
    assert "hearth-nginx-proxy" not in units
    again = _own_playbook(fresh_target, password)
    assert again.rc == 0 and again.changed == 0, again.output

    user, user_password = "bob", "pw-" + uuid.uuid4().hex
    registered = run_playbook(fresh_target.inventory, PLAYBOOKS / "register_user.yml", {
        "hearth_engine": fresh_target.engine, "hearth_user_name": user, "hearth_user_password": user_password})
    assert registered.rc == 0, registered.tail()
    result: Optional[Any] = None

    def client_works() -> bool:
        nonlocal result
        result = round_trip("http://127.0.0.1:%d" % tunnel, "@%s:own.test" % user, user_password, None)
        return True

    wait_for(client_works, 60, 2, "client against Synapse through the tunnel")
    assert result is not None and result.body in result.seen_by_second_session
