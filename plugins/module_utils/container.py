# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one model of a container.

A ContainerSpec describes everything we run: image, identity, privileges, filesystem,
networks, published ports and limits. The hardened defaults live here once (non-root,
all capabilities dropped, no-new-privileges, read-only root); a component that needs an
exception must say so explicitly (``root_reason``) so the exception is visible in review.

From a spec come the ``docker``/``podman`` argv (``create_argv``); both engines share the
same flags for everything we use, the few differences are kept in ``_ENGINE_FLAGS``.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# Every engine mode (module_utils/engine_mode.py); a rootless mode renders like its binary.
ENGINES = ("docker", "podman", "podman_rootless", "docker_rootless")

# Capabilities a spec may add back (Linux capabilities(7)); anything else is a typo or an
# attempt to add something that no component of this stack should ever need.
KNOWN_CAPABILITIES = frozenset(
    "CAP_" + name
    for name in (
        "AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN "
        "DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE "
        "LINUX_IMMUTABLE MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE "
        "NET_BROADCAST NET_RAW PERFMON SETFCAP SETGID SETPCAP SETUID SYSLOG SYS_ADMIN "
        "SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE SYS_RAWIO "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM"
    ).split()
)

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*$|^[0-9]+$")
_SIZE_RE = re.compile(r"^[0-9]+[bkmg]?$", re.IGNORECASE)
_LABEL_KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_IPV4_RE = re.compile(r"^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$")
_HOST_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,251}[a-zA-Z0-9])?$")
_IPV6_RE = re.compile(r"^\[?[0-9a-fA-F:.]+\]?$")


class SpecError(ValueError):
    """A spec is invalid. ``field`` names the offending field (dotted path)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__("%s: %s" % (field_name, message))
        self.field = field_name
        self.message = message


def refuse_unknown_keys(raw: Mapping[str, Any], where: str, allowed: Iterable[str]) -> None:
    """SpecError naming ``where`` when ``raw`` has keys outside ``allowed``."""
    unknown = set(raw) - set(allowed)
    if unknown:
        raise SpecError(where, "unknown keys: %s" % ", ".join(sorted(unknown)))


def check_choice(value: Any, where: str, choices: Sequence[str]) -> Any:
    """``value`` when it is one of ``choices``, else SpecError naming ``where``."""
    if value not in choices:
        raise SpecError(where, "must be one of %s, got %r" % (", ".join(choices), value))
    return value


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class Tmpfs:
    path: str
    size: Optional[str] = None
    mode: Optional[str] = None


@dataclass(frozen=True)
class Port:
    host_address: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


# How a unit's readiness wait asks from the host (readiness.py runs it).
PROBE_KINDS = ("tcp", "http", "postgres")
_PROBE_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/?=&%-]*$")
_PROBE_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Probe:
    kind: str
    port: int
    path: str = ""    # http
    user: str = ""    # postgres: role and database of the startup message
    database: str = ""


def parse_probe(raw: Any) -> Optional[Probe]:
    """``{kind: tcp|http|postgres, port: N, path: /x, user: u, database: d}`` or None."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("healthcheck.probe", "must be a mapping with kind and port")
    refuse_unknown_keys(raw, "healthcheck.probe", {"kind", "port", "path", "user", "database"})
    kind = raw.get("kind")
    check_choice(kind, "healthcheck.probe.kind", PROBE_KINDS)
    port = raw.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SpecError("healthcheck.probe.port", "must be a port number (1-65535), got %r" % (port,))
    path = str(raw.get("path") or "")
    user = str(raw.get("user") or "")
    database = str(raw.get("database") or user)
    if kind == "http" and not _PROBE_PATH_RE.match(path):
        raise SpecError("healthcheck.probe.path", "must be an absolute URL path, got %r" % (path,))
    if kind == "postgres" and not (_PROBE_IDENT_RE.match(user) and _PROBE_IDENT_RE.match(database)):
        raise SpecError("healthcheck.probe.user", "must name a PostgreSQL role and database, got %r / %r" % (user, database))
    return Probe(kind=kind, port=port, path=path if kind == "http" else "",
                 user=user if kind == "postgres" else "", database=database if kind == "postgres" else "")


