# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the site playbook hands each role: role_vars, removed and shared_secrets_component of the topology."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.role_options import SHARED_OPTIONS
from ansible_collections.hearth.matrix.plugins.module_utils.role_vars import (
    BASE_DIRS,
    role_vars,
    shared_secret_path,
)
from ansible_collections.hearth.matrix.plugins.module_utils.topology import (
    COMPONENTS,
    SERVICE_NAMES,
    TopologyError,
    compute_topology,
)

ALL_ON = {name: True for name in COMPONENTS}
BASE = {"postgres": True, "synapse": True, "nginx_proxy": True}
EXTERNAL_DB = {"host": "db.example.org", "name": "matrix", "user": "matrix", "port": 5433}
ROLES_DIR = Path(__file__).resolve().parents[4] / "roles"


def topology(components: Dict[str, bool], **extra: Any) -> Dict[str, Any]:
    stack: Dict[str, Any] = {"server_name": "example.org", "components": dict(components)}
    stack.update(extra)
    return compute_topology(stack)


def secret(name: str, base_dir: str = "/opt/hearth-matrix") -> str:
    return "%s/secrets/%s" % (base_dir, name)


def test_base_stack() -> None:
    topo = topology(BASE)
    rv = topo["role_vars"]
    assert rv["common_engine"] == "docker" and rv["common_base_dir"] == "/opt/hearth-matrix"
    assert rv["common_networks"] == ["hearth"]
    for role in ("postgres", "synapse", "nginx_proxy"):
        assert rv["%s_enabled" % role] is True and rv["%s_engine" % role] == "docker"
        assert rv["%s_base_dir" % role] == "/opt/hearth-matrix/%s" % BASE_DIRS[role]
        assert rv["%s_container_networks" % role] == ["hearth"]
    for role in ("mailer", "identity", "corporal", "element"):
        assert not any(key.startswith(role + "_") for key in rv), role
    assert rv["nginx_proxy_base_dir"] == "/opt/hearth-matrix/nginx-proxy"
    assert rv["synapse_requires"] == ["hearth-postgres.service"]
    assert rv["synapse_after"] == ["hearth-postgres.service"]
    assert rv["nginx_proxy_wants"] == []
    assert rv["synapse_database_host"] == "hearth-postgres" and rv["synapse_database_port"] == 5432
    assert rv["synapse_database_password_file"] == secret("postgres_synapse_password")
    assert rv["postgres_password_file"] == secret("postgres_synapse_password")
    assert (rv["postgres_db_name"], rv["postgres_db_user"], rv["postgres_port"]) == ("synapse", "synapse", 5432)
    assert rv["synapse_registration_shared_secret_file"] == secret("registration_shared_secret")
    assert rv["synapse_shared_secret_auth_enabled"] is False
    assert "synapse_shared_secret_auth_secret_file" not in rv
    assert rv["synapse_email_enabled"] is False and "synapse_email_smtp_host" not in rv
    assert rv["synapse_identity_server_url"] == "https://vector.im"
    assert rv["nginx_proxy_client_upstream"] == "http://hearth-synapse:8008"
    assert rv["nginx_proxy_identity_upstream"] == "" and rv["nginx_proxy_element"] is None
    assert topo["removed"] == [{"name": SERVICE_NAMES[c], "state": "absent", "engine": "docker"}
                               for c in ("mailer", "identity", "corporal", "element")]


def test_all_components_on() -> None:
    topo = topology(ALL_ON, engine="podman", base_dir="/srv/matrix")
    rv = topo["role_vars"]
    assert topo["removed"] == []
    for role in COMPONENTS:
        assert rv["%s_engine" % role] == "podman" and rv["%s_enabled" % role] is True
        assert rv["%s_base_dir" % role].startswith("/srv/matrix/")
    assert rv["common_base_dir"] == "/srv/matrix"
    assert rv["corporal_requires"] == [] and rv["corporal_wants"] == [] and rv["corporal_after"] == []
    assert rv["corporal_homeserver_api_endpoint"] == "http://hearth-synapse:8008"
    assert rv["corporal_homeserver_domain_name"] == "example.org" and rv["corporal_gateway_port"] == 41080
    # corporal and Synapse share both secrets.
    assert rv["corporal_registration_shared_secret_file"] == rv["synapse_registration_shared_secret_file"] \
        == secret("registration_shared_secret", "/srv/matrix")
    assert rv["corporal_auth_shared_secret_file"] == rv["synapse_shared_secret_auth_secret_file"] \
        == secret("shared_secret_auth", "/srv/matrix")
    assert rv["synapse_shared_secret_auth_enabled"] is True
    assert rv["nginx_proxy_client_upstream"] == "http://hearth-corporal:41080"
    assert rv["nginx_proxy_federation_upstream"] == "http://hearth-synapse:8008"
    assert rv["nginx_proxy_element"] == {"hostname": "element.example.org", "upstream": "http://hearth-element:8080"}
    assert rv["element_default_homeserver_url"] == "https://matrix.example.org"
    assert rv["element_default_server_name"] == "example.org"
    assert rv["element_identity_server_url"] == "https://matrix.example.org" == rv["synapse_identity_server_url"]
    assert rv["nginx_proxy_well_known_client"]["m.identity_server"] == {"base_url": "https://matrix.example.org"}


