# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service user's own dockerd (``hearth_engine: docker_rootless``), as pure functions.

Docker's rootless mode runs ``dockerd`` inside a user namespace that RootlessKit sets up
(``dockerd-rootless.sh``, shipped by Debian's docker.io under its contrib directory and by
docker-ce-rootless-extras on the PATH). The collection runs it as a unit of the service
user's systemd instance (``docker.service`` in its unit directory), which the container
units require and order after, just as root's units do with root's ``docker.service``.

Choices, and why:

* Port driver ``slirp4netns``: RootlessKit's default ("builtin") forwards published ports
  from a listener of its own, so every request reaches the container from RootlessKit's
  address and Synapse's per-client rate limits and logs would see one client. slirp4netns'
  port forwarding keeps the client's source address.
* Storage driver: ``overlay2`` needs a kernel that allows overlay mounts in a user namespace
  and a home that is not itself on overlayfs; ``fuse-overlayfs`` (package fuse-overlayfs)
  works everywhere else, so it is used when installed, as podman's rootless storage does.
* Ports below ``net.ipv4.ip_unprivileged_port_start`` cannot be socket-activated: the docker
  client only asks dockerd to create the container, so no file descriptor systemd passes
  the unit reaches the container. They need the host-wide opt-in instead.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

# Where Debian's docker.io ships the scripts (docker-ce-rootless-extras puts them on PATH).
DEBIAN_CONTRIB = "/usr/share/docker.io/contrib"
SETUP_SCRIPT = "dockerd-rootless.sh"
ENGINE_UNIT = "docker.service"
ENGINE_UNIT_MARKER = "# Managed by hearth.matrix: the service user's rootless dockerd (hearth_engine docker_rootless)."

# Commands the mode needs on the host, and the Debian package that has each.
REQUIRED = (
    ("dockerd", "docker.io"),
    ("rootlesskit", "rootlesskit"),
    ("slirp4netns", "slirp4netns"),
    ("newuidmap", "uidmap"),
)


def missing_commands(found: Mapping[str, Optional[str]]) -> Optional[str]:
    """Why docker_rootless cannot run here for want of a command (naming its package), or
    None. ``found``: each command of REQUIRED and SETUP_SCRIPT with its path or None."""
    missing = [(command, package) for command, package in REQUIRED if not found.get(command)]
    if not found.get(SETUP_SCRIPT):
        missing.append((SETUP_SCRIPT, "docker.io (%s) or docker-ce-rootless-extras" % DEBIAN_CONTRIB))
    if not missing:
        return None
    return ("docker_rootless needs %s on the host: install the Debian package%s %s"
            % (", ".join(command for command, _package in missing), "s" if len(missing) > 1 else "",
               ", ".join(sorted({package for _command, package in missing}))))


def engine_unit(script: str, path_dirs: Sequence[str], fuse_overlayfs: Optional[str]) -> str:
    """The user's docker.service: dockerd in RootlessKit, ready when dockerd says so."""
    args = [script]
    if fuse_overlayfs:
        args.append("--storage-driver=fuse-overlayfs")
    return "\n".join([
        ENGINE_UNIT_MARKER,
        "[Unit]",
        "Description=Docker of the hearth.matrix service user (rootless)",
        "",
        "[Service]",
        # dockerd-rootless.sh finds rootlesskit, slirp4netns and dockerd on PATH.
        "Environment=PATH=%s" % ":".join(path_dirs),
        "Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns",
        "Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns",
        "ExecStart=%s" % " ".join(args),
        "ExecReload=/bin/kill -s HUP $MAINPID",
        # dockerd notifies from inside RootlessKit's namespaces, a child of the main process.
        "Type=notify",
        "NotifyAccess=all",
        "KillMode=mixed",
        "Delegate=yes",
        "Restart=always",
        "RestartSec=2",
        "TimeoutStartSec=120",
        "LimitNOFILE=infinity",
        "LimitNPROC=infinity",
        "TasksMax=infinity",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


def path_dirs(script: str) -> Sequence[str]:
    """PATH for the engine unit: the script's own directory first, then the system's."""
    own = script.rsplit("/", 1)[0]
    dirs = [own] + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return [d for i, d in enumerate(dirs) if d and d not in dirs[:i]]
