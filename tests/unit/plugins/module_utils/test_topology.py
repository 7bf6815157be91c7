# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology: every rule of issue 2 §4, contradictions, cycles and the start order."""

from __future__ import annotations

import ipaddress
import json
import random
from typing import Any, Dict, List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.topology import (
    COMPONENTS,
    ServiceNode,
    TopologyError,
    compute_topology,
    topological_order,
)

ALL_ON = {name: True for name in COMPONENTS}
MINIMAL = {"postgres": True, "synapse": True, "nginx_proxy": True}


def stack(components: Dict[str, bool] = None, **extra: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {"server_name": "example.org", "components": dict(MINIMAL if components is None else components)}
    result.update(extra)
    return result


def with_(**switches: bool) -> Dict[str, bool]:
    components = dict(MINIMAL)
    components.update(switches)
    return components


def error_for(raw: Dict[str, Any]) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        compute_topology(raw)
    return info.value


def assert_topological(topology: Dict[str, Any]) -> None:
    order: List[str] = topology["start_order"]
    assert sorted(order) == sorted(topology["services"])
    for name, service in topology["services"].items():
        for dep in service["after"]:
            assert order.index(dep[: -len(".service")]) < order.index(name), (dep, name, order)
    assert topology["stop_order"] == list(reversed(order))


# --- defaults --------------------------------------------------------------------------------

def test_minimal_stack() -> None:
    topo = compute_topology(stack())
    assert topo["network"] == "hearth"
    assert topo["matrix_hostname"] == "matrix.example.org"
    assert list(topo["services"]) == ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]
    assert topo["start_order"] == ["hearth-postgres", "hearth-nginx-proxy", "hearth-synapse"]
    # The proxy neither needs nor waits for Synapse (fixed addresses in its /etc/hosts).
    proxy = topo["services"]["hearth-nginx-proxy"]
    assert proxy["wants"] == [] and proxy["after"] == [] and proxy["requires"] == []
    assert topo["synapse"]["public_baseurl"] == "https://matrix.example.org/"
    assert "server" not in topo["well_known"]
    assert topo["well_known"]["client"]["m.homeserver"] == {"base_url": "https://matrix.example.org"}
    for name, service in topo["services"].items():
        assert service["networks"] == ["hearth"], name
    assert topo["element"] is None and topo["corporal"] is None and topo["identity"] is None and topo["mailer"] is None
    assert_topological(topo)


def test_output_is_plain_json() -> None:
    topo = compute_topology(stack(ALL_ON))
    assert json.loads(json.dumps(topo)) == topo


def test_custom_hostnames_and_network() -> None:
    topo = compute_topology(stack(with_(element=True), matrix_hostname="hs.example.net",
                                  element_hostname="chat.example.net", network="matrixnet"))
    assert topo["proxy"]["matrix_hostname"] == "hs.example.net"
    assert topo["proxy"]["tls_domains"] == ["hs.example.net", "example.org", "chat.example.net"]
    assert all(service["networks"] == ["matrixnet"] for service in topo["services"].values())


# --- corporal --------------------------------------------------------------------------------

def test_corporal_on_routes_client_api_through_gateway() -> None:
    topo = compute_topology(stack(with_(corporal=True)))
    assert topo["proxy"]["client_upstream"] == "http://hearth-corporal:41080"
    assert topo["proxy"]["federation_upstream"] == "http://hearth-synapse:8008"
    # No unit dependency at all: a Synapse restart neither restarts corporal nor keeps it
    # down until Synapse is ready (corporal retries Synapse on its own).
    corporal = topo["services"]["hearth-corporal"]
    assert corporal["requires"] == [] and corporal["wants"] == [] and corporal["after"] == []
    assert topo["corporal"]["homeserver_api"] == "http://hearth-synapse:8008"
    assert topo["corporal"]["homeserver_domain"] == "example.org"
    assert "corporal" in topo["shared_secrets"]["registration_shared_secret"]
    assert sorted(topo["shared_secrets"]["shared_secret_auth"]) == ["corporal", "synapse"]
    assert topo["synapse"]["shared_secret_auth"] is True
    assert_topological(topo)


def test_corporal_off() -> None:
    topo = compute_topology(stack())
    assert topo["proxy"]["client_upstream"] == "http://hearth-synapse:8008"
    assert topo["synapse"]["shared_secret_auth"] is False
    assert "shared_secret_auth" not in topo["shared_secrets"]
    assert topo["shared_secrets"]["registration_shared_secret"] == ["synapse"]
    assert topo["corporal"] is None


# --- identity --------------------------------------------------------------------------------

