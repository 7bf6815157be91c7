# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container model: validation (each error names its field) and docker/podman argv."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    ContainerSpec,
    SpecError,
    check_port_clashes,
    check_unique_names,
    container_spec_from_dict,
    create_argv,
    mac_for,
    shell_join,
    size_in_bytes,
)

BASE: Dict[str, Any] = {"image": "localhost/hearth/synapse:test", "user": "991:991"}


def make(name: str = "hearth-synapse", **fields: Any) -> ContainerSpec:
    raw = dict(BASE)
    raw.update(fields)
    return container_spec_from_dict(name, raw)


def error_for(name: str = "hearth-synapse", **fields: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        make(name, **fields)
    return info.value


# --- hardened defaults --------------------------------------------------------------------

def test_minimal_spec_gets_hardened_defaults() -> None:
    spec = make()
    assert spec.user == "991:991"
    assert spec.cap_add == ()
    assert spec.read_only is True
    assert spec.root_reason is None
    assert spec.stop_timeout == 30


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_argv_always_drops_capabilities_and_privileges(engine: str) -> None:
    argv = create_argv(make(), engine, "/usr/bin/" + engine)
    assert argv[:4] == ["/usr/bin/" + engine, "create", "--name=hearth-synapse", "--user=991:991"]
    for flag in ("--cap-drop=ALL", "--security-opt=no-new-privileges", "--read-only", "--log-driver=none"):
        assert flag in argv
    assert not any(arg.startswith("--cap-add") for arg in argv)
    assert argv[-1] == BASE["image"]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_full_argv_for_both_engines(engine: str) -> None:
    spec = make(
        networks=["hearth", "hearth-federation"],
        tmpfs=["/tmp", {"path": "/run", "size": "16m", "mode": "1777"}],
        mounts=[{"source": "/opt/hearth/config", "target": "/config"},
                {"source": "/opt/hearth/data/", "target": "/data", "read_only": False}],
        ports=[{"host_address": "127.0.0.1", "host_port": 8008, "container_port": 8008},
               {"host_address": "::1", "host_port": "8448", "container_port": 8448, "protocol": "udp"}],
        env_file="/opt/hearth/env",
        env={"SYNAPSE_CONFIG_PATH": "/config/homeserver.yaml", "DEBUG": False, "WORKERS": 2},
        labels={"org.hearth.component": "synapse"},
        sysctls={"net.ipv4.tcp_tw_reuse": 1, "kernel.shmmax": "68719476736"},
        healthcheck={"command": ["curl", "-f", "http://localhost:8008/health"], "start_period": 5},
        memory="512m",
        pids_limit=256,
        stop_timeout=20,
        workdir="/data",
        entrypoint="/usr/local/bin/start",
        command=["--config", "/config/homeserver.yaml"],
    )
    path = "/usr/bin/" + engine
    assert create_argv(spec, engine, path) == [
        path, "create", "--name=hearth-synapse", "--user=991:991",
        "--cap-drop=ALL", "--security-opt=no-new-privileges", "--read-only", "--log-driver=none",
        "--network=hearth",
        "--tmpfs=/tmp:rw,noexec,nosuid,nodev",
        "--tmpfs=/run:rw,noexec,nosuid,nodev,size=16m,mode=1777",
        "--mount=type=bind,src=/opt/hearth/config,dst=/config,readonly",
        "--mount=type=bind,src=/opt/hearth/data,dst=/data",
        "--publish=127.0.0.1:8008:8008/tcp",
        "--publish=[::1]:8448:8448/udp",
        "--env-file=/opt/hearth/env",
        "--env=DEBUG=false", "--env=SYNAPSE_CONFIG_PATH=/config/homeserver.yaml", "--env=WORKERS=2",
        "--label=org.hearth.component=synapse",
        "--sysctl=kernel.shmmax=68719476736", "--sysctl=net.ipv4.tcp_tw_reuse=1",
        "--health-cmd=curl -f http://localhost:8008/health",
        "--health-interval=10s", "--health-timeout=5s", "--health-retries=3", "--health-start-period=5s",
        "--memory=512m", "--pids-limit=256", "--stop-timeout=20",
        "--workdir=/data", "--entrypoint=/usr/local/bin/start",
        BASE["image"], "--config", "/config/homeserver.yaml",
    ]
    # Extra networks are joined by `network connect` in the unit, not at create time.
    assert spec.primary_network == "hearth"
    assert spec.extra_networks == ("hearth-federation",)


def test_writable_root_only_when_asked() -> None:
    assert "--read-only" not in create_argv(make(read_only=False), "docker", "/usr/bin/docker")


def test_root_with_reason_and_capabilities() -> None:
    spec = make(user="0:0", root_reason="binds port 25 before dropping privileges", cap_add=["net_bind_service", "CAP_SETUID"])
    assert spec.cap_add == ("CAP_NET_BIND_SERVICE", "CAP_SETUID")
    argv = create_argv(spec, "podman", "/usr/bin/podman")
    assert argv.index("--cap-drop=ALL") < argv.index("--cap-add=CAP_NET_BIND_SERVICE")
    assert "--cap-add=CAP_SETUID" in argv and "--user=0:0" in argv


def test_user_as_integer_and_names_are_accepted() -> None:
    assert make(user=991).user == "991"
    assert make(user="synapse:synapse").user == "synapse:synapse"


def test_healthcheck_argv_is_shell_quoted() -> None:
    spec = make(healthcheck={"command": ["python3", "-c", "import sys; sys.exit(0)"]})
    argv = create_argv(spec, "docker", "/usr/bin/docker")
    assert "--health-cmd=python3 -c 'import sys; sys.exit(0)'" in argv
    assert shell_join(["a b", "it's"]) == "'a b' 'it'\"'\"'s'"


# --- validation: each error names the offending field ---------------------------------------

@pytest.mark.parametrize(
    "fields, field_name, fragment",
    [
        ({"user": "0"}, "user", "root_reason"),
        ({"user": "root"}, "user", "root_reason"),
        ({"user": "0:991"}, "user", "root_reason"),
        ({"user": 0}, "user", "root_reason"),
        ({"user": "root:root", "root_reason": "   "}, "root_reason", "empty"),
        ({"user": None}, "user", "must be a string"),
        ({"user": "991:991:991"}, "user", "uid[:gid]"),
        ({"user": "Bad User"}, "user", "uid[:gid]"),
        ({"cap_add": ["CAP_NET_BIND_SERVICE"]}, "cap_add", "root_reason"),
        ({"cap_add": ["CAP_FLY"], "root_reason": "x"}, "cap_add[0]", "unknown capability"),
        ({"cap_add": ["chown", "CAP_CHOWN"], "root_reason": "x"}, "cap_add[1]", "duplicate"),
        ({"cap_add": "CAP_CHOWN", "root_reason": "x"}, "cap_add", "must be a list"),
        ({"image": ""}, "image", "empty"),
        ({"image": "a b"}, "image", "whitespace"),
        ({"image": 42}, "image", "must be a string"),
        ({"read_only": "yes"}, "read_only", "boolean"),
        ({"mounts": [{"source": "data", "target": "/data"}]}, "mounts[0].source", "absolute"),
        ({"mounts": [{"source": "/srv/data", "target": "data"}]}, "mounts[0].target", "absolute"),
        ({"mounts": [{"source": "/srv/../etc", "target": "/data"}]}, "mounts[0].source", ".."),
        ({"mounts": [{"source": "/srv/a,b", "target": "/data"}]}, "mounts[0].source", "','"),
        ({"mounts": [{"source": "/srv", "target": "/data", "rw": True}]}, "mounts[0]", "unknown keys: rw"),
        ({"mounts": ["/srv:/data"]}, "mounts[0]", "mapping"),
        ({"mounts": [{"source": "/srv", "target": "/data", "read_only": "no"}]}, "mounts[0].read_only", "boolean"),
        ({"mounts": [{"source": "/a", "target": "/data"}, {"source": "/b", "target": "/data/media"}]},
         "mounts[1].target", "overlaps mounts[0].target"),
        ({"mounts": [{"source": "/a", "target": "/data/"}, {"source": "/b", "target": "/data"}]},
         "mounts[1].target", "overlaps"),
        ({"mounts": [{"source": "/a", "target": "/tmp/x"}], "tmpfs": ["/tmp"]}, "tmpfs[0].path", "overlaps mounts[0].target"),
        ({"mounts": [{"source": "/a", "target": "/"}]}, "mounts[0].target", "root"),
        ({"tmpfs": ["tmp"]}, "tmpfs[0].path", "absolute"),
        ({"tmpfs": [{"path": "/tmp", "size": "lots"}]}, "tmpfs[0].size", "64m"),
        ({"tmpfs": [{"path": "/tmp", "mode": "777x"}]}, "tmpfs[0].mode", "octal"),
        ({"tmpfs": [{"path": "/tmp", "uid": 1}]}, "tmpfs[0]", "unknown keys: uid"),
        ({"tmpfs": [7]}, "tmpfs[0]", "path or a mapping"),
        ({"ports": [{"host_port": 80, "container_port": 8080}]}, "ports[0].host_address", "explicit address"),
        ({"ports": [{"host_address": "", "host_port": 80, "container_port": 8080}]}, "ports[0].host_address", "required"),
        ({"ports": [{"host_address": "localhost", "host_port": 80, "container_port": 8080}]}, "ports[0].host_address", "IP address"),
        ({"ports": [{"host_address": "300.1.1.1", "host_port": 80, "container_port": 8080}]}, "ports[0].host_address", "IP address"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 0, "container_port": 8080}]}, "ports[0].host_port", "between 1 and 65535"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 70000, "container_port": 8080}]}, "ports[0].host_port", "between"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": True, "container_port": 8080}]}, "ports[0].host_port", "integer"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 80, "container_port": "http"}]}, "ports[0].container_port", "integer"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 80, "container_port": 80, "protocol": "sctp"}]},
         "ports[0].protocol", "tcp or udp"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 80, "container_port": 80, "ip": "x"}]}, "ports[0]", "unknown keys: ip"),
        ({"ports": [{"host_address": "127.0.0.1", "host_port": 443, "container_port": 8443},
                    {"host_address": "127.0.0.1", "host_port": 443, "container_port": 9443}]},
         "ports[1].host_port", "clashes with ports[0]"),
        ({"ports": [{"host_address": "0.0.0.0", "host_port": 443, "container_port": 8443},
                    {"host_address": "127.0.0.1", "host_port": 443, "container_port": 9443}]},
         "ports[1].host_port", "clashes"),
        ({"ports": {"host_address": "127.0.0.1"}}, "ports", "must be a list"),
        ({"networks": ["hearth", "hearth"]}, "networks[1]", "duplicate network"),
        ({"networks": ["bad name"]}, "networks[0]", "invalid network"),
        ({"networks": [3]}, "networks[0]", "must be a string"),
        ({"env_file": "relative/env"}, "env_file", "absolute"),
        ({"env": {"1BAD": "x"}}, "env", "invalid key"),
        ({"env": {"A": "line\nbreak"}}, "env.A", "newlines"),
        ({"env": {"A": ["list"]}}, "env.A", "scalar"),
        ({"env": ["A=1"]}, "env", "must be a mapping"),
        ({"labels": {"-bad": "x"}}, "labels", "invalid key"),
        # A host-wide sysctl (vm.*, kernel.* outside IPC) is refused, not passed on.
        ({"sysctls": {"vm.overcommit_memory": 1}}, "sysctls", "invalid key"),
        ({"sysctls": {"kernel.panic": 1}}, "sysctls", "invalid key"),
        ({"sysctls": {"net.ipv4.tcp_tw_reuse": [1]}}, "sysctls.net.ipv4.tcp_tw_reuse", "scalar"),
        ({"sysctls": ["net.ipv4.tcp_tw_reuse=1"]}, "sysctls", "must be a mapping"),
        ({"healthcheck": {"command": []}}, "healthcheck.command", "non-empty"),
        ({"healthcheck": {"command": "pg_isready"}}, "healthcheck.command", "must be a list"),
        ({"healthcheck": {"command": ["true"], "every": 3}}, "healthcheck", "unknown keys: every"),
        ({"healthcheck": {"command": ["true"], "interval": 0}}, "healthcheck.interval", ">= 1"),
        ({"healthcheck": "true"}, "healthcheck", "mapping"),
        ({"memory": "lots"}, "memory", "512m"),
        ({"pids_limit": 0}, "pids_limit", ">= 1"),
        ({"memory": "31m"}, "memory", "at least 32m"),
        ({"memory": "1024k"}, "memory", "at least 32m"),
        ({"memory": "4096"}, "memory", "at least 32m"),
        ({"cpu_shares": 1}, "cpu_shares", "between 2 and 262144"),
        ({"cpu_shares": 262145}, "cpu_shares", "between 2 and 262144"),
        ({"cpu_shares": "much"}, "cpu_shares", "integer"),
        ({"stop_timeout": 0}, "stop_timeout", "between 1 and 3600"),
        ({"stop_timeout": "soon"}, "stop_timeout", "integer"),
        ({"command": "serve"}, "command", "must be a list"),
        ({"command": ["serve", 1]}, "command[1]", "must be a string"),
        ({"entrypoint": ""}, "entrypoint", "empty"),
        ({"workdir": "data"}, "workdir", "absolute"),
        ({"privileged": True}, "container", "unknown fields: privileged"),
        ({"networks": ["hearth"], "address": "10.89.91.300"}, "address", "IPv4 address"),
        ({"networks": ["hearth"], "address": "fd00::1"}, "address", "IPv4 address"),
        ({"address": "10.89.91.139"}, "address", "needs a network"),
        ({"hosts": ["hearth-synapse"]}, "hosts", "must map host names"),
        ({"hosts": {"-bad": "10.89.91.139"}}, "hosts", "invalid host name"),
        ({"hosts": {"hearth-synapse": ""}}, "hosts.hearth-synapse", "IPv4 address"),
        ({"hosts": {"hearth-synapse": "synapse"}}, "hosts.hearth-synapse", "IPv4 address"),
    ],
)
def test_invalid_specs_name_the_field(fields: Dict[str, Any], field_name: str, fragment: str) -> None:
    error = error_for(**fields)
    assert error.field == field_name
    assert fragment in error.message
    assert str(error).startswith(field_name + ": ")


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "x" * 129, None])
def test_invalid_container_name(name: Any) -> None:
    assert error_for(name=name).field == "name"


