# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared role options: one component per role, every error names the variable the user set."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.role_options import (
    RoleInputError,
    build_component,
    check_port_clash,
    check_rules,
    option_values,
    published,
)

SYNAPSE: Dict[str, Any] = {
    "synapse_enabled": True,
    "synapse_engine": "docker",
    "synapse_service_name": "hearth-synapse",
    "synapse_image": "ghcr.io/element-hq/synapse:v1.163.2",
    "synapse_uid": 991,
    "synapse_gid": 991,
    "synapse_base_dir": "/opt/hearth-matrix/synapse",
    "synapse_container_networks": ["hearth"],
    "synapse_pids_limit": 512,
    "synapse_stop_timeout": 30,
}
SPEC: Dict[str, Any] = {
    "description": "Synapse",
    "directories": [{"path": "/opt/hearth-matrix/synapse/config", "group": "991", "mode": "0750"}],
    "container": {"mounts": [{"source": "/opt/hearth-matrix/synapse/config", "target": "/config"}]},
}


def variables(role: str = "synapse", **overrides: Any) -> Dict[str, Any]:
    result = {key.replace("synapse_", role + "_", 1): value for key, value in SYNAPSE.items()}
    result.update(("%s_%s" % (role, key), value) for key, value in overrides.items())
    return result


def build_error(spec: Optional[Mapping[str, Any]] = None, role: str = "synapse", **overrides: Any) -> RoleInputError:
    with pytest.raises(RoleInputError) as info:
        build_component(role, variables(role, **overrides), SPEC if spec is None else spec)
    return info.value


# --- option_values -------------------------------------------------------------------------

def test_option_values_with_fallbacks() -> None:
    values = option_values("synapse", variables())
    assert values == {
        "enabled": True, "engine": "docker", "service_name": "hearth-synapse",
        "image": SYNAPSE["synapse_image"], "uid": 991, "gid": 991, "base_dir": "/opt/hearth-matrix/synapse",
        "container_networks": ["hearth"], "manage_networks": True, "container_address": "", "container_hosts": {},
        "container_ports": [], "memory": None, "cpu_shares": None,
        "pids_limit": 512, "stop_timeout": 30, "ready_timeout": 120,
        "requires": [], "wants": [], "after": [], "reload_on_ready": [],
    }


def test_option_values_accept_strings_from_the_inventory() -> None:
    values = option_values("synapse", variables(enabled="yes", uid="991", pids_limit=" 64 ", memory=512,
                                                manage_networks="False"))
    assert values["enabled"] is True and values["uid"] == 991 and values["pids_limit"] == 64
    assert values["memory"] == "512" and values["manage_networks"] is False


def test_required_option_missing() -> None:
    lookup = variables()
    del lookup["synapse_image"]
    with pytest.raises(RoleInputError) as info:
        option_values("synapse", lookup)
    assert info.value.variable == "synapse_image" and str(info.value) == "synapse_image is required"


def test_host_only_options() -> None:
    assert option_values("common", {"common_engine": "podman"}, host_only=True) == {"enabled": True, "engine": "podman"}


def test_disabled_role_needs_only_name_and_engine() -> None:
    lookup = {"identity_enabled": False, "identity_engine": "docker", "identity_service_name": "hearth-identity"}
    assert option_values("identity", lookup) == {"enabled": False, "engine": "docker", "service_name": "hearth-identity"}


