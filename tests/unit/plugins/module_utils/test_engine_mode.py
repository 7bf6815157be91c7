# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine modes, the subordinate id mapping and the rootless settings (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import (
    MIN_SUBIDS,
    EngineModeError,
    IdMap,
    IdRange,
    RootlessUser,
    check_engine,
    engine_binary,
    free_range_start,
    is_rootless,
    low_ports,
    network_helper_refusal,
    parse_subids,
    rootless_settings,
    run_as_argv,
    unenforced_limits,
    usable_range,
    user_unit_dir,
)


@pytest.mark.parametrize("mode", ["docker", "podman", "podman_rootless", "docker_rootless"])
def test_known_modes_pass(mode: str) -> None:
    assert check_engine(mode, "hearth_engine") == mode


@pytest.mark.parametrize("value, fragment", [
    ("lxc", "hearth_engine must be one of docker, podman, podman_rootless, docker_rootless, got 'lxc'"),
    ("docker-rootless", "hearth_engine must be one of docker, podman, podman_rootless, docker_rootless, got 'docker-rootless'"),
    (None, "hearth_engine must be one of"),
])
def test_other_modes_name_the_variable_in_one_line(value: object, fragment: str) -> None:
    with pytest.raises(EngineModeError) as caught:
        check_engine(value, "hearth_engine")
    assert str(caught.value).startswith(fragment)
    assert "\n" not in str(caught.value) and caught.value.variable == "hearth_engine"


def test_binary_and_rootless() -> None:
    assert engine_binary("podman_rootless") == "podman" and is_rootless("podman_rootless")
    assert engine_binary("docker") == "docker" and not is_rootless("podman")


SUBUID = "alice:100000:65536\nhearth:165536:65536\n# comment\n1001:231072:1000\nbroken line\n"


def test_parse_subids_by_name_and_uid() -> None:
    assert parse_subids(SUBUID, "hearth", 999) == [IdRange(165536, 65536)]
    assert parse_subids(SUBUID, "bob", 1001) == [IdRange(231072, 1000)]
    assert parse_subids(SUBUID, "nobody-here", None) == []


def test_usable_range_needs_the_minimum_first() -> None:
    assert usable_range([]) is None
    assert usable_range([IdRange(1, MIN_SUBIDS - 1)]) is None
    assert usable_range([IdRange(5, MIN_SUBIDS)]) == IdRange(5, MIN_SUBIDS)


def test_free_range_clears_every_existing_range() -> None:
    assert free_range_start(["", ""]) == 131072
    start = free_range_start([SUBUID, "x:300000:10\n"])
    assert start >= 300010 and start % MIN_SUBIDS == 0


def test_mapping_follows_the_user_namespace() -> None:
    idmap = IdMap(user_uid=999, user_gid=997, subuid=IdRange(131072, 65536), subgid=IdRange(200000, 65536))
    assert idmap.uid(0) == 999 and idmap.gid(0) == 997
    assert idmap.uid(991) == 131072 + 990
    assert idmap.gid(991) == 200000 + 990
    assert idmap.owner("root") == "999" and idmap.group("root") == "997"
    assert idmap.owner("991") == str(131072 + 990) and idmap.group("70") == str(200000 + 69)
    with pytest.raises(EngineModeError, match="hearth_rootless_user has 65536 subordinate uids; container uid 70000"):
        idmap.uid(70000)


def test_low_ports_against_the_opt_in() -> None:
    ports = [("hearth-nginx-proxy", 443), ("hearth-nginx-proxy", 80), ("hearth-synapse", 8008)]
    assert low_ports(ports, None) == ports[:2]
    assert low_ports(ports, 443) == [("hearth-nginx-proxy", 80)]
    assert low_ports(ports, 80) == []


def test_settings_defaults_and_errors() -> None:
    assert rootless_settings({}) == {"user": "hearth", "home": "/var/lib/hearth", "unprivileged_port_start": None}
    assert rootless_settings({"user": "mx", "unprivileged_port_start": "80"})["unprivileged_port_start"] == 80
    for raw, variable in (({"user": "root"}, "hearth_rootless_user"), ({"user": "Bad Name"}, "hearth_rootless_user"),
                          ({"home": "relative"}, "hearth_rootless_home"),
                          ({"unprivileged_port_start": 2000}, "hearth_rootless_unprivileged_port_start"),
                          ({"unprivileged_port_start": True}, "hearth_rootless_unprivileged_port_start")):
        with pytest.raises(EngineModeError) as caught:
            rootless_settings(raw)
        assert str(caught.value).startswith(variable + " ")


def test_run_as_and_unit_dir() -> None:
    argv = run_as_argv("/usr/sbin/runuser", RootlessUser("hearth", "/var/lib/hearth"), 999)
    assert argv == ["/usr/sbin/runuser", "-u", "hearth", "--", "env", "-C", "/var/lib/hearth", "HOME=/var/lib/hearth",
                    "XDG_RUNTIME_DIR=/run/user/999", "DOCKER_HOST=unix:///run/user/999/docker.sock"]
    assert user_unit_dir("/var/lib/hearth/") == "/var/lib/hearth/.config/systemd/user"


def test_unenforced_limits_name_the_role_variables() -> None:
    assert unenforced_limits("synapse", "2g", 1024, None) == ["synapse_memory=2g", "synapse_pids_limit=1024"]
    assert unenforced_limits("synapse", None, None, None) == []


@pytest.mark.parametrize("mode, version, have, missing", [
    ("podman_rootless", (5, 4, 2), {"pasta": False, "slirp4netns": True}, "pasta"),
    ("podman_rootless", (4, 3, 1), {"pasta": True, "slirp4netns": False}, "slirp4netns"),
    ("podman_rootless", (), {"pasta": True, "slirp4netns": False}, "slirp4netns"),     # unknown: podman 4's
])
def test_a_rootless_podman_without_its_network_helper_is_refused(mode: str, version: Any, have: Any,
                                                                 missing: str) -> None:
    refusal = network_helper_refusal(mode, version, have)
    assert refusal is not None and refusal.startswith("hearth_engine %s " % mode) and "needs %s" % missing in refusal


@pytest.mark.parametrize("mode, version, have", [
    ("podman_rootless", (5, 4, 2), {"pasta": True, "slirp4netns": False}),
    ("podman_rootless", (4, 3, 1), {"pasta": False, "slirp4netns": True}),
    ("podman", (5, 4, 2), {"pasta": False, "slirp4netns": False}),                     # rootful: no helper
])
def test_the_network_helper_there_or_not_needed(mode: str, version: Any, have: Any) -> None:
    assert network_helper_refusal(mode, version, have) is None
