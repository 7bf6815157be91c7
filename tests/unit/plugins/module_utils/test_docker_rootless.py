# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rootless dockerd's unit and the commands the mode needs (docker_rootless.py)."""

from __future__ import annotations

from ansible_collections.hearth.matrix.plugins.module_utils.docker_rootless import (
    engine_unit,
    missing_commands,
    path_dirs,
)

ALL = {"dockerd": "/usr/sbin/dockerd", "rootlesskit": "/usr/bin/rootlesskit", "slirp4netns": "/usr/bin/slirp4netns",
       "newuidmap": "/usr/bin/newuidmap", "dockerd-rootless.sh": "/usr/share/docker.io/contrib/dockerd-rootless.sh"}


def _directives(text: str, key: str) -> list:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def test_engine_unit_keeps_client_addresses_and_waits_for_dockerd() -> None:
    script = ALL["dockerd-rootless.sh"]
    text = engine_unit(script, path_dirs(script), "/usr/bin/fuse-overlayfs")
    assert _directives(text, "ExecStart") == [script + " --storage-driver=fuse-overlayfs"]
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns" in _directives(text, "Environment")
    assert _directives(text, "Type") == ["notify"] and _directives(text, "NotifyAccess") == ["all"]
    assert _directives(text, "WantedBy") == ["default.target"]
    path = [e for e in _directives(text, "Environment") if e.startswith("PATH=")][0]
    assert path.startswith("PATH=/usr/share/docker.io/contrib:") and ":/usr/sbin:" in path
    # Without fuse-overlayfs dockerd picks its own storage driver.
    assert _directives(engine_unit(script, path_dirs(script), None), "ExecStart") == [script]


def test_path_dirs_lists_each_directory_once() -> None:
    expected = ["/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/sbin", "/bin"]
    assert path_dirs("/usr/bin/dockerd-rootless.sh") == expected


def test_missing_commands_name_their_packages() -> None:
    assert missing_commands(ALL) is None
    found = dict(ALL, slirp4netns=None)
    assert missing_commands(found) == ("docker_rootless needs slirp4netns on the host: install the Debian package "
                                       "slirp4netns")
    found = dict(ALL, newuidmap=None, rootlesskit=None)
    assert missing_commands(found) == ("docker_rootless needs rootlesskit, newuidmap on the host: install the Debian "
                                       "packages rootlesskit, uidmap")
