# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The component model: parsing, defaults, and every error naming its field."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import (
    File,
    Network,
    Ownership,
    SpecError,
    component_from_dict,
    components_from_list,
    secret_ref,
    secret_refs,
)

CONTAINER: Dict[str, Any] = {"image": "localhost/hearth/synapse:test", "user": "991:991", "networks": ["hearth"]}
TLS: Dict[str, Any] = {"ca_dir": "/opt/h/ca", "tls_dir": "/opt/h/tls", "domains": ["matrix.example.org"],
                       "common_name": "matrix.example.org"}
USER: Dict[str, Any] = {"name": "hearth", "uid": 991, "group": "hearth", "gid": 991, "home": "/opt/h"}


def raw(**fields: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {"name": "hearth-synapse", "engine": "docker", "container": dict(CONTAINER)}
    result.update(fields)
    return result


def error_for(component: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        component_from_dict(component)
    return info.value


# --- valid components --------------------------------------------------------------------

def test_minimal_component_gets_defaults() -> None:
    component = component_from_dict(raw())
    assert component.name == "hearth-synapse"
    assert component.state == "started" and component.engine == "docker"
    assert component.image == CONTAINER["image"]
    assert component.container is not None and component.container.user == "991:991"
    assert component.pull is True and component.create_networks is True
    assert component.ready_timeout == 120 and component.restart_sec == 5
    assert (component.directories, component.secrets, component.files, component.links) == ((), (), (), ())
    assert component.tls is None and component.service_user is None


def test_engine_defaults_to_docker_and_podman_is_accepted() -> None:
    assert component_from_dict({"name": "x", "container": dict(CONTAINER)}).engine == "docker"
    assert component_from_dict(raw(engine="podman")).engine == "podman"


def test_files_only_component_has_no_container_and_no_image() -> None:
    component = component_from_dict({
        "name": "hearth-shared-secrets",
        "directories": [{"path": "/opt/h/secrets", "mode": "0700"}],
        "secrets": ["/opt/h/secrets/a",
                    {"path": "/opt/h/secrets/b", "format": "synapse_signing_key", "group": "991", "mode": "0640",
                     "length": 32}],
        "networks": ["hearth"],
    })
    assert component.container is None and component.image == ""
    assert component.directories[0].own == Ownership("root", "root", "0700")
    first, second = component.secrets
    assert (first.path, first.own, first.length, first.format) == ("/opt/h/secrets/a", Ownership("root", "root", "0600"),
                                                                   64, "token")
    assert (second.format, second.own.group, second.own.mode, second.length) == ("synapse_signing_key", "991", "0640", 32)
    assert component.networks == (Network("hearth"),)


def test_full_component() -> None:
    component = component_from_dict(raw(
        description="Synapse",
        pull=False,
        create_networks=False,
        requires=["hearth-postgres.service"],
        wants=["hearth-mailer.service"],
        after=["network-online.target"],
        reload_on_ready=["hearth-nginx-proxy"],
        ready_timeout="30",
        restart_sec=0,
        directories=[{"path": "/opt/h/config", "owner": "root", "group": 991, "mode": "750"}],
        files=[{"path": "/opt/h/config/a.yaml", "content": "a: 1\n", "restart": False},
               {"path": "/opt/h/config/cert.pem", "src": "/etc/ssl/cert.pem", "label": "synapse_tls_cert"}],
        links=[{"path": "/opt/h/config/current", "src": "/opt/h/config/a.yaml"}],
        tls=dict(TLS, domains=["Matrix.Example.org", "example.org", "matrix.example.org"], days=10, ca_days=11),
        service_user=dict(USER, sysusers_dir="/etc/sysusers.d"),
        fingerprint="v2",
    ))
    assert component.description == "Synapse" and component.pull is False and component.create_networks is False
    assert component.requires == ("hearth-postgres.service",) and component.wants == ("hearth-mailer.service",)
    assert component.reload_on_ready == ("hearth-nginx-proxy",)
    assert component.ready_timeout == 30 and component.restart_sec == 0
    # A group given as a number and a three-digit mode are normalised.
    assert component.directories[0].own == Ownership("root", "991", "0750")
    text, copied = component.files
    assert text.restart is False and text.src is None and text.label == "files[0].src"
    assert copied.src == "/etc/ssl/cert.pem" and copied.content is None and copied.label == "synapse_tls_cert"
    assert component.links[0].src == "/opt/h/config/a.yaml"
    assert component.tls is not None
    assert component.tls.domains == ("example.org", "matrix.example.org")  # lower-cased, sorted, unique
    assert (component.tls.days, component.tls.ca_days) == (10, 11)
    assert component.service_user is not None and component.service_user.sysusers_dir == "/etc/sysusers.d"
    assert component.extra_fingerprint == "v2"


def test_absent_component_ignores_the_rest() -> None:
    component = component_from_dict({"name": "hearth-identity", "state": "absent", "engine": "podman",
                                     "container": {"image": "has a space"}, "files": "not even a list"})
    assert (component.name, component.state, component.engine) == ("hearth-identity", "absent", "podman")
    assert component.container is None and component.files == ()


@pytest.mark.parametrize("mode, expected", [(0o640, "0640"), (0o750, "0750"), (0o600, "0600"), (0o2775, "2775")])
def test_mode_given_as_yaml_octal_integer(mode: int, expected: str) -> None:
    """YAML 1.1 reads an unquoted ``mode: 0640`` as the integer 416, which stands for 0640."""
    component = component_from_dict(raw(files=[{"path": "/opt/h/a", "content": "", "mode": mode}]))
    assert component.files[0].own.mode == expected


def test_mode_true_is_refused() -> None:
    assert error_for(raw(files=[{"path": "/opt/h/a", "content": "", "mode": True}])).field == "files[0].mode"


# --- every error names its field -----------------------------------------------------------

@pytest.mark.parametrize("fields, field_name", [
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"state": "running"}, "state"),
    ({"state": "present"}, "state"),
    ({"engine": "lxc"}, "engine"),
    ({"description": 3}, "description"),
    ({"pull": "yes"}, "pull"),
    ({"create_networks": 1}, "create_networks"),
    ({"ready_timeout": 0}, "ready_timeout"),
    ({"restart_sec": -1}, "restart_sec"),
    ({"requires": ["hearth-postgres"]}, "requires[0]"),
    ({"wants": ["ok.service", "bad unit.service"]}, "wants[1]"),
    ({"after": "network.target"}, "after"),
    ({"reload_on_ready": ["hearth-proxy", "-bad"]}, "reload_on_ready[1]"),
    ({"container": "hearth"}, "container"),
    ({"directories": [{"path": "opt/h"}]}, "directories[0].path"),
    ({"directories": [{"path": "/opt/h/"}]}, "directories[0].path"),
    ({"directories": [{"path": "/opt/h/../etc"}]}, "directories[0].path"),
    ({"directories": [{"path": "/"}]}, "directories[0].path"),
    ({"directories": ["/opt/h"]}, "directories[0]"),
    ({"directories": [{"path": "/opt/h", "mode": "0999"}]}, "directories[0].mode"),
    ({"directories": [{"path": "/opt/h", "mode": "rwx"}]}, "directories[0].mode"),
    ({"directories": [{"path": "/opt/h", "owner": "Root"}]}, "directories[0].owner"),
    ({"directories": [{"path": "/opt/h", "group": "a b"}]}, "directories[0].group"),
    ({"secrets": ["relative/secret"]}, "secrets[0].path"),
    ({"secrets": [{"path": "/opt/h/s", "format": "rsa"}]}, "secrets[0].format"),
    ({"secrets": [{"path": "/opt/h/s", "length": 8}]}, "secrets[0].length"),
    ({"secrets": [{"path": "/opt/h/s", "length": "long"}]}, "secrets[0].length"),
    ({"secrets": [{"path": "/opt/h/s", "mode": "600x"}]}, "secrets[0].mode"),
    ({"files": [{"path": "/opt/h/a"}]}, "files[0]"),
    ({"files": [{"path": "/opt/h/a", "content": "x", "src": "/etc/x"}]}, "files[0]"),
    ({"files": [{"path": "/opt/h/a", "content": 5}]}, "files[0].content"),
    ({"files": [{"path": "a", "content": "x"}]}, "files[0].path"),
    ({"files": [{"path": "/opt/h/a", "src": "etc/x"}]}, "files[0].src"),
    ({"files": [{"path": "/opt/h/a", "content": "x", "restart": "no"}]}, "files[0].restart"),
    ({"files": [{"path": "/opt/h/a", "content": "x", "secret": None}]}, "files[0].secret"),
    ({"files": [{"path": "/opt/h/a", "content": "x", "owner": "-x"}]}, "files[0].owner"),
    ({"links": [{"path": "/opt/h/l"}]}, "links[0].src"),
    ({"links": [{"path": "l", "src": "/opt/h/a"}]}, "links[0].path"),
    ({"tls": dict(TLS, domains=[])}, "tls.domains"),
    ({"tls": dict(TLS, domains="matrix.example.org")}, "tls.domains"),
    ({"tls": dict(TLS, domains=["a", ""])}, "tls.domains"),
    ({"tls": dict(TLS, days=825, ca_days=825)}, "tls.ca_days"),
    ({"tls": dict(TLS, days=3650)}, "tls.ca_days"),
    ({"tls": dict(TLS, days=0)}, "tls.days"),
    ({"tls": dict(TLS, ca_dir="ca")}, "tls.ca_dir"),
    ({"tls": dict(TLS, tls_dir=None)}, "tls.tls_dir"),
    ({"tls": dict(TLS, common_name="")}, "tls.common_name"),
    ({"tls": ["matrix.example.org"]}, "tls"),
    ({"service_user": dict(USER, name="Hearth")}, "service_user.name"),
    ({"service_user": dict(USER, group="x" * 33)}, "service_user.group"),
    ({"service_user": dict(USER, uid=0)}, "service_user.uid"),
    ({"service_user": {k: v for k, v in USER.items() if k != "gid"}}, "service_user.gid"),
    ({"service_user": dict(USER, home="home")}, "service_user.home"),
    ({"service_user": dict(USER, sysusers_dir="sysusers.d")}, "service_user.sysusers_dir"),
    ({"networks": ["hearth", "-bad"]}, "networks[1]"),
    ({"networks": [5]}, "networks[0]"),
    ({"networks": "hearth"}, "networks"),
    ({"networks": [{"name": "hearth", "subnet": "10.89.91.0/26"}]}, "networks[0].subnet"),
    ({"networks": [{"name": "hearth", "subnet": "10.89.91.1/24"}]}, "networks[0].subnet"),
    ({"networks": [{"name": "hearth", "subnet": "fd00::/64"}]}, "networks[0].subnet"),
    ({"networks": [{"name": "hearth", "gateway": "10.89.91.1"}]}, "networks[0]"),
    ({"fingerprint": 1}, "fingerprint"),
])
def test_error_names_the_field(fields: Dict[str, Any], field_name: str) -> None:
    error = error_for(raw(**fields))
    assert error.field == field_name
    assert str(error).startswith(field_name + ": ")