def test_postgres_off_uses_the_external_database_without_a_password_file() -> None:
    topo = topology({"synapse": True, "nginx_proxy": True}, external_database=EXTERNAL_DB)
    rv = topo["role_vars"]
    assert "synapse_database_password_file" not in rv
    assert not any(key.startswith("postgres_") for key in rv)
    assert (rv["synapse_database_host"], rv["synapse_database_port"], rv["synapse_database_name"],
            rv["synapse_database_user"]) == ("db.example.org", 5433, "matrix", "matrix")
    assert rv["synapse_requires"] == []
    assert {"name": "hearth-postgres", "state": "absent", "engine": "docker"} in topo["removed"]
    assert secret("postgres_synapse_password") not in topo["shared_secrets_component"]["secrets"]


def test_identity_and_mailer_wiring() -> None:
    rv = topology(dict(BASE, identity=True, mailer=True))["role_vars"]
    assert rv["identity_email_enabled"] is True
    assert (rv["identity_email_smtp_host"], rv["identity_email_smtp_port"]) == ("hearth-mailer", 8025)
    assert rv["identity_email_from"] == "matrix@example.org" == rv["mailer_sender"]
    assert rv["identity_server_name"] == "matrix.example.org" and rv["identity_port"] == 8090
    assert rv["synapse_email_enabled"] is True
    assert (rv["synapse_email_smtp_host"], rv["synapse_email_smtp_port"]) == ("hearth-mailer", 8025)
    assert rv["synapse_email_notif_from"] == "Matrix <matrix@example.org>"
    assert rv["synapse_wants"] == ["hearth-mailer.service"]  # mail down must not take Synapse down
    assert "hearth-mailer.service" not in rv["synapse_requires"]
    assert rv["synapse_identity_server_url"] == "https://matrix.example.org"
    assert rv["nginx_proxy_identity_upstream"] == "http://hearth-identity:8090"
    assert rv["mailer_port"] == 8025


def test_identity_without_mailer_has_no_mail_settings() -> None:
    rv = topology(dict(BASE, identity=True))["role_vars"]
    assert rv["identity_email_enabled"] is False
    assert not any(key.startswith("identity_email_") and key != "identity_email_enabled" for key in rv)


def test_custom_sender() -> None:
    rv = topology(dict(BASE, identity=True, mailer=True), mailer={"sender": "noreply@example.net"})["role_vars"]
    assert rv["mailer_sender"] == rv["identity_email_from"] == "noreply@example.net"


def test_no_upstream_reloads_the_proxy_and_the_proxy_waits_for_none() -> None:
    rv = topology(dict(ALL_ON))["role_vars"]
    for role in COMPONENTS:
        assert rv["%s_reload_on_ready" % role] == [], role
    assert rv["nginx_proxy_after"] == rv["nginx_proxy_wants"] == rv["nginx_proxy_requires"] == []


def test_shared_secrets_component_is_a_valid_files_only_component() -> None:
    component = topology(ALL_ON, base_dir="/srv/m")["shared_secrets_component"]
    parsed = component_from_dict(component)
    assert parsed.name == "hearth-shared-secrets" and parsed.container is None and parsed.state == "started"
    assert [d.path for d in parsed.directories] == ["/srv/m/secrets"]
    assert parsed.directories[0].own.mode == "0700" and parsed.directories[0].own.owner == "root"
    assert sorted(s.path for s in parsed.secrets) == sorted(secret(n, "/srv/m") for n in (
        "registration_shared_secret", "shared_secret_auth", "postgres_synapse_password"))
    assert all(s.own.mode == "0600" and s.own.owner == "root" and s.format == "token" for s in parsed.secrets)


def test_removed_components_are_valid_absent_components() -> None:
    removed = topology(BASE, engine="podman")["removed"]
    assert removed and all(component_from_dict(item).state == "absent" for item in removed)
    assert {item["engine"] for item in removed} == {"podman"}


def test_every_plumbing_value_passes_the_role_option_checks() -> None:
    """The values role_vars computes are accepted by option_values' rules for the same option."""
    from ansible_collections.hearth.matrix.plugins.module_utils.role_options import option_values
    rv = topology(ALL_ON)["role_vars"]
    for role in COMPONENTS:
        lookup = dict(rv)
        lookup.update({"%s_service_name" % role: SERVICE_NAMES[role], "%s_image" % role: "example/image:1",
                       "%s_uid" % role: 1000, "%s_gid" % role: 1000, "%s_pids_limit" % role: 100,
                       "%s_stop_timeout" % role: 10})
        values = option_values(role, lookup)
        assert values["base_dir"] == rv["%s_base_dir" % role]