def test_spec_must_be_a_mapping() -> None:
    with pytest.raises(SpecError) as info:
        container_spec_from_dict("hearth-synapse", ["image"])  # type: ignore[arg-type]
    assert info.value.field == "container"


def test_uid_zero_spelled_with_leading_zeros_is_still_root() -> None:
    # The engines parse "00" as the number 0: that is root, and needs a reason like "0".
    assert error_for(user="00:991").field == "user"


def test_ports_on_different_addresses_do_not_clash() -> None:
    spec = make(ports=[{"host_address": "127.0.0.1", "host_port": 80, "container_port": 8080},
                       {"host_address": "127.0.0.2", "host_port": 80, "container_port": 8080},
                       {"host_address": "127.0.0.1", "host_port": 80, "container_port": 8080, "protocol": "udp"}])
    assert len(spec.ports) == 3


@pytest.mark.parametrize("engine, path, field_name", [("rkt", "/usr/bin/rkt", "engine"), ("docker", "docker", "engine_path")])
def test_create_argv_rejects_bad_engine(engine: str, path: str, field_name: str) -> None:
    with pytest.raises(SpecError) as info:
        create_argv(make(), engine, path)
    assert info.value.field == field_name


# --- checks across several containers --------------------------------------------------------

def test_duplicate_container_names() -> None:
    specs = [make("hearth-synapse"), make("hearth-postgres"), make("hearth-synapse")]
    with pytest.raises(SpecError) as info:
        check_unique_names(specs)
    assert info.value.field == "containers[2].name"
    assert "duplicate container name 'hearth-synapse'" in info.value.message
    check_unique_names(specs[:2])


