# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input fails before anything changes; two roles work in a user's own playbook.

Both run on one fresh target per engine: the bad-input cases first (the host must stay
exactly as it was), then `--check --diff` of the full stack, then the user's own playbook
converges on it. The corpus is ONE ansible-playbook run: its inventory holds one host alias
per case, all pointing at the same target, each with its own bad variables. Each case must
fail with a one-line message naming the variable the user set, with no change; the wording
is the roles' business.

The corpus runs on the first engine of HEARTH_TEST_ENGINES only: every check it exercises
runs on the controller (argument specs, the stack preflight, the container model) before the
first task that touches the host, and reads nothing engine-specific from it; the engine is
just another variable there (and ``unknown-engine`` checks it). Check mode, the role used
alone and the rename run on every engine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest
import yaml

from conftest import BASE_VARS, ENGINES, BedTarget
from harness import FULL_STACK_VARS, PLAYBOOKS, run_playbook, wait_for
from matrix_client import round_trip

OWN_PLAYBOOK = Path(__file__).parent / "playbooks" / "own_homeserver.yml"
CORPUS_PLAYBOOK = Path(__file__).parent / "playbooks" / "bad_input.yml"
_MISSING = object()
_PORT = {"host_address": "127.0.0.1", "container_port": 8008}
_ON = {"hearth_mailer_enabled": True, "hearth_identity_enabled": True, "hearth_element_enabled": True,
       "hearth_corporal_enabled": True}
_NO_DB = {"hearth_postgres_enabled": False, "hearth_external_database_password": "pw"}

