# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret_ref and publish filters: results, and AnsibleFilterError on bad input."""

from __future__ import annotations

from typing import Any

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hearth.matrix.plugins.filter.component_filters import FilterModule, publish, secret_ref
from ansible_collections.hearth.matrix.plugins.module_utils.component import SECRET_REF_RE, component_from_dict, secret_refs


def test_filter_module_exposes_both_filters() -> None:
    assert FilterModule().filters() == {"secret_ref": secret_ref, "publish": publish}


def test_secret_ref_marker() -> None:
    marker = secret_ref("/opt/hearth-matrix/secrets/registration_shared_secret")
    assert marker == "@@hearth-secret:/opt/hearth-matrix/secrets/registration_shared_secret@@"
    assert SECRET_REF_RE.fullmatch(marker)
    assert secret_refs("secret: %s\n" % marker) == ["/opt/hearth-matrix/secrets/registration_shared_secret"]


@pytest.mark.parametrize("path", ["/with space", "/a@b", None, ["/x"]])
def test_secret_ref_bad_path(path: Any) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        secret_ref(path)
    assert str(info.value).startswith("hearth.matrix.secret_ref: needs a path")
    assert repr(path) in str(info.value)


def test_secret_ref_relative_path_gives_a_marker_the_module_refuses() -> None:
    assert secret_ref("secrets/x") == "@@hearth-secret:secrets/x@@"
    assert secret_refs(secret_ref("secrets/x")) == []


def test_publish_every_address_and_pair() -> None:
    assert publish(["127.0.0.1", "::1"], [[8008, 8008], (8448, 8448)]) == [
        {"host_address": "127.0.0.1", "host_port": 8008, "container_port": 8008, "protocol": "tcp"},
        {"host_address": "127.0.0.1", "host_port": 8448, "container_port": 8448, "protocol": "tcp"},
        {"host_address": "::1", "host_port": 8008, "container_port": 8008, "protocol": "tcp"},
        {"host_address": "::1", "host_port": 8448, "container_port": 8448, "protocol": "tcp"},
    ]


def test_publish_protocol_and_empty_input() -> None:
    assert publish(["0.0.0.0"], [[3478, 3478]], "udp") == [
        {"host_address": "0.0.0.0", "host_port": 3478, "container_port": 3478, "protocol": "udp"}]
    assert publish([], [[1, 1]]) == [] and publish(["127.0.0.1"], []) == []


def test_publish_result_is_a_valid_port_list() -> None:
    ports = publish(["127.0.0.1", "::1"], [[8008, 8008]])
    component = component_from_dict({"name": "hearth-synapse", "container": {
        "image": "x/y:1", "user": "991:991", "networks": ["hearth"], "ports": ports}})
    assert component.container is not None and len(component.container.ports) == 2


@pytest.mark.parametrize("addresses", ["127.0.0.1", None, 5, {"127.0.0.1": True}])
def test_publish_addresses_must_be_a_list(addresses: Any) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        publish(addresses, [[8008, 8008]])
    assert str(info.value).startswith("hearth.matrix.publish: the input must be a list of addresses")


@pytest.mark.parametrize("pairs", [["8008:8008"], [[8008]], [[1, 2, 3]], [8008], "8008:8008"])
def test_publish_bad_pair(pairs: Any) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        publish(["127.0.0.1"], pairs)
    assert str(info.value).startswith("hearth.matrix.publish: each pair must be [host_port, container_port]")


@pytest.mark.parametrize("pairs", [None, 8008])
def test_publish_pairs_that_are_not_a_list_give_a_filter_error(pairs: Any) -> None:
    """Not a TypeError from deep inside the filter: Ansible shows a filter error with its message."""
    with pytest.raises(AnsibleFilterError) as info:
        publish(["127.0.0.1"], pairs)
    assert str(info.value).startswith("hearth.matrix.publish: ")