def _publishing(name: str, address: str, port: int = 443) -> ContainerSpec:
    return make(name, ports=[{"host_address": address, "host_port": port, "container_port": 8443}])


def test_port_clash_between_containers() -> None:
    with pytest.raises(SpecError) as info:
        check_port_clashes([_publishing("a", "127.0.0.1"), _publishing("b", "127.0.0.1")])
    assert info.value.field == "b.ports"
    assert "already published by a" in info.value.message


def test_port_clash_with_wildcard_address() -> None:
    with pytest.raises(SpecError):
        check_port_clashes([_publishing("a", "127.0.0.1"), _publishing("b", "0.0.0.0")])


def test_port_clash_is_found_whatever_came_in_between() -> None:
    # a and c clash on 127.0.0.1:443; b on another address must not hide that.
    specs = [_publishing("a", "127.0.0.1"), _publishing("b", "127.0.0.2"), _publishing("c", "127.0.0.1")]
    with pytest.raises(SpecError) as info:
        check_port_clashes(specs)
    assert info.value.field == "c.ports"


def test_no_clash_on_distinct_ports_or_addresses() -> None:
    check_port_clashes([_publishing("a", "127.0.0.1"), _publishing("b", "127.0.0.2"), _publishing("c", "127.0.0.1", 8448)])