def test_not_a_mapping() -> None:
    assert error_for(["hearth-synapse"]).field == "component"


def test_container_errors_keep_the_container_field_name() -> None:
    assert error_for(raw(container=dict(CONTAINER, image="a b"))).field == "image"


@pytest.mark.parametrize("fields, field_name, other", [
    ({"directories": [{"path": "/opt/h/a"}], "files": [{"path": "/opt/h/a", "content": ""}]}, "files", "directories"),
    ({"secrets": ["/opt/h/a", "/opt/h/a"]}, "secrets", "secrets"),
    ({"files": [{"path": "/opt/h/a", "content": ""}], "links": [{"path": "/opt/h/a", "src": "/opt/h/b"}]},
     "links", "files"),
])
def test_a_path_declared_twice(fields: Dict[str, Any], field_name: str, other: str) -> None:
    error = error_for(raw(**fields))
    assert error.field == field_name
    assert "/opt/h/a is declared twice" in str(error) and "also in %s" % other in str(error)


# --- several components --------------------------------------------------------------------

def test_components_from_list_keeps_order() -> None:
    components = components_from_list([raw(), {"name": "hearth-identity", "state": "absent"}, {"name": "hearth-files"}])
    assert [c.name for c in components] == ["hearth-synapse", "hearth-identity", "hearth-files"]