# Cases run through hearth.matrix.site: (id, the alias's variables, the variable the one-line
# failure must name). Wiring the topology hands the roles (hearth_topology.role_vars:
# requires/wants/after, networks, base dirs) is exercised with the role used alone, in
# ROLE_CASES.
SITE_CASES: List[Tuple[str, Dict[str, Any], str]] = [
    ("missing-server-name", {"hearth_server_name": _MISSING}, "hearth_server_name"),
    ("invalid-domain", {"hearth_server_name": "not a domain!"}, "hearth_server_name"),
    ("server-name-not-string", {"hearth_server_name": ["hearth.test"]}, "hearth_server_name"),
    ("invalid-matrix-hostname", {"hearth_matrix_hostname": "under_score.example"}, "hearth_matrix_hostname"),
    ("invalid-element-hostname", {"hearth_element_hostname": "Element Host"}, "hearth_element_hostname"),
    ("element-hostname-is-matrix-hostname", {"hearth_element_enabled": True,
                                             "hearth_element_hostname": "matrix.hearth.test"}, "hearth_element_hostname"),
    ("unknown-engine", {"hearth_engine": "lxc"}, "hearth_engine"),
    # Debian 12's podman is 4.3.1 (Quadlet needs 4.4); docker has no Quadlet at all.
    ("quadlet-on-this-engine", {"hearth_podman_quadlet": True}, "hearth_podman_quadlet"),
    ("flag-not-boolean", {"hearth_postgres_enabled": "maybe"}, "hearth_postgres_enabled"),
    ("flag-a-number", {"hearth_mailer_enabled": 3}, "hearth_mailer_enabled"),
    ("relative-base-dir", {"hearth_base_dir": "opt/hearth"}, "hearth_base_dir"),
    ("no-external-database-password", {"hearth_postgres_enabled": False}, "hearth_external_database"),
    ("no-external-database", dict(_NO_DB), "hearth_external_database"),
    ("external-database-without-host", dict(_NO_DB, hearth_external_database={"name": "s", "user": "s"}),
     "hearth_external_database"),
    ("external-database-port-range", dict(_NO_DB, hearth_external_database={
        "host": "db.hearth.test", "name": "s", "user": "s", "port": 70000}), "hearth_external_database"),
    ("corporal-without-synapse", {"hearth_synapse_enabled": False, "hearth_nginx_proxy_enabled": False,
                                  "hearth_postgres_enabled": False, "hearth_corporal_enabled": True},
     "hearth_corporal_enabled"),
    ("corporal-without-proxy", {"hearth_corporal_enabled": True, "hearth_nginx_proxy_enabled": False},
     "hearth_corporal_enabled"),
    ("mailer-sender-not-email", {"hearth_mailer_enabled": True, "hearth_mailer_sender": "not-an-email"},
     "hearth_mailer_sender"),
    ("identity-server-not-url", {"hearth_public_identity_server": "ftp://identity.hearth.test"},
     "hearth_public_identity_server"),
    ("images-wrong-type", {"hearth_images": ["localhost/hearth/synapse:test"]}, "hearth_images"),
    ("images-unknown-component", {"hearth_images": {"synaps": "localhost/hearth/synapse:test"}}, "hearth_images"),
    ("images-bad-reference", {"hearth_images": {"synapse": "Not An Image!"}}, "hearth_images"),
    ("network-subnet-too-small", {"hearth_network_subnet": "10.89.91.0/28"}, "hearth_network_subnet"),
    ("synapse-address-not-ipv4", {"synapse_container_address": "10.89.91.999"}, "synapse_container_address"),
    ("postgres-image-bad-reference", {"hearth_images": {}, "postgres_image": "Bad Image!"}, "postgres_image"),
    ("upload-size-format", {"synapse_max_upload_size": "lots"}, "synapse_max_upload_size"),
    ("key-servers-wrong-type", {"hearth_synapse_trusted_key_servers": _MISSING,
                                "synapse_trusted_key_servers": "matrix.org"}, "synapse_trusted_key_servers"),
    ("listener-port-range", {"synapse_listener_port": 70000}, "synapse_listener_port"),
    ("synapse-log-level", {"synapse_log_level": "LOUD"}, "synapse_log_level"),
    ("common-root-uid", {"common_uid": 0}, "common_uid"),
    ("postgres-root-uid", {"postgres_uid": 0}, "postgres_uid"),
    ("synapse-root-uid", {"synapse_uid": 0}, "synapse_uid"),
    ("nginx-proxy-root-uid", {"nginx_proxy_uid": 0}, "nginx_proxy_uid"),
    ("mailer-root-uid", {"hearth_mailer_enabled": True, "mailer_uid": 0}, "mailer_uid"),
    ("identity-root-uid", dict(_ON, identity_uid=0), "identity_uid"),
    ("corporal-root-uid", dict(_ON, corporal_uid=0), "corporal_uid"),
    ("element-root-uid", dict(_ON, element_uid=0), "element_uid"),
    ("postgres-pids-negative", {"postgres_pids_limit": -5}, "postgres_pids_limit"),
    # 0 is documented today as "the engine default", which is no limit at all on docker;
    # issue 10 refuses zero limits.
    ("synapse-pids-zero", {"synapse_pids_limit": 0}, "synapse_pids_limit"),
    ("mailer-pids-negative", {"hearth_mailer_enabled": True, "mailer_pids_limit": -1}, "mailer_pids_limit"),
    ("element-pids-negative", dict(_ON, element_pids_limit=-3), "element_pids_limit"),
    ("synapse-memory-format", {"synapse_memory": "lots"}, "synapse_memory"),
    ("postgres-memory-format", {"postgres_memory": "1 GB"}, "postgres_memory"),
    ("identity-memory-format", dict(_ON, identity_memory="-256m"), "identity_memory"),
    ("synapse-stop-timeout-negative", {"synapse_stop_timeout": -1}, "synapse_stop_timeout"),
    ("postgres-stop-timeout-text", {"postgres_stop_timeout": "soon"}, "postgres_stop_timeout"),
    ("synapse-ports-wrong-shape", {"synapse_container_ports": ["8008:8008"]}, "synapse_container_ports"),
    ("postgres-port-range", {"postgres_container_ports": [dict(_PORT, host_port=70000, container_port=5432)]},
     "postgres_container_ports"),
    ("synapse-port-clashes-with-proxy", {"synapse_container_ports": [dict(_PORT, host_port=443)]},
     "synapse_container_ports"),
    ("postgres-synapse-port-clash", {"postgres_container_ports": [dict(_PORT, host_port=9000, container_port=5432)],
                                     "synapse_container_ports": [dict(_PORT, host_port=9000)]}, "_container_ports"),
    ("mailer-port-clashes-with-synapse", {"hearth_mailer_enabled": True,
                                          "mailer_container_ports": [dict(_PORT, host_port=9001, container_port=8025)],
                                          "synapse_container_ports": [dict(_PORT, host_port=9001)]},
     "_container_ports"),
    ("proxy-port-clash", {"nginx_proxy_https_host_port": 8448}, "nginx_proxy_"),
    ("proxy-port-range", {"nginx_proxy_http_host_port": 0}, "nginx_proxy_http_host_port"),
    ("relative-tls-path", {"nginx_proxy_tls_certificate_path": "certs/fullchain.pem",
                           "nginx_proxy_tls_key_path": "certs/privkey.pem"}, "nginx_proxy_tls_certificate_path"),
    ("proxy-host-address", {"nginx_proxy_host_addresses": ["not-an-address"]}, "nginx_proxy_host_addresses"),
    ("mailer-smarthost-security", {"hearth_mailer_enabled": True, "mailer_smarthost_security": "maybe"},
     "mailer_smarthost_security"),
    ("element-port-range", dict(_ON, element_port=70000), "element_port"),
    ("extra-hosts-not-ipv4", {"hearth_extra_hosts": {"b.hearth.test": "not-an-address"}}, "hearth_extra_hosts.b.hearth.test"),
    ("extra-hosts-component-name", {"hearth_extra_hosts": {"hearth-synapse": "192.0.2.1"}}, "hearth_extra_hosts.hearth-synapse"),
    ("federation-ca-relative", {"synapse_federation_ca_files": ["peer-ca.pem"]}, "synapse_federation_ca_files"),
    ("federation-ca-missing", {"synapse_federation_ca_files": ["/nonexistent/peer-ca.pem"]}, "synapse_federation_ca_files[0]"),
    ("federation-ca-not-pem", {"synapse_federation_ca_files": ["/etc/os-release"]}, "synapse_federation_ca_files[0]"),
    ("tls-source-unknown", {"nginx_proxy_tls_source": "letsencrypt"}, "nginx_proxy_tls_source"),
    ("acme-directory-not-https", {"nginx_proxy_tls_source": "acme", "hearth_acme_directory_url": "http://acme.test/dir"},
     "hearth_acme_directory_url"),
    ("acme-renew-days-zero", {"nginx_proxy_tls_source": "acme", "hearth_acme_renew_days": 0}, "hearth_acme_renew_days"),
]