# --- fixed address and /etc/hosts entries -------------------------------------------------

@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_fixed_address_and_hosts_entries(engine: str) -> None:
    spec = make(networks=["hearth", "federation"], address="10.89.91.139",
                hosts={"hearth-postgres": "10.89.91.138", "hearth-mailer": "10.89.91.141"})
    argv = create_argv(spec, engine, "/usr/bin/" + engine)
    # The address belongs to the primary network (the one named at create), and so does a
    # MAC derived from it (the same after every restart: no stale ARP entries elsewhere).
    assert argv.index("--ip=10.89.91.139") == argv.index("--network=hearth") + 1
    assert argv[argv.index("--ip=10.89.91.139") + 1] == "--mac-address=02:42:0a:59:5b:8b"
    # Sorted by name: the same input always renders the same unit.
    assert [a for a in argv if a.startswith("--add-host=")] == [
        "--add-host=hearth-mailer:10.89.91.141", "--add-host=hearth-postgres:10.89.91.138"]


def test_no_address_and_no_hosts_by_default() -> None:
    argv = create_argv(make(networks=["hearth"], address=""), "docker", "/usr/bin/docker")
    assert not [a for a in argv if a.startswith("--ip") or a.startswith("--add-host") or a.startswith("--mac")]


@pytest.mark.parametrize("size, expected", [("32m", 32 * 1024 ** 2), ("1g", 1024 ** 3), ("1G", 1024 ** 3),
                                            ("512", 512), ("64b", 64), ("2048k", 2 * 1024 ** 2)])
def test_size_in_bytes(size: str, expected: int) -> None:
    assert size_in_bytes(size) == expected


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_memory_and_cpu_weight_flags(engine: str) -> None:
    argv = create_argv(make(memory="32m", cpu_shares=2048), engine, "/usr/bin/" + engine)
    assert "--memory=32m" in argv and "--cpu-shares=2048" in argv
    assert not [a for a in create_argv(make(), engine, "/usr/bin/" + engine) if a.startswith("--cpu-shares")]


@pytest.mark.parametrize("address, mac", [("10.89.91.139", "02:42:0a:59:5b:8b"), ("172.17.0.2", "02:42:ac:11:00:02"),
                                          ("255.0.10.1", "02:42:ff:00:0a:01")])
def test_mac_follows_the_address_like_dockers_own(address: str, mac: str) -> None:
    assert mac_for(address) == mac