def test_identity_on_is_used_everywhere() -> None:
    topo = compute_topology(stack(with_(identity=True, element=True)))
    url = "https://matrix.example.org"
    assert topo["proxy"]["identity_upstream"] == "http://hearth-identity:8090"
    assert topo["synapse"]["identity_server"] == url
    assert topo["well_known"]["client"]["m.identity_server"] == {"base_url": url}
    assert topo["element"]["config"]["default_server_config"]["m.identity_server"] == {"base_url": url}
    assert topo["identity"]["port"] == 8090
    assert "hearth-identity.service" not in topo["services"]["hearth-nginx-proxy"]["wants"]


@pytest.mark.parametrize("public, expected", [(None, "https://vector.im"), ("https://id.example.net/", "https://id.example.net")])
def test_identity_off_uses_public_identity_server(public: Any, expected: str) -> None:
    raw = stack(with_(element=True))
    if public is not None:
        raw["public_identity_server"] = public
    topo = compute_topology(raw)
    assert topo["proxy"]["identity_upstream"] == ""
    assert topo["synapse"]["identity_server"] == expected
    assert topo["well_known"]["client"]["m.identity_server"] == {"base_url": expected}
    assert topo["element"]["config"]["default_server_config"]["m.identity_server"] == {"base_url": expected}
    assert topo["identity"] is None


def test_identity_off_and_empty_public_means_none() -> None:
    topo = compute_topology(stack(with_(element=True), public_identity_server=""))
    assert topo["synapse"]["identity_server"] == ""
    assert "m.identity_server" not in topo["well_known"]["client"]
    assert "m.identity_server" not in topo["element"]["config"]["default_server_config"]


# --- mailer ----------------------------------------------------------------------------------

def test_mailer_on_is_wanted_not_required() -> None:
    topo = compute_topology(stack(with_(mailer=True), mailer={"sender": "noreply@example.org"}))
    synapse = topo["services"]["hearth-synapse"]
    assert "hearth-mailer.service" in synapse["wants"]
    assert "hearth-mailer.service" not in synapse["requires"]
    assert "hearth-mailer.service" in synapse["after"]
    assert topo["synapse"]["email"] == {"enabled": True, "smtp_host": "hearth-mailer", "smtp_port": 8025,
                                        "notif_from": "Matrix <noreply@example.org>"}
    assert topo["mailer"] == {"port": 8025, "sender": "noreply@example.org"}
    assert topo["start_order"].index("hearth-mailer") < topo["start_order"].index("hearth-synapse")


def test_mailer_default_sender_and_off() -> None:
    assert compute_topology(stack(with_(mailer=True)))["mailer"]["sender"] == "matrix@example.org"
    topo = compute_topology(stack())
    assert topo["synapse"]["email"] == {"enabled": False}
    assert "hearth-mailer.service" not in topo["services"]["hearth-synapse"]["wants"]


# --- postgres --------------------------------------------------------------------------------

def test_postgres_on_is_required_and_used() -> None:
    topo = compute_topology(stack())
    assert topo["services"]["hearth-synapse"]["requires"] == ["hearth-postgres.service"]
    assert topo["synapse"]["database"] == {"host": "hearth-postgres", "port": 5432, "name": "synapse", "user": "synapse"}
    assert topo["shared_secrets"]["postgres_synapse_password"] == ["postgres", "synapse"]


def test_postgres_off_uses_external_database() -> None:
    database = {"host": "db.example.org", "port": 6432, "name": "matrix", "user": "matrix"}
    topo = compute_topology(stack(with_(postgres=False), external_database=database))
    assert "hearth-postgres" not in topo["services"]
    assert topo["services"]["hearth-synapse"]["requires"] == []
    assert topo["synapse"]["database"] == database
    assert "postgres_synapse_password" not in topo["shared_secrets"]
    default_port = compute_topology(stack(with_(postgres=False), external_database={"host": "db", "name": "m", "user": "m"}))
    assert default_port["synapse"]["database"]["port"] == 5432


@pytest.mark.parametrize("database, field_name", [
    (None, "external_database"),
    ("postgres://db/matrix", "external_database"),
    ({"name": "m", "user": "m"}, "external_database.host"),
    ({"host": "db", "user": "m"}, "external_database.name"),
    ({"host": "db", "name": "m", "user": ""}, "external_database.user"),
    ({"host": "db", "name": "m", "user": "m", "port": "5432"}, "external_database.port"),
    ({"host": "db", "name": "m", "user": "m", "port": 0}, "external_database.port"),
])
def test_postgres_off_without_external_database_is_an_error(database: Any, field_name: str) -> None:
    raw = stack(with_(postgres=False))
    if database is not None:
        raw["external_database"] = database
    error = error_for(raw)
    assert error.field == field_name
    assert str(error).startswith(field_name + ": ")


