# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every component role shares, checked once, with errors that name the variable.

Every component role has the same plumbing variables, ``<role>_<option>`` for the options
in ``SHARED_OPTIONS``. The action plugin ``hearth.matrix.component`` reads them from the
role's variables and turns them, with the role's own part of the spec, into one component
(module_utils/component.py). Any error names the variable the user set
(``postgres_pids_limit``), never an internal field.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict, is_abs_path
from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import EngineModeError, check_engine

# option -> what it is (for docs and messages). Required unless it has a fallback below.
SHARED_OPTIONS: Dict[str, str] = {
    "enabled": "true: the service is deployed and runs; false: its unit and container are removed (data stays)",
    "engine": "docker, podman, podman_rootless or docker_rootless",
    "service_name": "name of the systemd unit (without .service) and of the container",
    "image": "container image reference",
    "uid": "numeric user id the container runs as (never 0)",
    "gid": "numeric group id the container runs as (never 0)",
    "base_dir": "host directory of the component (config, data, secrets)",
    "container_networks": "container networks the service joins, the first one is its primary network",
    "manage_networks": "create the networks that are missing",
    "container_address": "fixed IPv4 address on the primary network (\"\": the engine picks one)",
    "container_hosts": "name -> IPv4 address entries of the container's /etc/hosts (peers found without DNS)",
    "container_ports": "published ports, each {host_address, host_port, container_port, protocol}",
    "memory": "memory limit such as 512m (at least 32m), \"\" for none",
    "cpu_shares": "relative CPU weight under contention (2-262144; the engines' default is 1024), \"\" for the default",
    "pids_limit": "maximum number of processes in the container (> 0)",
    "stop_timeout": "seconds the container gets to stop before it is killed",
    "ready_timeout": "seconds the unit waits for the container's health check after start",
    "requires": "systemd units the service requires (and starts after)",
    "wants": "systemd units the service wants (and starts after)",
    "after": "systemd units the service only starts after",
    "reload_on_ready": "containers sent SIGHUP once the service is ready (a proxy that re-resolves its upstreams)",
}

# Options a role may leave out, and the value they then have.
FALLBACKS: Dict[str, Any] = {
    "enabled": True,
    "manage_networks": True,
    "container_address": "",
    "container_hosts": {},
    "container_ports": [],
    "memory": "",
    "cpu_shares": "",
    "ready_timeout": 120,
    "requires": [],
    "wants": [],
    "after": [],
    "reload_on_ready": [],
}

# Field of the container/component spec -> the shared option it comes from.
_FIELD_OPTION: Tuple[Tuple[str, str], ...] = (
    ("container.image", "image"),
    ("image", "image"),
    ("user", "uid"),
    ("networks", "container_networks"),
    ("address", "container_address"),
    ("hosts", "container_hosts"),
    ("ports", "container_ports"),
    ("memory", "memory"),
    ("cpu_shares", "cpu_shares"),
    ("pids_limit", "pids_limit"),
    ("stop_timeout", "stop_timeout"),
    ("name", "service_name"),
    ("requires", "requires"),
    ("wants", "wants"),
    ("after", "after"),
    ("reload_on_ready", "reload_on_ready"),
    ("ready_timeout", "ready_timeout"),
)

_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,100}$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class RoleInputError(ValueError):
    """Bad input; ``variable`` is the name the user set, the message is one line."""

    def __init__(self, variable: str, message: str) -> None:
        text = message if not variable else "%s%s%s" % (variable, "" if message.startswith("[") else " ", message)
        super().__init__(text)
        self.variable = variable