@dataclass(frozen=True)
class HealthCheck:
    command: Tuple[str, ...]
    interval: int = 10
    timeout: int = 5
    retries: int = 3
    start_period: int = 0
    # How the unit sees "ready" from the host (readiness.py); None: the command, via the engine.
    probe: Optional[Probe] = None


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    user: str
    root_reason: Optional[str] = None
    cap_add: Tuple[str, ...] = ()
    read_only: bool = True
    tmpfs: Tuple[Tmpfs, ...] = ()
    mounts: Tuple[Mount, ...] = ()
    networks: Tuple[str, ...] = ()
    # Fixed IPv4 address on the primary network, and /etc/hosts entries (name, address).
    address: Optional[str] = None
    hosts: Tuple[Tuple[str, str], ...] = ()
    ports: Tuple[Port, ...] = ()
    env_file: Optional[str] = None
    env: Tuple[Tuple[str, str], ...] = ()
    labels: Tuple[Tuple[str, str], ...] = ()
    sysctls: Tuple[Tuple[str, str], ...] = ()
    healthcheck: Optional[HealthCheck] = None
    memory: Optional[str] = None
    # Relative CPU weight under contention (--cpu-shares; the engines' default is 1024).
    cpu_shares: Optional[int] = None
    pids_limit: Optional[int] = None
    stop_timeout: int = 30
    command: Tuple[str, ...] = ()
    entrypoint: Optional[str] = None
    workdir: Optional[str] = None

    @property
    def primary_network(self) -> Optional[str]:
        return self.networks[0] if self.networks else None

    @property
    def extra_networks(self) -> Tuple[str, ...]:
        return self.networks[1:]


# ---------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------

_FIELDS = frozenset(
    "image user root_reason cap_add read_only tmpfs mounts networks address hosts ports env_file env "
    "labels sysctls healthcheck memory cpu_shares pids_limit stop_timeout command entrypoint workdir".split()
)
# Only sysctls that live in the container's own network or IPC namespace: both engines set
# them at creation without any capability in the container, and they never touch the host.
_SYSCTL_KEY_RE = re.compile(r"^(net\.[a-z0-9_.-]+|kernel\.(shm[a-z_]+|msg[a-z_]+|sem)|fs\.mqueue\.[a-z_]+)$")