# --- element ---------------------------------------------------------------------------------

def test_element_on_is_served_and_certified() -> None:
    topo = compute_topology(stack(with_(element=True)))
    assert topo["proxy"]["element"] == {"hostname": "element.example.org", "upstream": "http://hearth-element:8080"}
    assert "element.example.org" in topo["proxy"]["tls_domains"]
    config = topo["element"]["config"]
    assert config["default_server_config"]["m.homeserver"] == {"base_url": "https://matrix.example.org", "server_name": "example.org"}
    assert topo["element"]["hostname"] == "element.example.org"


def test_element_off_not_certified() -> None:
    topo = compute_topology(stack())
    assert topo["proxy"]["element"] is None
    assert topo["proxy"]["tls_domains"] == ["matrix.example.org", "example.org"]


def test_server_name_is_matrix_hostname() -> None:
    topo = compute_topology(stack(matrix_hostname="example.org"))
    assert topo["proxy"]["tls_domains"] == ["example.org"]


# --- contradictions and bad input ------------------------------------------------------------

@pytest.mark.parametrize("components, field_name, fragment", [
    ({"corporal": True, "nginx_proxy": True}, "components.corporal", "components.synapse"),
    ({"nginx_proxy": True}, "components.nginx_proxy", "components.synapse"),
    ({"postgres": True}, "components.postgres", "components.synapse"),
    ({"identity": True}, "components.identity", "components.synapse"),
    ({"mailer": True}, "components.mailer", "components.synapse"),
    ({"synapse": True, "corporal": True}, "components.corporal", "components.nginx_proxy"),
    ({"synapse": True, "dendrite": True}, "components", "unknown component(s): dendrite"),
    ({"synapse": "yes"}, "components.synapse", "boolean"),
])
def test_contradictions_are_errors(components: Dict[str, Any], field_name: str, fragment: str) -> None:
    error = error_for(stack(components))
    assert error.field == field_name
    assert fragment in error.detail(str)


@pytest.mark.parametrize("overrides, field_name", [
    ({"server_name": "Not A Host"}, "server_name"),
    ({"server_name": None}, "server_name"),
    ({"matrix_hostname": "bad_host!"}, "matrix_hostname"),
    ({"components": ["synapse"]}, "components"),
    ({"public_identity_server": "vector.im"}, "public_identity_server"),
    ({"public_identity_server": 1}, "public_identity_server"),
    ({"network": "bad net"}, "network"),
    ({"mailer": "matrix@example.org"}, "mailer"),
    ({"mailer": {"sender": "not-an-address"}}, "mailer.sender"),
])
def test_bad_input_names_the_field(overrides: Dict[str, Any], field_name: str) -> None:
    raw = stack()
    raw.update(overrides)
    assert error_for(raw).field == field_name


def test_element_hostname_must_differ_and_be_valid() -> None:
    assert error_for(stack(with_(element=True), element_hostname="matrix.example.org")).field == "element_hostname"
    assert error_for(stack(with_(element=True), element_hostname="UPPER.example.org")).field == "element_hostname"


def test_stack_must_be_a_mapping() -> None:
    with pytest.raises(TopologyError) as info:
        compute_topology(["server_name"])  # type: ignore[arg-type]
    assert info.value.field == "stack"


# --- extra services, cycles and the start order ----------------------------------------------

def test_extra_services_take_part_in_the_order() -> None:
    topo = compute_topology(stack(extra_services=[
        {"name": "bridge-telegram", "requires": ["hearth-synapse.service"], "after": ["bridge-db"]},
        {"name": "bridge-db"},
    ]))
    bridge = topo["services"]["bridge-telegram"]
    assert bridge["component"] == "extra"
    assert bridge["requires"] == ["hearth-synapse.service"]
    assert bridge["after"] == ["hearth-synapse.service", "bridge-db.service"]
    assert bridge["networks"] == ["hearth"]
    assert_topological(topo)


def test_cycle_via_extra_services_is_a_clear_error() -> None:
    error = error_for(stack(extra_services=[
        {"name": "bot-a", "requires": ["bot-b"]},
        {"name": "bot-b", "wants": ["bot-c.service"]},
        {"name": "bot-c", "after": ["bot-a"]},
    ]))
    assert error.field == "services"
    assert error.message == "dependency cycle: bot-a -> bot-b -> bot-c -> bot-a"


def test_self_dependency_is_a_cycle() -> None:
    assert "bot -> bot" in error_for(stack(extra_services=[{"name": "bot", "after": ["bot"]}])).message