def _bool(variable: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise RoleInputError(variable, "must be true or false, got %r" % (value,))


def _int(variable: str, value: Any, minimum: int) -> int:
    if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RoleInputError(variable, "must be a whole number, got %r" % (value,))
    if value < minimum:
        raise RoleInputError(variable, "must be at least %d, got %d" % (minimum, value))
    return value


def _str_list(variable: str, value: Any) -> List[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise RoleInputError(variable, "must be a list of names, got %r" % (value,))
    return list(value)


def _path(variable: str, value: Any) -> str:
    if not is_abs_path(value) or ".." in value.split("/"):
        raise RoleInputError(variable, "must be an absolute, normalised path such as /opt/hearth-matrix/x, got %r"
                             % (value,))
    return value


def _ports(variable: str, value: Any) -> List[Dict[str, Any]]:
    if not isinstance(value, (list, tuple)):
        raise RoleInputError(variable, "must be a list of {host_address, host_port, container_port}, got %r" % (value,))
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RoleInputError(variable, "[%d] must be a mapping like {host_address: 127.0.0.1, host_port: 8008, "
                                 "container_port: 8008}, got %r" % (index, item))
    return [dict(item) for item in value]


def option_values(role: str, lookup: Mapping[str, Any], host_only: bool = False) -> Dict[str, Any]:
    """The shared options of ``role`` from its variables, type-checked; names the variable.

    ``host_only``: a role without a container (common) has only ``enabled`` and ``engine``.
    """
    def var(option: str) -> str:
        return "%s_%s" % (role, option)

    def get(option: str) -> Any:
        if var(option) in lookup:
            return lookup[var(option)]
        if option in FALLBACKS:
            return FALLBACKS[option]
        raise RoleInputError(var(option), "is required")

    values: Dict[str, Any] = {"enabled": _bool(var("enabled"), get("enabled"))}
    try:
        values["engine"] = check_engine(get("engine"), var("engine"))
    except EngineModeError as error:
        raise RoleInputError(error.variable, str(error)[len(error.variable) + 1:]) from None
    if host_only:
        return values
    name = get("service_name")
    if not isinstance(name, str) or not _SERVICE_RE.match(name):
        raise RoleInputError(var("service_name"), "must be a unit/container name ([a-z0-9][a-z0-9_.-]*), got %r" % (name,))
    values["service_name"] = name
    if not values["enabled"]:
        # Its instance (role and base dir) finds the unit to remove also after a rename.
        if var("base_dir") in lookup:
            values["base_dir"] = _path(var("base_dir"), get("base_dir"))
        return values
    image = get("image")
    if not isinstance(image, str) or not image or re.search(r"\s", image):
        raise RoleInputError(var("image"), "must be an image reference without spaces, got %r" % (image,))
    values["image"] = image
    for option in ("uid", "gid"):
        values[option] = _int(var(option), get(option), 1)
    values["base_dir"] = _path(var("base_dir"), get("base_dir"))
    values["container_networks"] = _str_list(var("container_networks"), get("container_networks"))
    if not values["container_networks"]:
        raise RoleInputError(var("container_networks"), "must name at least one network")
    values["manage_networks"] = _bool(var("manage_networks"), get("manage_networks"))
    values["container_address"] = get("container_address")
    values["container_hosts"] = get("container_hosts")
    values["container_ports"] = _ports(var("container_ports"), get("container_ports"))
    memory = get("memory")
    if memory is None or (isinstance(memory, str) and memory == ""):
        values["memory"] = None
    elif isinstance(memory, (str, int)) and not isinstance(memory, bool) and re.match(r"^[1-9][0-9]*[bkmg]?$", str(memory), re.I):
        values["memory"] = str(memory)
    else:
        raise RoleInputError(var("memory"), "must be a size such as 512m or 1g, or \"\" for no limit, got %r" % (memory,))
    cpu_shares = get("cpu_shares")
    values["cpu_shares"] = None if cpu_shares in (None, "") else _int(var("cpu_shares"), cpu_shares, 2)
    values["pids_limit"] = _int(var("pids_limit"), get("pids_limit"), 1)
    values["stop_timeout"] = _int(var("stop_timeout"), get("stop_timeout"), 1)
    values["ready_timeout"] = _int(var("ready_timeout"), get("ready_timeout"), 1)
    for option in ("requires", "wants", "after", "reload_on_ready"):
        values[option] = _str_list(var(option), get(option))
    return values


def _variable_for(role: str, field: str) -> Optional[str]:
    for prefix, option in _FIELD_OPTION:
        if field == prefix or field.startswith(prefix + "[") or field.startswith(prefix + "."):
            return "%s_%s" % (role, option)
    return None


def build_component(role: str, lookup: Mapping[str, Any], spec: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The complete component (plain data for the module) of a role; checked, errors name variables."""
    spec = dict(spec or {})
    if spec and "container" not in spec:
        return _host_only_component(role, lookup, spec)
    values = option_values(role, lookup)
    instance = "%s@%s" % (role, values["base_dir"]) if "base_dir" in values else ""
    if not values["enabled"]:
        return {"name": values["service_name"], "state": "absent", "engine": values["engine"], "instance": instance}
    container = dict(spec.pop("container", None) or {})
    for key in ("image", "user", "networks", "address", "hosts", "ports", "memory", "cpu_shares", "pids_limit",
                "stop_timeout"):
        if key in container:
            raise RoleInputError("%s role" % role, "spec sets container.%s, which comes from the shared options" % key)
    container.update({
        "image": values["image"],
        "user": "%d:%d" % (values["uid"], values["gid"]),
        "networks": values["container_networks"],
        "address": values["container_address"],
        "hosts": values["container_hosts"],
        "ports": values["container_ports"],
        "memory": values["memory"],
        "cpu_shares": values["cpu_shares"],
        "pids_limit": values["pids_limit"],
        "stop_timeout": values["stop_timeout"],
    })
    for key in ("memory", "cpu_shares"):
        if container[key] is None:
            del container[key]
    component = dict(spec)
    component.update({
        "name": values["service_name"],
        "state": "started",
        "engine": values["engine"],
        "create_networks": values["manage_networks"],
        "requires": values["requires"],
        "wants": values["wants"],
        "after": values["after"],
        "reload_on_ready": values["reload_on_ready"],
        "ready_timeout": values["ready_timeout"],
        "container": container,
        "instance": instance,
    })
    try:
        component_from_dict(component)
    except SpecError as error:
        variable = _variable_for(role, error.field)
        if variable is None:
            # A field of the role's own spec: a bug of the role or of a value it computed.
            raise RoleInputError("%s role:" % role, str(error)) from error
        raise RoleInputError(variable, "is not valid (%s)" % error) from error
    return component


def _host_only_component(role: str, lookup: Mapping[str, Any], spec: Dict[str, Any]) -> Dict[str, Any]:
    """A role that prepares the host without a container of its own (common)."""
    values = option_values(role, lookup, host_only=True)
    component = dict(spec, name="hearth-%s" % role.replace("_", "-"), state="started", engine=values["engine"])
    try:
        component_from_dict(component)
    except SpecError as error:
        raise RoleInputError("%s role:" % role, str(error)) from error
    return component


def check_rules(role: str, checks: Any) -> None:
    """The role's own rules ({ok, msg} items, evaluated by Ansible): the first failing one."""
    if not isinstance(checks, (list, tuple)):
        raise RoleInputError("%s role:" % role, "checks must be a list of {ok, msg}")
    for item in checks:
        if not isinstance(item, Mapping) or "msg" not in item:
            raise RoleInputError("%s role:" % role, "each check needs ok and msg, got %r" % (item,))
        ok = item.get("ok")
        if isinstance(ok, str):
            ok = ok.strip().lower() in _TRUE
        if not ok:
            raise RoleInputError("", str(item["msg"]).strip())


def published(component: Mapping[str, Any]) -> List[Tuple[str, int, str]]:
    """(address, port, protocol) a component publishes on the host."""
    ports = (component.get("container") or {}).get("ports") or []
    return [(str(p.get("host_address")), int(p.get("host_port")), str(p.get("protocol", "tcp"))) for p in ports]


def check_port_clash(role: str, component: Mapping[str, Any], planned: List[Mapping[str, Any]]) -> None:
    """A host port another planned component already publishes; names both variables."""
    wild = ("0.0.0.0", "::")
    for address, port, protocol in published(component):
        for other in planned:
            for o_address, o_port, o_protocol in published(other.get("component") or {}):
                if (port, protocol) == (o_port, o_protocol) and (
                        address == o_address or address in wild or o_address in wild):
                    raise RoleInputError("%s_container_ports" % role, "publishes %s:%d/%s, which %s_container_ports "
                                         "already publishes" % (address, port, protocol, other.get("role")))