def test_role_vars_only_sets_options_the_roles_declare() -> None:
    """A variable the role does not know is silently ignored by Ansible: the wiring would be lost."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the roles' argument specs")
    rv = topology(ALL_ON)["role_vars"]
    for role in list(COMPONENTS) + ["common"]:
        spec_path = ROLES_DIR / role / "meta" / "argument_specs.yml"
        defaults_path = ROLES_DIR / role / "defaults" / "main.yml"
        declared = set(yaml.safe_load(defaults_path.read_text()) or {})
        for entry_point in (yaml.safe_load(spec_path.read_text()) or {}).get("argument_specs", {}).values():
            declared |= set(entry_point.get("options") or {})
        shared = {"%s_%s" % (role, option) for option in SHARED_OPTIONS}
        unknown = sorted(key for key in rv if key.startswith(role + "_") and key not in declared and key not in shared)
        assert unknown == [], role


def test_shared_secret_path() -> None:
    assert shared_secret_path("/opt/x", "a") == "/opt/x/secrets/a"


def test_role_vars_of_a_topology_without_components() -> None:
    topo = topology(BASE)
    topo["enabled"] = {name: False for name in COMPONENTS}
    assert role_vars(topo, "podman", "/srv/m") == {"common_engine": "podman", "common_base_dir": "/srv/m",
                                                   "common_networks": ["hearth"],
                                                   "common_network_subnet": "10.89.91.0/24"}


@pytest.mark.parametrize("extra, field_name", [
    ({"engine": "lxc"}, "engine"),
    ({"engine": None}, "engine"),
    ({"base_dir": "opt/hearth"}, "base_dir"),
    ({"base_dir": "/opt/hearth/"}, "base_dir"),
    ({"base_dir": "/"}, "base_dir"),
    ({"base_dir": "/opt/hearth matrix"}, "base_dir"),
    ({"base_dir": 5}, "base_dir"),
])
def test_bad_engine_or_base_dir(extra: Dict[str, Any], field_name: str) -> None:
    with pytest.raises(TopologyError) as info:
        topology(BASE, **extra)
    assert info.value.field == field_name


@pytest.mark.parametrize("base_dir", ["/opt/hearth/..", "/opt/../etc", "/opt/./hearth", "/."])
def test_base_dir_that_is_not_normalised_is_refused_as_base_dir(base_dir: str) -> None:
    """Accepted here, it would fail later as <role>_base_dir, a variable the user never set."""
    with pytest.raises(TopologyError) as info:
        topology(BASE, base_dir=base_dir)
    assert info.value.field == "base_dir"


def test_images_given_by_the_user_reach_only_enabled_roles() -> None:
    topo = topology({"postgres": True, "synapse": True, "nginx_proxy": True},
                    images={"synapse": "localhost/synapse:1", "element": "localhost/element:1"})
    assert topo["role_vars"]["synapse_image"] == "localhost/synapse:1"
    assert "element_image" not in topo["role_vars"]
    assert "postgres_image" not in topo["role_vars"]


def test_each_component_gets_its_address_and_the_others_as_hosts() -> None:
    rv = topology(ALL_ON)["role_vars"]
    assert rv["common_network_subnet"] == "10.89.91.0/24"
    assert rv["synapse_container_address"] == "10.89.91.139"
    hosts = rv["synapse_container_hosts"]
    assert "hearth-synapse" not in hosts and hosts["hearth-postgres"] == "10.89.91.138"
    assert set(hosts) == {SERVICE_NAMES[name] for name in COMPONENTS} - {"hearth-synapse"}
    # Every address on the other side of the hosts entries is the component's own.
    for component in COMPONENTS:
        for name, address in rv["%s_container_hosts" % component].items():
            other = next(c for c in COMPONENTS if SERVICE_NAMES[c] == name)
            assert rv["%s_container_address" % other] == address


def test_extra_hosts_join_every_containers_own_entries() -> None:
    """hearth_extra_hosts adds to the topology's entries, never replaces them."""
    extra = {"matrix.b.example.net": "192.0.2.10", "b.example.net": "192.0.2.10"}
    topo = topology(ALL_ON, extra_hosts=extra)
    assert topo["extra_hosts"] == extra
    for component in COMPONENTS:
        hosts = topo["role_vars"]["%s_container_hosts" % component]
        assert set(hosts) == ({SERVICE_NAMES[name] for name in COMPONENTS} - {SERVICE_NAMES[component]}) | set(extra)
        assert all(hosts[name] == address for name, address in extra.items())


def test_no_extra_hosts_changes_nothing() -> None:
    assert topology(BASE)["role_vars"] == topology(BASE, extra_hosts={})["role_vars"]
    assert topology(BASE)["extra_hosts"] == {}


def test_beyond_defaults_leaves_out_what_the_user_set_and_what_equals_the_default() -> None:
    from ansible_collections.hearth.matrix.plugins.module_utils.role_vars import beyond_defaults
    values = {"a_port": 8008, "a_name": "x", "a_list": [1], "a_flag": True, "a_tmpl": "v", "a_new": 1, "a_user": 2}
    defaults = {"a_port": 8008, "a_name": "y", "a_list": [1], "a_flag": 1, "a_tmpl": "{{ other }}", "a_user": 2}
    assert beyond_defaults(values, {"a_user"}, defaults) == {"a_name": "x", "a_flag": True, "a_tmpl": "v", "a_new": 1}