@pytest.mark.parametrize("overrides, variable, fragment", [
    ({"pids_limit": -5}, "synapse_pids_limit", "at least 1, got -5"),
    ({"pids_limit": "-5"}, "synapse_pids_limit", "at least 1, got -5"),
    ({"pids_limit": 0}, "synapse_pids_limit", "at least 1, got 0"),
    ({"pids_limit": True}, "synapse_pids_limit", "whole number"),
    ({"stop_timeout": "soon"}, "synapse_stop_timeout", "whole number"),
    ({"ready_timeout": 0}, "synapse_ready_timeout", "at least 1"),
    ({"memory": "lots"}, "synapse_memory", "512m"),
    ({"memory": "0"}, "synapse_memory", "512m"),
    ({"memory": True}, "synapse_memory", "512m"),
    ({"cpu_shares": 1}, "synapse_cpu_shares", "at least 2, got 1"),
    ({"cpu_shares": "lots"}, "synapse_cpu_shares", "whole number"),
    ({"uid": 0}, "synapse_uid", "at least 1, got 0"),
    ({"gid": "0"}, "synapse_gid", "at least 1, got 0"),
    ({"base_dir": "opt/hearth-matrix/synapse"}, "synapse_base_dir", "absolute"),
    ({"base_dir": "/opt/hearth-matrix/synapse/"}, "synapse_base_dir", "normalised"),
    ({"base_dir": "/opt/./synapse"}, "synapse_base_dir", "normalised"),
    ({"base_dir": "/opt/../synapse"}, "synapse_base_dir", "normalised"),
    ({"base_dir": "/"}, "synapse_base_dir", "absolute"),
    ({"base_dir": "//opt/hearth-matrix"}, "synapse_base_dir", "normalised"),
    ({"base_dir": "/opt//hearth-matrix"}, "synapse_base_dir", "normalised"),
    ({"image": "ghcr.io/element-hq/synapse: latest"}, "synapse_image", "without spaces"),
    ({"image": ""}, "synapse_image", "without spaces"),
    ({"container_networks": []}, "synapse_container_networks", "at least one network"),
    ({"container_networks": "hearth"}, "synapse_container_networks", "list of names"),
    ({"container_ports": "8008:8008"}, "synapse_container_ports", "must be a list"),
    ({"requires": [1]}, "synapse_requires", "list of names"),
    ({"engine": "lxc"}, "synapse_engine", "one of docker, podman, podman_rootless, docker_rootless, got 'lxc'"),
    ({"enabled": "maybe"}, "synapse_enabled", "true or false, got 'maybe'"),
    ({"manage_networks": None}, "synapse_manage_networks", "true or false"),
    ({"service_name": "Hearth Synapse"}, "synapse_service_name", "unit/container name"),
])
def test_option_error_names_the_variable(overrides: Dict[str, Any], variable: str, fragment: str) -> None:
    error = build_error(**overrides)
    assert error.variable == variable
    assert str(error).startswith(variable + " ")
    assert fragment in str(error)


def test_port_given_as_a_docker_string_points_at_the_item() -> None:
    error = build_error(container_ports=["8008:8008"])
    assert error.variable == "synapse_container_ports"
    # "synapse_container_ports[0] must be ...": the index sticks to the variable.
    assert str(error).startswith("synapse_container_ports[0] must be a mapping")
    assert "'8008:8008'" in str(error)


# --- errors found by the component model name the variable too -----------------------------

@pytest.mark.parametrize("overrides, variable, field_name", [
    ({"container_ports": [{"host_port": 8008, "container_port": 8008}]}, "synapse_container_ports",
     "ports[0].host_address"),
    ({"container_ports": [{"host_address": "127.0.0.1", "host_port": 70000, "container_port": 8008}]},
     "synapse_container_ports", "ports[0].host_port"),
    ({"requires": ["hearth-postgres"]}, "synapse_requires", "requires[0]"),
    ({"wants": ["bad name.service"]}, "synapse_wants", "wants[0]"),
    ({"after": ["ok.target", "nope"]}, "synapse_after", "after[1]"),
    ({"reload_on_ready": ["-proxy"]}, "synapse_reload_on_ready", "reload_on_ready[0]"),
    ({"container_networks": ["hearth", "hearth"]}, "synapse_container_networks", "networks[1]"),
    ({"stop_timeout": 7200}, "synapse_stop_timeout", "stop_timeout"),
    ({"container_address": "10.89.91.999"}, "synapse_container_address", "address"),
    ({"memory": "16m"}, "synapse_memory", "memory"),
    ({"cpu_shares": 300000}, "synapse_cpu_shares", "cpu_shares"),
    ({"container_hosts": {"hearth-postgres": "db"}}, "synapse_container_hosts", "hosts.hearth-postgres"),
    ({"container_hosts": ["hearth-postgres"]}, "synapse_container_hosts", "hosts"),
])
def test_component_error_names_the_variable(overrides: Dict[str, Any], variable: str, field_name: str) -> None:
    error = build_error(**overrides)
    assert error.variable == variable
    assert str(error).startswith("%s is not valid (%s: " % (variable, field_name)), str(error)


def test_error_in_the_roles_own_spec_names_the_role() -> None:
    spec = dict(SPEC, files=[{"path": "config/homeserver.yaml", "content": ""}])
    error = build_error(spec)
    assert str(error).startswith("synapse role: files[0].path: ")


