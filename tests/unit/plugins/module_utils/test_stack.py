# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user's stack variables: defaults, checks, and errors that name hearth_* variables."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.stack import (
    OPTIONS,
    StackVariableError,
    check_stack,
    stack_input,
    user_variable,
)
from ansible_collections.hearth.matrix.plugins.module_utils.topology import TopologyError, compute_topology

BASE: Dict[str, Any] = {"server_name": "example.org"}
DB = {"host": "db.example.org", "name": "synapse", "user": "synapse"}


def error_for(**overrides: Any) -> str:
    with pytest.raises(StackVariableError) as info:
        check_stack(dict(BASE, **overrides))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(info.value.variable + " ")
    return message


def test_defaults_give_the_base_stack() -> None:
    topology = check_stack(BASE)
    assert [name for name, on in topology["enabled"].items() if on] == ["postgres", "synapse", "nginx_proxy"]
    assert topology["matrix_hostname"] == "matrix.example.org"
    assert topology["network"] == "hearth"
    assert topology["synapse"]["identity_server"] == "https://vector.im"


def test_the_result_is_the_topology_of_the_translated_input() -> None:
    variables = dict(BASE, mailer_enabled="true", element_enabled="no", mailer_sender="ops@example.org")
    assert check_stack(variables) == compute_topology(stack_input(variables))
    assert check_stack(variables)["mailer"]["sender"] == "ops@example.org"


@pytest.mark.parametrize("text, expected", [("yes", True), ("True", True), ("on", True), ("1", True),
                                            ("no", False), ("FALSE", False), ("off", False), ("0", False)])
def test_flags_accept_ansible_text_spellings(text: str, expected: bool) -> None:
    assert check_stack(dict(BASE, mailer_enabled=text))["enabled"]["mailer"] is expected


@pytest.mark.parametrize("overrides, message", [
    ({"server_name": None}, "hearth_server_name is required: the Matrix server name, e.g. example.org"),
    ({"server_name": ""}, "hearth_server_name is required: the Matrix server name, e.g. example.org"),
    ({"server_name": 42}, "hearth_server_name must be a string, got 42"),
    ({"server_name": "not a domain!"}, "hearth_server_name must be a DNS name like matrix.example.org, got 'not a domain!'"),
    ({"matrix_hostname": "under_score.example"}, "hearth_matrix_hostname must be a DNS name"),
    ({"element_hostname": "Bad Host"}, "hearth_element_hostname must be a DNS name"),
    ({"element_enabled": True, "element_hostname": "matrix.example.org"},
     "hearth_element_hostname must differ from hearth_matrix_hostname, got 'matrix.example.org'"),
    ({"engine": "lxc"}, "hearth_engine must be one of docker, podman, podman_rootless, docker_rootless, got 'lxc'"),
    ({"base_dir": "opt/hearth"}, "hearth_base_dir must be an absolute path, got 'opt/hearth'"),
    ({"postgres_enabled": "maybe"}, "hearth_postgres_enabled must be true or false, got 'maybe'"),
    ({"element_enabled": 3}, "hearth_element_enabled must be true or false, got 3"),
    ({"mailer_enabled": True, "mailer_sender": "not-an-email"},
     "hearth_mailer_sender must be an email address, got 'not-an-email'"),
    ({"public_identity_server": "ftp://id.example.org"},
     "hearth_public_identity_server must be an http(s) URL or empty, got 'ftp://id.example.org'"),
    ({"public_identity_server": ["https://a"]}, "hearth_public_identity_server must be a string URL or empty"),
    ({"postgres_enabled": False}, "hearth_external_database_password is required when hearth_postgres_enabled is false"),
    ({"postgres_enabled": False, "external_database_password": "pw"},
     "hearth_external_database is required when hearth_postgres_enabled is false"),
    ({"postgres_enabled": False, "external_database_password": "pw", "external_database": {"name": "s", "user": "s"}},
     "hearth_external_database.host is required when hearth_postgres_enabled is false"),
    ({"postgres_enabled": False, "external_database_password": "pw", "external_database": dict(DB, port=70000)},
     "hearth_external_database.port must be a port number (1-65535), got 70000"),
    ({"synapse_enabled": False, "postgres_enabled": False, "nginx_proxy_enabled": False, "corporal_enabled": True},
     "hearth_corporal_enabled is true but hearth_synapse_enabled is false"),
    ({"corporal_enabled": True, "nginx_proxy_enabled": False}, "hearth_corporal_enabled needs hearth_nginx_proxy_enabled"),
    ({"images": ["localhost/hearth/synapse:test"]}, "hearth_images must map component names to image references"),
    ({"images": {"synaps": "localhost/x:1"}}, "hearth_images.synaps is not a component"),
    ({"images": {"synapse": "Not An Image!"}}, "hearth_images.synapse must be an image reference"),
    ({"images": {"synapse": 7}}, "hearth_images.synapse must be an image reference"),
    ({"network_subnet": "10.89.91.0/26"}, "hearth_network_subnet must be an IPv4 subnet of at least 128 addresses"),
    ({"network_subnet": "10.89.91.7/24"}, "hearth_network_subnet must be an IPv4 subnet"),
    ({"network_subnet": "fd00::/64"}, "hearth_network_subnet must be an IPv4 subnet"),
    ({"network_subnet": 24}, "hearth_network_subnet must be an IPv4 subnet"),
    ({"extra_hosts": ["b.example.net"]}, "hearth_extra_hosts must map host names to IPv4 addresses"),
    ({"extra_hosts": {"Bad Name": "192.0.2.1"}}, "hearth_extra_hosts.Bad Name must be a DNS name"),
    ({"extra_hosts": {"b.example.net": "192.0.2.300"}},
     "hearth_extra_hosts.b.example.net must be an IPv4 address, got '192.0.2.300'"),
    ({"extra_hosts": {"b.example.net": 7}}, "hearth_extra_hosts.b.example.net must be an IPv4 address, got 7"),
    ({"extra_hosts": {"hearth-synapse": "192.0.2.1"}},
     "hearth_extra_hosts.hearth-synapse is the name of a component of the stack"),
])
def test_errors_name_the_users_variable(overrides: Dict[str, Any], message: str) -> None:
    assert error_for(**overrides).startswith(message)


