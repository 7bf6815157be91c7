# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine modes (``hearth_engine``) and what a rootless mode changes, as pure functions.

A mode is ``<binary>`` (rootful, the system's systemd runs the units) or
``<binary>_rootless`` (a dedicated service user's engine and systemd instance run them).
Everything that differs between the modes is decided here, once: which binary, which
systemd scope, how a container's uid/gid appears on the host (the subordinate mapping).

Rootless id mapping (user namespaces, see user_namespaces(7) and subuid(5)): the engine
maps the container's uid 0 to the service user itself and uid U > 0 to
``subuid_start + U - 1``; gids the same way with the subordinate gid range. Files a
container must read or write are owned by exactly those host ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

ENGINE_MODES = ("docker", "podman", "podman_rootless", "docker_rootless")
# At least one full 16-bit range: images carry ids up to 65534 (nobody), and the engines'
# own default allocation (useradd, dockerd-rootless-setuptool.sh) is this size.
MIN_SUBIDS = 65536
# Where a range the collection allocates starts at the earliest (login.defs' SUB_UID_MIN).
SUBID_FLOOR = 100000
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class EngineModeError(ValueError):
    """Bad engine-mode input; the message is one line that starts with the variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__("%s %s" % (variable, message))
        self.variable = variable
        self.field = variable


def check_engine(value: object, variable: str) -> str:
    """The mode, or EngineModeError naming ``variable``."""
    if isinstance(value, str) and value in ENGINE_MODES:
        return value
    raise EngineModeError(variable, "must be one of %s, got %r" % (", ".join(ENGINE_MODES), value))


def engine_binary(mode: str) -> str:
    """The command a mode runs: podman_rootless -> podman."""
    return mode.split("_", 1)[0]


def is_rootless(mode: str) -> bool:
    return mode.endswith("_rootless")


def check_user_name(value: object, variable: str) -> str:
    if not isinstance(value, str) or not _USER_RE.match(value) or value == "root":
        raise EngineModeError(variable, "must be a user name other than root ([a-z_][a-z0-9_-]*), got %r" % (value,))
    return value


@dataclass(frozen=True)
class IdRange:
    start: int
    count: int

    @property
    def end(self) -> int:
        """The last id of the range."""
        return self.start + self.count - 1


def parse_subids(text: str, name: str, uid: Optional[int]) -> List[IdRange]:
    """The ranges of one user in /etc/subuid or /etc/subgid text ("name-or-uid:start:count")."""
    keys = {name} | ({str(uid)} if uid is not None else set())
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in keys or not (parts[1].isdigit() and parts[2].isdigit()):
            continue
        ranges.append(IdRange(int(parts[1]), int(parts[2])))
    return ranges


def usable_range(ranges: Sequence[IdRange]) -> Optional[IdRange]:
    """The range the engine uses: the first one (newuidmap maps them in file order); None
    when there is none or it is too small to hold an image's ids."""
    if not ranges or ranges[0].count < MIN_SUBIDS:
        return None
    return ranges[0]


def free_range_start(texts: Sequence[str], count: int = MIN_SUBIDS) -> int:
    """A start for a new range of ``count`` ids clear of every range in the given
    /etc/subuid and /etc/subgid texts (the same start in both keeps the mapping readable)."""
    end = SUBID_FLOOR
    for text in texts:
        for line in text.splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                end = max(end, int(parts[1]) + int(parts[2]))
    # Round up to a multiple of the range size, as useradd's allocations are.
    return -(-end // count) * count


@dataclass(frozen=True)
class IdMap:
    """How the rootless engine of one user shows container ids on the host."""

    user_uid: int
    user_gid: int
    subuid: IdRange
    subgid: IdRange

    def uid(self, container_uid: int) -> int:
        return self._map(container_uid, self.user_uid, self.subuid, "uid")

    def gid(self, container_gid: int) -> int:
        return self._map(container_gid, self.user_gid, self.subgid, "gid")

    @staticmethod
    def _map(value: int, own: int, sub: IdRange, kind: str) -> int:
        if value == 0:
            return own
        if not 0 < value <= sub.count:
            raise EngineModeError("hearth_rootless_user", "has %d subordinate %ss; container %s %d does not fit"
                                  % (sub.count, kind, kind, value))
        return sub.start + value - 1

    def owner(self, text: str) -> str:
        """A spec's owner (``root`` or a container uid) as the host uid, as text."""
        if text == "root":
            return str(self.user_uid)
        return str(self.uid(int(text))) if text.isdigit() else text

    def group(self, text: str) -> str:
        if text == "root":
            return str(self.user_gid)
        return str(self.gid(int(text))) if text.isdigit() else text


@dataclass(frozen=True)
class RootlessUser:
    """The service user of a rootless mode, as configured (not yet looked up on the host)."""

    name: str
    home: str
    unprivileged_port_start: Optional[int] = None


def runtime_dir(uid: int) -> str:
    return "/run/user/%d" % uid


def user_unit_dir(home: str) -> str:
    """Units of the user's systemd instance: read at boot by the lingering user's manager."""
    return home.rstrip("/") + "/.config/systemd/user"


def docker_socket(uid: int) -> str:
    """Where the user's rootless dockerd listens (dockerd-rootless.sh's default)."""
    return runtime_dir(uid) + "/docker.sock"


def run_as_argv(runuser: str, user: RootlessUser, uid: int) -> List[str]:
    """The prefix that runs a command as the service user with the environment rootless
    engines and ``systemctl --user`` need (podman finds its storage and the user's systemd
    through HOME and XDG_RUNTIME_DIR, the docker client the user's dockerd through
    DOCKER_HOST, which podman ignores; the module's own working directory is root's and
    closed)."""
    return [runuser, "-u", user.name, "--", "env", "-C", user.home, "HOME=%s" % user.home,
            "XDG_RUNTIME_DIR=%s" % runtime_dir(uid), "DOCKER_HOST=unix://%s" % docker_socket(uid)]


def low_ports(ports: Sequence[Tuple[str, int]], start: Optional[int]) -> List[Tuple[str, int]]:
    """The (service, port) pairs an unprivileged process may not bind with
    ``net.ipv4.ip_unprivileged_port_start`` at ``start`` (None: the kernel's 1024)."""
    limit = 1024 if start is None else start
    return [(name, port) for name, port in ports if port < limit]


LIMIT_OPTIONS = (("memory", "memory"), ("pids_limit", "pids_limit"), ("cpu_shares", "cpu_shares"))


def unenforced_limits(role: str, memory: Optional[str], pids_limit: Optional[int],
                      cpu_shares: Optional[int]) -> List[str]:
    """The role variables whose limits a rootless engine on cgroup v1 cannot enforce."""
    values = {"memory": memory, "pids_limit": pids_limit, "cpu_shares": cpu_shares}
    return ["%s_%s=%s" % (role, option, values[key]) for key, option in LIMIT_OPTIONS if values[key]]


ROOTLESS_DEFAULTS = {"user": "hearth", "home": "", "unprivileged_port_start": None}


def rootless_settings(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """The hearth_rootless_* variables, checked (errors name the variable); home defaults to
    /var/lib/<user>."""
    values = dict(ROOTLESS_DEFAULTS, **{k: v for k, v in raw.items() if v is not None})
    unknown = sorted(set(values) - set(ROOTLESS_DEFAULTS))
    if unknown:
        raise EngineModeError("hearth_rootless_" + unknown[0], "is not a rootless setting")
    user = check_user_name(values["user"], "hearth_rootless_user")
    home = values["home"] or "/var/lib/%s" % user
    if not isinstance(home, str) or not home.startswith("/") or home.rstrip("/") in ("", "/root") or ".." in home:
        raise EngineModeError("hearth_rootless_home", "must be an absolute path for the user's home, got %r" % (home,))
    start = values["unprivileged_port_start"]
    if start == "":
        start = None
    if start is not None:
        if isinstance(start, str) and start.isdigit():
            start = int(start)
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= 1024:
            raise EngineModeError("hearth_rootless_unprivileged_port_start",
                                  "must be a port number 0-1024 (or unset), got %r" % (values["unprivileged_port_start"],))
    return {"user": user, "home": home.rstrip("/"), "unprivileged_port_start": start}


# The user-mode network helper a rootless podman runs for each container network namespace:
# pasta (package passt) is podman 5's default, slirp4netns podman 4's. Without it every
# container fails to start ("could not find pasta"), and podman 5.4 then keeps the fixed
# addresses allocated, so later starts fail too: refused before anything changes.
PASTA_FROM = (5, 0)


def network_helper_refusal(mode: str, version: Tuple[int, ...], have: Mapping[str, bool]) -> Optional[str]:
    """Why ``mode`` cannot run containers here for want of its network helper, or None.
    ``have``: whether "pasta" and "slirp4netns" are on the host."""
    if not is_rootless(mode) or engine_binary(mode) != "podman":
        return None
    helper, package = ("pasta", "passt") if version >= PASTA_FROM else ("slirp4netns", "slirp4netns")
    if have.get(helper):
        return None
    found = ".".join(str(part) for part in version) or "unknown"
    return ("hearth_engine %s with podman %s needs %s on the host for the containers' networks: "
            "install the Debian package %s" % (mode, found, helper, package))