# --- build_component -----------------------------------------------------------------------

def test_build_component_merges_options_into_the_spec() -> None:
    component = build_component("synapse", variables(
        memory="1g", requires=["hearth-postgres.service"], reload_on_ready=["hearth-nginx-proxy"], manage_networks=False,
        container_ports=[{"host_address": "127.0.0.1", "host_port": 8008, "container_port": 8008}]), SPEC)
    assert component["name"] == "hearth-synapse" and component["state"] == "started"
    assert component["engine"] == "docker" and component["create_networks"] is False
    assert component["requires"] == ["hearth-postgres.service"]
    assert component["reload_on_ready"] == ["hearth-nginx-proxy"]
    assert component["description"] == "Synapse" and component["directories"] == SPEC["directories"]
    container = component["container"]
    assert container["image"] == SYNAPSE["synapse_image"] and container["user"] == "991:991"
    assert container["networks"] == ["hearth"] and container["memory"] == "1g"
    assert (container["pids_limit"], container["stop_timeout"]) == (512, 30)
    assert container["mounts"] == SPEC["container"]["mounts"]
    assert component_from_dict(component).container is not None  # the module accepts it as is


def test_fixed_address_and_hosts_reach_the_container() -> None:
    component = build_component("synapse", variables(
        container_address="10.89.91.139", container_hosts={"hearth-postgres": "10.89.91.138"}), SPEC)
    container = component_from_dict(component).container
    assert container is not None and container.address == "10.89.91.139"
    assert container.hosts == (("hearth-postgres", "10.89.91.138"),)


def test_no_memory_limit_leaves_the_key_out() -> None:
    assert "memory" not in build_component("synapse", variables(memory=""), SPEC)["container"]
    assert "cpu_shares" not in build_component("synapse", variables(cpu_shares=""), SPEC)["container"]


def test_cpu_shares_reach_the_container() -> None:
    container = component_from_dict(build_component("synapse", variables(cpu_shares="2048"), SPEC)).container
    assert container is not None and container.cpu_shares == 2048


def test_build_component_does_not_change_the_spec_it_is_given() -> None:
    spec = {"container": {"mounts": []}}
    build_component("synapse", variables(), spec)
    assert spec == {"container": {"mounts": []}}


def test_disabled_role_gives_an_absent_component() -> None:
    lookup = {"identity_enabled": False, "identity_engine": "podman", "identity_service_name": "hearth-identity"}
    assert build_component("identity", lookup, None) == {"name": "hearth-identity", "state": "absent", "engine": "podman",
                                                         "instance": ""}
    lookup["identity_base_dir"] = "/opt/hearth-matrix/identity"
    assert build_component("identity", lookup, None)["instance"] == "identity@/opt/hearth-matrix/identity"


@pytest.mark.parametrize("key", ["image", "user", "networks", "address", "hosts", "ports", "memory", "cpu_shares",
                                 "pids_limit", "stop_timeout"])
def test_spec_may_not_set_what_the_shared_options_set(key: str) -> None:
    error = build_error({"container": {key: "x"}})
    assert error.variable == "synapse role"
    assert "container.%s" % key in str(error) and "shared options" in str(error)


def test_host_only_component() -> None:
    spec = {"directories": [{"path": "/opt/hearth-matrix", "mode": "0755"}], "networks": ["hearth"]}
    component = build_component("common", {"common_engine": "podman"}, spec)
    assert component == {"name": "hearth-common", "state": "started", "engine": "podman",
                         "directories": spec["directories"], "networks": ["hearth"]}
    assert component_from_dict(component).container is None


def test_host_only_component_name_uses_dashes() -> None:
    assert build_component("shared_files", {"shared_files_engine": "docker"}, {"networks": []})["name"] == \
        "hearth-shared-files"


def test_host_only_component_errors() -> None:
    with pytest.raises(RoleInputError) as info:
        build_component("common", {"common_engine": "lxc"}, {"networks": ["hearth"]})
    assert info.value.variable == "common_engine"
    with pytest.raises(RoleInputError) as info:
        build_component("common", {"common_engine": "docker"}, {"networks": ["-bad"]})
    assert str(info.value).startswith("common role: networks[0]: ")


# --- check_rules ---------------------------------------------------------------------------

def test_check_rules_all_ok() -> None:
    check_rules("synapse", [{"ok": True, "msg": "a"}, {"ok": "True", "msg": "b"}, {"ok": "yes", "msg": "c"}])