def _require_str(value: Any, field_name: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SpecError(field_name, "must be a string, got %s" % type(value).__name__)
    if not allow_empty and not value.strip():
        raise SpecError(field_name, "must not be empty")
    return value


MIN_MEMORY_BYTES = 32 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def size_in_bytes(size: str) -> int:
    """512m -> 536870912 (the engines' units: b, k, m, g, powers of 1024)."""
    unit = size[-1].lower() if size[-1:].isalpha() else ""
    return int(size[:-1] if unit else size) * _UNITS[unit]


def _require_int(value: Any, field_name: str, minimum: int, maximum: Optional[int] = None) -> int:
    # bool is an int subclass in Python; "true" as a port number is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        else:
            raise SpecError(field_name, "must be an integer, got %r" % (value,))
    if value < minimum or (maximum is not None and value > maximum):
        bounds = ">= %d" % minimum if maximum is None else "between %d and %d" % (minimum, maximum)
        raise SpecError(field_name, "must be %s, got %d" % (bounds, value))
    return value


def _require_bool(value: Any, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field_name, "must be a boolean, got %r" % (value,))
    return value


def _require_list(value: Any, field_name: str) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SpecError(field_name, "must be a list, got %s" % type(value).__name__)
    return list(value)


def _require_abs_path(value: Any, field_name: str) -> str:
    path = _require_str(value, field_name)
    if not posixpath.isabs(path):
        raise SpecError(field_name, "must be an absolute path, got %r" % path)
    if ".." in path.split("/"):
        raise SpecError(field_name, "must not contain '..', got %r" % path)
    if "," in path or ":" in path:
        # Both characters are separators in --mount/--tmpfs syntax.
        raise SpecError(field_name, "must not contain ',' or ':', got %r" % path)
    return posixpath.normpath(path)


def _is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _parse_user(raw: Any, root_reason: Optional[str]) -> str:
    user = _require_str(str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw, "user")
    parts = user.split(":")
    if len(parts) > 2 or not all(_USER_RE.match(part) for part in parts):
        raise SpecError("user", "must be 'uid[:gid]' or 'name[:group]', got %r" % user)
    # The engines read a numeric user as a number, so "00" or "000" is uid 0 as well.
    is_root = parts[0] == "root" or (parts[0].isdigit() and int(parts[0]) == 0)
    if is_root and not root_reason:
        raise SpecError(
            "user", "runs as root; set root_reason to document why this container needs it"
        )
    return user


def _parse_capabilities(raw: Any, root_reason: Optional[str]) -> Tuple[str, ...]:
    caps = []
    for index, item in enumerate(_require_list(raw, "cap_add")):
        name = _require_str(item, "cap_add[%d]" % index).upper()
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in KNOWN_CAPABILITIES:
            raise SpecError("cap_add[%d]" % index, "unknown capability %r" % item)
        if name in caps:
            raise SpecError("cap_add[%d]" % index, "duplicate capability %r" % item)
        caps.append(name)
    if caps and not root_reason:
        # Adding a capability back is the same kind of exception as running as root.
        raise SpecError("cap_add", "adds capabilities; set root_reason to document why")
    return tuple(caps)


def _parse_mounts(raw: Any) -> Tuple[Mount, ...]:
    mounts = []
    for index, item in enumerate(_require_list(raw, "mounts")):
        where = "mounts[%d]" % index
        if not isinstance(item, Mapping):
            raise SpecError(where, "must be a mapping with source and target")
        refuse_unknown_keys(item, where, {"source", "target", "read_only"})
        mounts.append(
            Mount(
                source=_require_abs_path(item.get("source"), where + ".source"),
                target=_require_abs_path(item.get("target"), where + ".target"),
                read_only=_require_bool(item.get("read_only", True), where + ".read_only"),
            )
        )
    return tuple(mounts)


def _parse_tmpfs(raw: Any) -> Tuple[Tmpfs, ...]:
    result = []
    for index, item in enumerate(_require_list(raw, "tmpfs")):
        where = "tmpfs[%d]" % index
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, Mapping):
            raise SpecError(where, "must be a path or a mapping with path/size/mode")
        refuse_unknown_keys(item, where, {"path", "size", "mode"})
        size = item.get("size")
        if size is not None and not _SIZE_RE.match(str(size)):
            raise SpecError(where + ".size", "must look like 64m, got %r" % size)
        mode = item.get("mode")
        if mode is not None and not re.match(r"^[0-7]{3,4}$", str(mode)):
            raise SpecError(where + ".mode", "must be an octal mode like 1777, got %r" % mode)
        result.append(
            Tmpfs(
                path=_require_abs_path(item.get("path"), where + ".path"),
                size=None if size is None else str(size),
                mode=None if mode is None else str(mode),
            )
        )
    return tuple(result)


def _check_container_paths(mounts: Sequence[Mount], tmpfs: Sequence[Tmpfs]) -> None:
    """Two mounts on the same target, or one inside the other, shadow each other."""
    targets = [("mounts[%d].target" % i, m.target) for i, m in enumerate(mounts)]
    targets += [("tmpfs[%d].path" % i, t.path) for i, t in enumerate(tmpfs)]
    for i, (field_a, path_a) in enumerate(targets):
        for field_b, path_b in targets[i + 1:]:
            if _is_within(path_a, path_b) or _is_within(path_b, path_a):
                raise SpecError(field_b, "%r overlaps %s %r" % (path_b, field_a, path_a))
        if path_a == "/":
            raise SpecError(field_a, "must not be the container's root")


def _parse_host_address(raw: Any, where: str) -> str:
    address = _require_str(raw, where)
    if not (_IPV4_RE.match(address) or (":" in address and _IPV6_RE.match(address))):
        raise SpecError(where, "must be an IP address to bind to, got %r" % address)
    return address.strip("[]")


def _parse_ports(raw: Any) -> Tuple[Port, ...]:
    ports = []
    for index, item in enumerate(_require_list(raw, "ports")):
        where = "ports[%d]" % index
        if not isinstance(item, Mapping):
            raise SpecError(where, "must be a mapping with host_address, host_port, container_port")
        refuse_unknown_keys(item, where, {"host_address", "host_port", "container_port", "protocol"})
        if not item.get("host_address"):
            # Publishing on every address by accident is how databases end up on the internet.
            raise SpecError(where + ".host_address", "is required: every published port is bound to an explicit address")
        protocol = item.get("protocol", "tcp")
        if protocol not in ("tcp", "udp"):
            raise SpecError(where + ".protocol", "must be tcp or udp, got %r" % (protocol,))
        ports.append(
            Port(
                host_address=_parse_host_address(item.get("host_address"), where + ".host_address"),
                host_port=_require_int(item.get("host_port"), where + ".host_port", 1, 65535),
                container_port=_require_int(item.get("container_port"), where + ".container_port", 1, 65535),
                protocol=protocol,
            )
        )
    seen: Dict[Tuple[str, int, str], int] = {}
    for index, port in enumerate(ports):
        wildcard = port.host_address in ("0.0.0.0", "::")
        for (address, number, protocol), other in seen.items():
            same_address = address == port.host_address or wildcard or address in ("0.0.0.0", "::")
            if number == port.host_port and protocol == port.protocol and same_address:
                raise SpecError("ports[%d].host_port" % index, "%d/%s clashes with ports[%d]" % (number, protocol, other))
        seen[(port.host_address, port.host_port, port.protocol)] = index
    return tuple(ports)