# Roles used alone in a user's playbook: (id, role, the alias's variables, expected variable).
ROLE_BASE: Dict[str, Dict[str, Any]] = {
    "postgres": {"postgres_image": "localhost/hearth/postgres:test", "postgres_password": "pw-corpus"},
    "synapse": {"synapse_image": "localhost/hearth/synapse:test", "synapse_server_name": "own.test",
                "synapse_public_baseurl": "http://127.0.0.1:8008/", "synapse_trusted_key_servers": [],
                "synapse_database_password": "pw-corpus"},
}
ROLE_CASES: List[Tuple[str, str, Dict[str, Any], str]] = [
    ("postgres-requires-bad-unit", "postgres", {"postgres_requires": ["hearth postgres!"]}, "postgres_requires"),
    ("synapse-after-bad-unit", "synapse", {"synapse_after": ["not a unit!"]}, "synapse_after"),
    ("synapse-bad-network-name", "synapse", {"synapse_container_networks": ["Bad Net!"]}, "synapse_container_networks"),
    ("postgres-relative-base-dir", "postgres", {"postgres_base_dir": "data/postgres"}, "postgres_base_dir"),
    ("synapse-relative-base-dir", "synapse", {"synapse_base_dir": "synapse"}, "synapse_base_dir"),
]
CASE_IDS = [case[0] for case in SITE_CASES] + [case[0] for case in ROLE_CASES]
SENTINEL = "corpus-sentinel"

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


@dataclass
class Outcome:
    """What one case (one host alias) got from the corpus run."""

    failed: bool
    changed: int
    message: str
    task: str