def test_check_rules_reports_the_first_failing_message() -> None:
    with pytest.raises(RoleInputError) as info:
        check_rules("synapse", [{"ok": True, "msg": "fine"},
                                {"ok": False, "msg": "  synapse_server_name is required\n"},
                                {"ok": False, "msg": "second failure"}])
    assert str(info.value) == "synapse_server_name is required"
    assert info.value.variable == ""


@pytest.mark.parametrize("ok", [False, "False", "false", "", None, 0])
def test_check_rules_falsy_values_fail(ok: Any) -> None:
    with pytest.raises(RoleInputError) as info:
        check_rules("synapse", [{"ok": ok, "msg": "broken"}])
    assert str(info.value) == "broken"


@pytest.mark.parametrize("checks", [{"ok": False, "msg": "x"}, "ok", None])
def test_check_rules_must_be_a_list(checks: Any) -> None:
    with pytest.raises(RoleInputError) as info:
        check_rules("synapse", checks)
    assert str(info.value).startswith("synapse role: checks must be a list")


@pytest.mark.parametrize("item", [{"ok": False}, "ok", ["ok", "msg"]])
def test_check_rules_item_without_msg(item: Any) -> None:
    with pytest.raises(RoleInputError) as info:
        check_rules("synapse", [item])
    assert str(info.value).startswith("synapse role: each check needs ok and msg")


# --- check_port_clash ----------------------------------------------------------------------

def with_ports(*ports: Any) -> Dict[str, Any]:
    return {"container": {"ports": [{"host_address": address, "host_port": port, "container_port": port,
                                     "protocol": protocol} for address, port, protocol in ports]}}


def planned(role: str, *ports: Any) -> Dict[str, Any]:
    return {"role": role, "component": with_ports(*ports)}


def test_published() -> None:
    component = {"container": {"ports": [{"host_address": "127.0.0.1", "host_port": "8008", "container_port": 8008}]}}
    assert published(component) == [("127.0.0.1", 8008, "tcp")]
    assert published({"name": "no container"}) == []


def test_same_port_on_the_same_address_clashes_naming_both_variables() -> None:
    with pytest.raises(RoleInputError) as info:
        check_port_clash("element", with_ports(("127.0.0.1", 8080, "tcp")),
                         [planned("postgres", ("127.0.0.1", 5432, "tcp")), planned("synapse", ("127.0.0.1", 8080, "tcp"))])
    assert info.value.variable == "element_container_ports"
    assert str(info.value) == ("element_container_ports publishes 127.0.0.1:8080/tcp, which synapse_container_ports "
                               "already publishes")


@pytest.mark.parametrize("mine, theirs", [
    (("0.0.0.0", 8448, "tcp"), ("203.0.113.5", 8448, "tcp")),
    (("203.0.113.5", 8448, "tcp"), ("0.0.0.0", 8448, "tcp")),
    (("::", 8448, "tcp"), ("::1", 8448, "tcp")),
    (("::1", 8448, "udp"), ("::", 8448, "udp")),
])
def test_wildcard_clashes_with_a_specific_address(mine: Any, theirs: Any) -> None:
    with pytest.raises(RoleInputError) as info:
        check_port_clash("nginx_proxy", with_ports(mine), [planned("synapse", theirs)])
    assert "synapse_container_ports" in str(info.value) and str(info.value).startswith("nginx_proxy_container_ports ")


@pytest.mark.parametrize("mine, theirs", [
    (("127.0.0.1", 8448, "tcp"), ("127.0.0.1", 8448, "udp")),
    (("0.0.0.0", 8448, "tcp"), ("0.0.0.0", 8448, "udp")),
    (("127.0.0.1", 8448, "tcp"), ("127.0.0.2", 8448, "tcp")),
    (("127.0.0.1", 8448, "tcp"), ("127.0.0.1", 8449, "tcp")),
])
def test_no_clash(mine: Any, theirs: Any) -> None:
    check_port_clash("nginx_proxy", with_ports(mine), [planned("synapse", theirs)])


def test_no_clash_with_components_without_ports() -> None:
    others: List[Dict[str, Any]] = [{"role": "common", "component": {"name": "hearth-common"}}, {"role": "x"}]
    check_port_clash("synapse", with_ports(("127.0.0.1", 8008, "tcp")), others)