def _parse_str_map(raw: Any, field_name: str, key_re: "re.Pattern[str]") -> Tuple[Tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SpecError(field_name, "must be a mapping, got %s" % type(raw).__name__)
    items = []
    for key in sorted(raw):
        if not isinstance(key, str) or not key_re.match(key):
            raise SpecError(field_name, "invalid key %r" % (key,))
        value = raw[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise SpecError("%s.%s" % (field_name, key), "must be a scalar")
        text = str(value)
        if "\n" in text:
            raise SpecError("%s.%s" % (field_name, key), "must not contain newlines")
        items.append((key, text))
    return tuple(items)


def _parse_address(raw: Any, field_name: str) -> Optional[str]:
    """An IPv4 address, or None for "" / None (the engine picks one)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and _IPV4_RE.match(raw):
        return raw
    raise SpecError(field_name, "must be an IPv4 address such as 10.89.91.139, got %r" % (raw,))


def _parse_hosts(raw: Any) -> Tuple[Tuple[str, str], ...]:
    """/etc/hosts entries: host name -> IPv4 address, sorted for a stable argv."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SpecError("hosts", "must map host names to IPv4 addresses, got %r" % (raw,))
    hosts = []
    for name in sorted(raw, key=str):
        if not isinstance(name, str) or not _HOST_RE.match(name):
            raise SpecError("hosts", "has an invalid host name %r" % (name,))
        address = _parse_address(raw[name], "hosts.%s" % name)
        if address is None:
            raise SpecError("hosts.%s" % name, "must be an IPv4 address, got %r" % (raw[name],))
        hosts.append((name, address))
    return tuple(hosts)


def _parse_healthcheck(raw: Any) -> Optional[HealthCheck]:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("healthcheck", "must be a mapping with a command")
    refuse_unknown_keys(raw, "healthcheck", {"command", "interval", "timeout", "retries", "start_period", "probe"})
    command = _require_list(raw.get("command"), "healthcheck.command")
    if not command:
        raise SpecError("healthcheck.command", "must be a non-empty list (argv)")
    return HealthCheck(
        command=tuple(_require_str(arg, "healthcheck.command[%d]" % i, allow_empty=True) for i, arg in enumerate(command)),
        interval=_require_int(raw.get("interval", 10), "healthcheck.interval", 1),
        timeout=_require_int(raw.get("timeout", 5), "healthcheck.timeout", 1),
        retries=_require_int(raw.get("retries", 3), "healthcheck.retries", 1),
        start_period=_require_int(raw.get("start_period", 0), "healthcheck.start_period", 0),
        probe=parse_probe(raw.get("probe")),
    )


def container_spec_from_dict(name: str, raw: Mapping[str, Any]) -> ContainerSpec:
    """Validate a plain dict (as written in role defaults) into a ContainerSpec."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError("name", "must match %s, got %r" % (_NAME_RE.pattern, name))
    if not isinstance(raw, Mapping):
        raise SpecError("container", "must be a mapping")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise SpecError("container", "unknown fields: %s" % ", ".join(sorted(unknown)))
    root_reason = raw.get("root_reason")
    if root_reason is not None:
        root_reason = _require_str(root_reason, "root_reason")
    image = _require_str(raw.get("image"), "image")
    if any(ch.isspace() for ch in image):
        raise SpecError("image", "must not contain whitespace, got %r" % image)
    mounts = _parse_mounts(raw.get("mounts"))
    tmpfs = _parse_tmpfs(raw.get("tmpfs"))
    _check_container_paths(mounts, tmpfs)
    networks = tuple(_require_str(n, "networks[%d]" % i) for i, n in enumerate(_require_list(raw.get("networks"), "networks")))
    for index, network in enumerate(networks):
        if not _NAME_RE.match(network):
            raise SpecError("networks[%d]" % index, "invalid network name %r" % network)
        if network in networks[:index]:
            raise SpecError("networks[%d]" % index, "duplicate network %r" % network)
    address = _parse_address(raw.get("address"), "address")
    if address and not networks:
        raise SpecError("address", "needs a network to be an address on")
    env_file = raw.get("env_file")
    memory = raw.get("memory")
    if memory is not None and not _SIZE_RE.match(str(memory)):
        raise SpecError("memory", "must look like 512m or 1g, got %r" % (memory,))
    if memory is not None and size_in_bytes(str(memory)) < MIN_MEMORY_BYTES:
        # Below this no engine starts a container (docker's floor is 6 MiB) and none of ours runs.
        raise SpecError("memory", "must be at least 32m, got %r" % (memory,))
    cpu_shares = raw.get("cpu_shares")
    pids_limit = raw.get("pids_limit")
    workdir = raw.get("workdir")
    entrypoint = raw.get("entrypoint")
    return ContainerSpec(
        name=name,
        image=image,
        user=_parse_user(raw.get("user"), root_reason),
        root_reason=root_reason,
        cap_add=_parse_capabilities(raw.get("cap_add"), root_reason),
        read_only=_require_bool(raw.get("read_only", True), "read_only"),
        tmpfs=tmpfs,
        mounts=mounts,
        networks=networks,
        address=address,
        hosts=_parse_hosts(raw.get("hosts")),
        ports=_parse_ports(raw.get("ports")),
        env_file=None if env_file is None else _require_abs_path(env_file, "env_file"),
        env=_parse_str_map(raw.get("env"), "env", re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")),
        labels=_parse_str_map(raw.get("labels"), "labels", _LABEL_KEY_RE),
        sysctls=_parse_str_map(raw.get("sysctls"), "sysctls", _SYSCTL_KEY_RE),
        healthcheck=_parse_healthcheck(raw.get("healthcheck")),
        memory=None if memory is None else str(memory),
        # The kernel's range of cpu.shares.
        cpu_shares=None if cpu_shares is None else _require_int(cpu_shares, "cpu_shares", 2, 262144),
        pids_limit=None if pids_limit is None else _require_int(pids_limit, "pids_limit", 1),
        stop_timeout=_require_int(raw.get("stop_timeout", 30), "stop_timeout", 1, 3600),
        command=tuple(_require_str(a, "command[%d]" % i, allow_empty=True) for i, a in enumerate(_require_list(raw.get("command"), "command"))),
        entrypoint=None if entrypoint is None else _require_str(entrypoint, "entrypoint"),
        workdir=None if workdir is None else _require_abs_path(workdir, "workdir"),
    )


def check_unique_names(specs: Sequence[ContainerSpec]) -> None:
    """Two services with one container name would remove each other's container at start."""
    seen = set()
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise SpecError("containers[%d].name" % index, "duplicate container name %r" % spec.name)
        seen.add(spec.name)


def check_port_clashes(specs: Sequence[ContainerSpec]) -> None:
    """A host port published by two containers fails only at start time; catch it earlier."""
    # Every earlier publisher of a port is kept: comparing with the last one only would miss
    # a clash with an earlier container on the same address.
    owners: Dict[Tuple[int, str], List[Tuple[str, str]]] = {}
    wild = ("0.0.0.0", "::")
    for spec in specs:
        for port in spec.ports:
            key = (port.host_port, port.protocol)
            for other_name, other_address in owners.get(key, []):
                if other_address == port.host_address or other_address in wild or port.host_address in wild:
                    raise SpecError(
                        "%s.ports" % spec.name,
                        "host port %d/%s is already published by %s" % (port.host_port, port.protocol, other_name),
                    )
            owners.setdefault(key, []).append((spec.name, port.host_address))


# ---------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------

# Where the engines differ. Docker's journald driver would log twice (once via the driver,
# once via the attached stdout systemd already captures), so logs go through the attached
# stream only: "none" for both, which podman has supported since 1.x.
_ENGINE_FLAGS = {
    "docker": {"log": ["--log-driver=none"]},
    "podman": {"log": ["--log-driver=none"]},
    "podman_rootless": {"log": ["--log-driver=none"]},
    "docker_rootless": {"log": ["--log-driver=none"]},
}


def _format_port(port: Port) -> str:
    address = "[%s]" % port.host_address if ":" in port.host_address else port.host_address
    return "%s:%d:%d/%s" % (address, port.host_port, port.container_port, port.protocol)


def _format_tmpfs(tmpfs: Tmpfs) -> str:
    options = ["rw", "noexec", "nosuid", "nodev"]
    if tmpfs.size:
        options.append("size=%s" % tmpfs.size)
    if tmpfs.mode:
        options.append("mode=%s" % tmpfs.mode)
    return "%s:%s" % (tmpfs.path, ",".join(options))


def _format_mount(mount: Mount) -> str:
    text = "type=bind,src=%s,dst=%s" % (mount.source, mount.target)
    return text + (",readonly" if mount.read_only else "")


def limit_flags(spec: ContainerSpec) -> List[str]:
    """The memory, CPU weight and pids flags, spelled the same for both engines and Quadlet."""
    flags = []
    if spec.memory:
        flags.append("--memory=%s" % spec.memory)
    if spec.cpu_shares:
        flags.append("--cpu-shares=%d" % spec.cpu_shares)
    if spec.pids_limit:
        flags.append("--pids-limit=%d" % spec.pids_limit)
    return flags


def create_argv(spec: ContainerSpec, engine: str, engine_path: str) -> List[str]:
    """The full ``<engine> create ...`` argv for a spec (no shell quoting applied)."""
    check_choice(engine, "engine", ENGINES)
    if not posixpath.isabs(engine_path):
        raise SpecError("engine_path", "must be an absolute path, got %r" % engine_path)
    argv = [engine_path, "create", "--name=%s" % spec.name, "--user=%s" % spec.user]
    argv += ["--cap-drop=ALL"] + ["--cap-add=%s" % cap for cap in spec.cap_add]
    argv.append("--security-opt=no-new-privileges")
    if spec.read_only:
        argv.append("--read-only")
    argv += _ENGINE_FLAGS[engine]["log"]
    if spec.primary_network:
        argv.append("--network=%s" % spec.primary_network)
    if spec.address:
        argv.append("--ip=%s" % spec.address)
        # A fixed address needs a fixed MAC: podman gives every new container a random one,
        # and the other containers' ARP entries for the address then point at the old MAC
        # until they time out; their connections stalled for 20 s after a restart on the bed.
        # docker derives 02:42:<address> itself; this is the same for both engines.
        argv.append("--mac-address=%s" % mac_for(spec.address))
    argv += ["--add-host=%s:%s" % (name, address) for name, address in spec.hosts]
    argv += ["--tmpfs=%s" % _format_tmpfs(t) for t in spec.tmpfs]
    argv += ["--mount=%s" % _format_mount(m) for m in spec.mounts]
    argv += ["--publish=%s" % _format_port(p) for p in spec.ports]
    if spec.env_file:
        argv.append("--env-file=%s" % spec.env_file)
    argv += ["--env=%s=%s" % (key, value) for key, value in spec.env]
    argv += ["--label=%s=%s" % (key, value) for key, value in spec.labels]
    argv += ["--sysctl=%s=%s" % (key, value) for key, value in spec.sysctls]
    if spec.healthcheck:
        check = spec.healthcheck
        # Docker treats a --health-cmd string as CMD-SHELL, so quote the argv for /bin/sh;
        # podman accepts the same form, which keeps one rendering for both engines.
        argv.append("--health-cmd=%s" % shell_join(check.command))
        argv += [
            "--health-interval=%ds" % check.interval,
            "--health-timeout=%ds" % check.timeout,
            "--health-retries=%d" % check.retries,
            "--health-start-period=%ds" % check.start_period,
        ]
    argv += limit_flags(spec)
    argv.append("--stop-timeout=%d" % spec.stop_timeout)
    if spec.workdir:
        argv.append("--workdir=%s" % spec.workdir)
    if spec.entrypoint:
        argv.append("--entrypoint=%s" % spec.entrypoint)
    argv.append(spec.image)
    argv += list(spec.command)
    return argv


def mac_for(address: str) -> str:
    """The locally administered MAC of a fixed IPv4 address (docker's 02:42:<address>)."""
    return "02:42:" + ":".join("%02x" % int(octet) for octet in address.split("."))


def shell_join(argv: Sequence[str]) -> str:
    """Quote an argv for /bin/sh (shlex.join exists only from Python 3.8)."""
    return " ".join(shlex.quote(arg) for arg in argv)