@dataclass
class Corpus:
    outcomes: Dict[str, Outcome]
    expected: Dict[str, str]
    host_changed: bool
    output: str

    def table(self) -> str:
        """case -> verdict and message, for reports."""
        rows = []
        for case_id in CASE_IDS:
            outcome = self.outcomes.get(case_id)
            verdict = _verdict(self.expected[case_id], outcome)
            message = outcome.message if outcome else ""
            rows.append("%-40s %-22s %s" % (case_id, verdict, message.replace("\n", "\\n")[:220]))
        return "\n".join(rows)


# Ansible's own argument-spec validation (meta/argument_specs.yml, run when a role starts)
# puts this fixed line above its error, which is one line naming the variable. Everything
# after it must be that one line.
ANSIBLE_ARGSPEC_HEADER = "Validation of arguments failed:\n"


def _error_text(message: str) -> str:
    message = message.strip()
    return message[len(ANSIBLE_ARGSPEC_HEADER):] if message.startswith(ANSIBLE_ARGSPEC_HEADER) else message


def _verdict(expected: str, outcome: Optional[Outcome]) -> str:
    if outcome is None:
        return "NOT RUN"
    if not outcome.failed:
        return "ACCEPTED"
    if outcome.changed:
        return "CHANGED HOST"
    if expected not in outcome.message:
        return "VARIABLE NOT NAMED"
    if "\n" in _error_text(outcome.message):
        return "NOT ONE LINE"
    return "ok"