def test_duplicate_service_names() -> None:
    with pytest.raises(SpecError) as info:
        components_from_list([raw(), {"name": "hearth-synapse", "state": "absent"}])
    assert info.value.field == "components" and "hearth-synapse is listed twice" in str(info.value)


def test_components_must_be_a_list() -> None:
    with pytest.raises(SpecError) as info:
        components_from_list({"name": "hearth-synapse"})
    assert info.value.field == "components"


def test_error_in_a_later_component_names_its_field() -> None:
    with pytest.raises(SpecError) as info:
        components_from_list([raw(), {"name": "hearth-b", "files": [{"path": "/x"}]}])
    assert info.value.field == "files[0]"


# --- secret references ---------------------------------------------------------------------

def test_secret_ref_round_trip() -> None:
    text = "password: %s\nagain: %s\nother: %s\n" % (secret_ref("/opt/h/secrets/db"), secret_ref("/opt/h/secrets/db"),
                                                     secret_ref("/opt/h/secrets/registration"))
    assert secret_ref("/opt/h/secrets/db") == "@@hearth-secret:/opt/h/secrets/db@@"
    assert secret_refs(text) == ["/opt/h/secrets/db", "/opt/h/secrets/registration"]
    assert secret_refs("no secrets here, @@hearth-secret:relative@@") == []


@pytest.mark.parametrize("path", ["/with space", "/with@at", None, 5, "/tab\there", "/new\nline"])
def test_secret_ref_refuses_what_would_break_the_marker(path: Any) -> None:
    with pytest.raises(SpecError) as info:
        secret_ref(path)
    assert info.value.field == "secret_ref"


@pytest.mark.parametrize("path", ["relative/path", ""])
def test_secret_ref_leaves_relative_paths_to_the_role_and_the_module(path: str) -> None:
    """A marker with a relative path is made, but never matches: the module refuses the file."""
    marker = secret_ref(path)
    assert marker == "@@hearth-secret:%s@@" % path
    assert secret_refs("x: %s" % marker) == []


@pytest.mark.parametrize("item, hidden", [
    (File("/a", Ownership(), content="plain"), False),
    (File("/a", Ownership(), content=""), False),
    (File("/a", Ownership(), content="x: @@hearth-secret:/opt/s@@"), True),
    (File("/a", Ownership(), content="plain", secret=True), True),
    (File("/a", Ownership(), src="/etc/key.pem"), True),
])
def test_file_hidden(item: File, hidden: bool) -> None:
    assert item.hidden is hidden