@pytest.mark.parametrize("extra, field_name, fragment", [
    ([{"name": "bot", "requires": ["hearth-mailer"]}], "services.bot", "hearth-mailer, which is not enabled"),
    ([{"name": "hearth-synapse"}], "extra_services[0].name", "duplicate"),
    ([{"name": "bot"}, {"name": "bot"}], "extra_services[1].name", "duplicate"),
    ([{"name": "Bad Name"}], "extra_services[0].name", "invalid"),
    ([{"requires": []}], "extra_services[0]", "with a name"),
    ([{"name": "bot", "requires": "hearth-synapse"}], "extra_services[0].requires", "list"),
    ({"name": "bot"}, "extra_services", "must be a list"),
])
def test_bad_extra_services(extra: Any, field_name: str, fragment: str) -> None:
    error = error_for(stack(extra_services=extra))
    assert error.field == field_name
    assert fragment in error.detail(str)


def test_full_stack_order_is_topological() -> None:
    topo = compute_topology(stack(ALL_ON))
    assert_topological(topo)
    assert topo["start_order"][0] == "hearth-postgres"
    proxy = topo["services"]["hearth-nginx-proxy"]
    assert proxy["after"] == proxy["wants"] == proxy["requires"] == []
    # No unit reloads the proxy: no upstream address ever changes.
    assert all(service["reload_on_ready"] == [] for service in topo["services"].values())


def test_random_dags_are_ordered_topologically() -> None:
    rng = random.Random(2)
    for _round in range(20):
        count = rng.randint(2, 30)
        extra = []
        for index in range(count):
            deps = rng.sample(["svc-%d" % j for j in range(index)], k=min(index, rng.randint(0, 3)))
            extra.append({"name": "svc-%d" % index, "after": deps, "requires": ["hearth-synapse"] if index % 5 == 0 else []})
        rng.shuffle(extra)
        assert_topological(compute_topology(stack(extra_services=extra)))


def test_topological_order_direct() -> None:
    nodes = {
        "c": ServiceNode(name="c", component="x", requires=["a"], wants=["b"]),
        "a": ServiceNode(name="a", component="x"),
        "b": ServiceNode(name="b", component="x", after=["a"]),
    }
    assert topological_order(nodes) == ["a", "b", "c"]
    assert nodes["c"].ordering() == ["a", "b"]


# --- fixed addresses on the stack network -------------------------------------------------

def test_every_component_has_a_fixed_address_in_the_upper_half() -> None:
    topo = compute_topology({"server_name": "example.org", "components": {name: True for name in COMPONENTS}})
    assert topo["network_subnet"] == "10.89.91.0/24" and topo["network_dynamic_range"] == "10.89.91.0/25"
    addresses = {name: service["address"] for name, service in topo["services"].items()}
    assert addresses["hearth-postgres"] == "10.89.91.138" and addresses["hearth-synapse"] == "10.89.91.139"
    assert len(set(addresses.values())) == len(COMPONENTS)
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("10.89.91.128/25") for a in addresses.values())
    assert topo["hosts"] == addresses


def test_an_address_does_not_move_when_another_component_is_switched() -> None:
    small = compute_topology({"server_name": "example.org", "components": {"postgres": True, "synapse": True,
                                                                           "nginx_proxy": True}})
    full = compute_topology({"server_name": "example.org", "components": {name: True for name in COMPONENTS}})
    assert small["services"]["hearth-synapse"]["address"] == full["services"]["hearth-synapse"]["address"]
    # The hosts entries name every component, on or off: a switch changes no other container.
    assert small["hosts"] == full["hosts"] and len(small["hosts"]) == len(COMPONENTS)


def test_addresses_follow_the_subnet_and_extra_services_get_none() -> None:
    topo = compute_topology({"server_name": "example.org", "network_subnet": "172.30.0.0/16",
                             "components": {"postgres": True, "synapse": True},
                             "extra_services": [{"name": "bridge", "after": ["hearth-synapse"]}]})
    assert topo["services"]["hearth-synapse"]["address"] == "172.30.128.11"
    assert topo["network_dynamic_range"] == "172.30.0.0/17"
    assert topo["services"]["bridge"]["address"] == "" and "bridge" not in topo["hosts"]
    assert topo["hosts"]["hearth-element"] == "172.30.128.16"


@pytest.mark.parametrize("subnet", ["10.89.91.0/26", "10.89.91.1/24", "fd00::/64", "", None, 24])
def test_bad_subnet_names_the_field(subnet: Any) -> None:
    with pytest.raises(TopologyError) as info:
        compute_topology({"server_name": "example.org", "network_subnet": subnet})
    assert info.value.field == "network_subnet"