def _alias_vars(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if value is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _corpus_inventory(target: BedTarget) -> Dict[str, Any]:
    """One alias per case; each alias has the target's connection variables."""
    connection = yaml.safe_load(target.inventory.read_text())["all"]["hosts"]
    connection_vars = next(iter(connection.values()))
    site_base = dict(BASE_VARS, hearth_engine=target.engine, hearth_images=FULL_STACK_VARS["hearth_images"])
    site_base.pop("hearth_hosts")
    site = {case_id: dict(connection_vars, **_alias_vars(site_base, overrides))
            for case_id, overrides, _expected in SITE_CASES}
    roles = {case_id: dict(connection_vars, corpus_role=role, **{"%s_engine" % role: target.engine},
                           **_alias_vars(ROLE_BASE[role], overrides))
             for case_id, role, overrides, _expected in ROLE_CASES}
    # Keeps the roles-alone play from failing on every host (see playbooks/bad_input.yml).
    roles[SENTINEL] = dict(connection_vars)
    return {"all": {"children": {"site_cases": {"hosts": site}, "role_cases": {"hosts": roles}}}}


def _first_failures(report: Mapping[str, Any]) -> Dict[str, Tuple[str, str]]:
    """Per host: the task name and msg of its first failed result (per item for loops)."""
    failures: Dict[str, Tuple[str, str]] = {}
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if host in failures or not (result.get("failed") or result.get("unreachable")):
                    continue
                items = [item for item in result.get("results") or [] if item.get("failed")]
                message = (items[0] if items else result).get("msg", "")
                failures[host] = (task["task"]["name"], str(message))
    return failures


def _json_report(output: str) -> Dict[str, Any]:
    # The json callback prints one document at the end; warnings (stderr) may come before it.
    start = 0 if output.startswith("{") else output.find("\n{") + 1
    if start == 0 and not output.startswith("{"):
        raise AssertionError("no JSON report in the corpus run:\n" + output[-4000:])
    report, _end = json.JSONDecoder().raw_decode(output[start:])
    return dict(report)


@pytest.fixture(scope="module")
def corpus(fresh_target: BedTarget) -> Corpus:
    """ONE ansible-playbook run for every case, before anything else touches the target."""
    inventory = fresh_target.workdir / "corpus-inventory.yml"
    inventory.write_text(json.dumps(_corpus_inventory(fresh_target), indent=1))
    before = _snapshot(fresh_target)
    run = run_playbook(inventory, CORPUS_PLAYBOOK, {"hearth_hosts": "site_cases"},
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_FORKS": "10"})
    after = _snapshot(fresh_target)
    report = _json_report(run.output)
    failures = _first_failures(report)
    outcomes = {}
    for host, stats in report.get("stats", {}).items():
        task, message = failures.get(host, ("", ""))
        outcomes[host] = Outcome(failed=bool(stats.get("failures") or stats.get("unreachable")),
                                 changed=int(stats.get("changed", 0)), message=message, task=task)
    expected = {case[0]: case[-1] for case in SITE_CASES + ROLE_CASES}  # type: ignore[operator]
    result = Corpus(outcomes=outcomes, expected=expected, host_changed=after != before, output=run.output)
    print("\nbad-input corpus (%s, %d cases, one run of %.0f s):\n%s" % (
        fresh_target.engine, len(CASE_IDS), run.seconds, result.table()))
    return result


# The corpus's engine (see the module docstring); indirect: the same fresh target as the
# other tests of that engine.
ON_FIRST_ENGINE = pytest.mark.parametrize("engine", ENGINES[:1], indirect=True)


@ON_FIRST_ENGINE
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_fails_before_any_change(corpus: Corpus, case_id: str) -> None:
    outcome = corpus.outcomes.get(case_id)
    expected = corpus.expected[case_id]
    assert outcome is not None, "%s: no result in the corpus run" % case_id
    assert outcome.failed, "%s: the play accepted the bad input" % case_id
    assert outcome.changed == 0, "%s: %d changes before the failure" % (case_id, outcome.changed)
    assert expected in outcome.message, "%s: the failure does not name %s: %r (task %r)" % (
        case_id, expected, outcome.message, outcome.task)
    assert "\n" not in _error_text(outcome.message), "%s: not one line: %r" % (case_id, outcome.message)


@ON_FIRST_ENGINE
def test_the_corpus_left_the_host_unchanged(corpus: Corpus) -> None:
    accepted = [case for case, outcome in corpus.outcomes.items()
                if case != SENTINEL and (not outcome.failed or outcome.changed)]
    assert not corpus.host_changed, "the host changed; cases that got past the checks: %s" % accepted


def test_check_mode_on_a_fresh_host_reports_and_changes_nothing(fresh_target: BedTarget) -> None:
    """--check --diff of the full stack on a host that never had it: succeeds, shows what it
    would do, changes nothing, shows no secret. (On the corpus's engine it runs after the
    corpus, which must have left the host as new: test_the_corpus_left_the_host_unchanged.)"""
    stack_vars = dict(BASE_VARS, hearth_engine=fresh_target.engine, **FULL_STACK_VARS)
    stack_vars.update({"hearth_%s_enabled" % name: True for name in ("mailer", "identity", "corporal", "element")})
    before = _snapshot(fresh_target)
    run = run_playbook(fresh_target.inventory, PLAYBOOKS / "site.yml", stack_vars, args=["--check", "--diff"])
    after = _snapshot(fresh_target)
    assert run.rc == 0 and run.failed == 0, run.tail(60)
    assert run.changed > 0, "check mode on a fresh host reported nothing to do"
    for unit in ("hearth-postgres", "hearth-synapse", "hearth-nginx-proxy", "hearth-mailer", "hearth-identity",
                 "hearth-corporal", "hearth-element"):
        assert "/etc/systemd/system/%s.service" % unit in run.output, "no diff of the %s unit" % unit
    assert "@@hearth-secret:" not in run.output and "(generated-on-apply)" not in run.output
    assert after == before, "check mode changed the host"


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


def _own_playbook(target: BedTarget, password: str, **extra: Any) -> Any:
    return run_playbook(target.inventory, OWN_PLAYBOOK, dict({"my_engine": target.engine, "my_db_password": password},
                                                             **extra))


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

    # The user renames the service: the old unit and container go, the new one serves the
    # same data (the user logs in again with the same password).
    renamed = _own_playbook(fresh_target, password, synapse_service_name="my-synapse")
    assert renamed.rc == 0, renamed.tail(80)
    rc, units = fresh_target.sh("ls /etc/systemd/system/")
    assert "hearth-synapse.service" not in units.split() and "my-synapse.service" in units.split(), units
    _rc, containers = fresh_target.sh("%s ps -a --format '{{.Names}}'" % fresh_target.engine)
    assert "hearth-synapse" not in containers.split() and "my-synapse" in containers.split(), containers
    result = None
    wait_for(client_works, 60, 2, "client against the renamed Synapse")
    assert result is not None and result.body in result.seen_by_second_session