def test_image_references_that_are_fine() -> None:
    images = {"synapse": "ghcr.io/element-hq/synapse:v1.163.2", "postgres": "localhost:5000/pg@sha256:" + "a" * 64,
              "nginx_proxy": "nginx"}
    assert check_stack(dict(BASE, images=images))["enabled"]["synapse"]


def test_a_value_with_braces_is_not_read_as_a_template() -> None:
    assert error_for(mailer_sender="{0}") == "hearth_mailer_sender must be an email address, got '{0}'"


def test_unknown_option_is_named() -> None:
    with pytest.raises(StackVariableError, match="^hearth_server_name is not an option"):
        check_stack({"hearth_server_name": "example.org"})


@pytest.mark.parametrize("field_name, variable", [
    ("server_name", "hearth_server_name"),
    ("matrix_hostname", "hearth_matrix_hostname"),
    ("element_hostname", "hearth_element_hostname"),
    ("public_identity_server", "hearth_public_identity_server"),
    ("mailer.sender", "hearth_mailer_sender"),
    ("mailer", "hearth_mailer_sender"),
    ("components.corporal", "hearth_corporal_enabled"),
    ("external_database", "hearth_external_database"),
    ("external_database.port", "hearth_external_database.port"),
    ("network", "network"),
    ("services.bot", "services.bot"),
])
def test_user_variable_maps_topology_fields(field_name: str, variable: str) -> None:
    assert user_variable(field_name) == variable


def test_every_option_is_a_variable_the_topology_names() -> None:
    # Each option X is the variable hearth_X: the field of the same name maps back to it.
    for option in OPTIONS:
        if option.endswith("_enabled"):
            assert user_variable("components." + option[:-len("_enabled")]) == "hearth_" + option
        elif option != "mailer_sender":
            assert user_variable(option) == "hearth_" + option


def test_render_keeps_the_internal_names_for_other_callers() -> None:
    error = TopologyError("components.corporal", "needs {0}: reason", refs=["components.nginx_proxy"], got=1)
    assert str(error) == "components.corporal: needs components.nginx_proxy: reason, got 1"
    assert error.render(user_variable) == "hearth_corporal_enabled needs hearth_nginx_proxy_enabled: reason, got 1"
