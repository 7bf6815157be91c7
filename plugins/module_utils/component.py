# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired state of one component, as one typed value.

A component is everything one service needs on the host: its directories, generated
secrets, config files, links, certificate, image, networks, the systemd unit that
supervises its container (module_utils/unit.py) and whether it runs. The module
``hearth.matrix.component`` converges a list of them in one execution on the host.

Config files are rendered on the controller. A secret that lives on the host never travels
to the controller: a file names it with ``secret_ref(path)`` and the module puts the
secret's value in its place on the host (so such files are never shown in a diff).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    ContainerSpec,
    SpecError,
    check_choice,
    container_spec_from_dict,
    refuse_unknown_keys,
)
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import EngineModeError, check_engine
from ansible_collections.hearth.matrix.plugins.module_utils.image_check import ImageCheck, image_check_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.unit import check_unit_names

STATES = ("started", "absent")
SECRET_FORMATS = ("token", "synapse_signing_key")
_MODE_RE = re.compile(r"^0?[0-7]{3,4}$")
_OWNER_RE = re.compile(r"^([a-z_][a-z0-9_-]*|[0-9]+)$")
# The marker that stands for the content of a secret file on the host.
SECRET_REF_RE = re.compile(r"@@hearth-secret:(/[^@\s]+)@@")


def secret_ref(path: str) -> str:
    """The text a config file holds in place of the secret stored at ``path`` on the host.

    Only a string is required here: a role checks its own path variables (and names them)
    after its spec is rendered, and the module refuses a marker whose path is not absolute.
    """
    if not isinstance(path, str) or "@" in path or re.search(r"\s", path):
        raise SpecError("secret_ref", "needs a path without spaces or '@', got %r" % (path,))
    return "@@hearth-secret:%s@@" % path


def secret_refs(text: str) -> List[str]:
    """Paths of the host secrets a text refers to, in order of first use."""
    seen: List[str] = []
    for path in SECRET_REF_RE.findall(text):
        if path not in seen:
            seen.append(path)
    return seen


@dataclass(frozen=True)
class Ownership:
    owner: str = "root"
    group: str = "root"
    mode: str = "0640"


@dataclass(frozen=True)
class Directory:
    path: str
    own: Ownership


@dataclass(frozen=True)
class Secret:
    path: str
    own: Ownership
    length: int = 64
    format: str = "token"


@dataclass(frozen=True)
class File:
    path: str
    own: Ownership
    content: Optional[str] = None
    # A file copied from elsewhere on the host (e.g. the operator's certificate).
    src: Optional[str] = None
    # False: the service reads the file on every use, so a change needs no restart.
    restart: bool = True
    # True: never show the content in a diff (it holds a secret given as a value).
    secret: bool = False
    # The variable the user set for ``src``, named in errors.
    label: str = ""
    # True: ``src`` must hold PEM certificates (a CA the service trusts), checked up front.
    pem: bool = False

    @property
    def hidden(self) -> bool:
        return self.secret or self.src is not None or bool(self.content and secret_refs(self.content))


@dataclass(frozen=True)
class Link:
    path: str
    src: str


@dataclass(frozen=True)
class SelfSignedTls:
    """A private CA (created once) and a server certificate re-issued only when it no longer fits."""

    ca_dir: str
    tls_dir: str
    domains: Tuple[str, ...]
    common_name: str
    key_owner: str
    key_group: str
    cert_group: str
    days: int = 825
    ca_days: int = 3650
    # True when another issuer (hearth.matrix.acme) may replace the server certificate: a
    # valid one that matches the key and the names is kept, and it is not part of the
    # fingerprint (its replacement reloads the service instead of restarting it).
    replaceable: bool = False


@dataclass(frozen=True)
class ServiceUser:
    """The account the containers' uid/gid belong to (declared with sysusers.d when possible)."""

    name: str
    uid: int
    group: str
    gid: int
    home: str
    sysusers_dir: str = ""


@dataclass(frozen=True)
class Network:
    """A network to create; with a subnet, the engine hands out addresses from its lower
    half only (the upper half is for fixed container addresses)."""
    name: str
    subnet: str = ""

    @property
    def dynamic_range(self) -> str:
        return str(next(ipaddress.IPv4Network(self.subnet).subnets(prefixlen_diff=1))) if self.subnet else ""


@dataclass(frozen=True)
class Component:
    name: str
    state: str
    engine: str
    description: str = ""
    image: str = ""
    pull: bool = True
    create_networks: bool = True
    requires: Tuple[str, ...] = ()
    wants: Tuple[str, ...] = ()
    after: Tuple[str, ...] = ()
    reload_on_ready: Tuple[str, ...] = ()
    ready_timeout: int = 120
    restart_sec: int = 5
    directories: Tuple[Directory, ...] = ()
    secrets: Tuple[Secret, ...] = ()
    files: Tuple[File, ...] = ()
    links: Tuple[Link, ...] = ()
    tls: Optional[SelfSignedTls] = None
    service_user: Optional[ServiceUser] = None
    # Networks to create that no container of this component names (e.g. the stack's).
    networks: Tuple[Network, ...] = ()
    container: Optional[ContainerSpec] = None
    extra_fingerprint: str = ""
    # Which deployment of which role this is ("<role>@<base dir>"): written into the unit, so
    # a later run that gives the same instance another service name finds and removes the
    # old unit and container instead of leaving them running beside the new ones.
    instance: str = ""
    # Probed in a new image before it replaces the running one (module_utils/image_check.py).
    image_check: Optional[ImageCheck] = None
    # Podman only: the service is a Quadlet file, not a generated unit (module_utils/quadlet.py).
    quadlet: bool = False


# --------------------------------------------------------------------------------------
# Parsing: every error names the field (dotted path) so callers can name the variable.


def _str(raw: Mapping[str, Any], key: str, where: str, default: Optional[str] = None, allow_empty: bool = True) -> str:
    value = raw.get(key, default)
    if value is None or not isinstance(value, str) or (not allow_empty and not value):
        raise SpecError("%s.%s" % (where, key) if where else key, "must be a%s string, got %r"
                        % ("" if allow_empty else " non-empty", value))
    return value


def is_abs_path(value: Any) -> bool:
    """An absolute, normalised path other than / (no //, /./, /../ or trailing slash)."""
    return (isinstance(value, str) and posixpath.isabs(value) and posixpath.normpath(value) == value
            and value != "/" and not value.startswith("//"))


def _abs(value: Any, where: str) -> str:
    if not is_abs_path(value):
        raise SpecError(where, "must be an absolute, normalised path, got %r" % (value,))
    return value


def _int(raw: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("%s.%s" % (where, key) if where else key, "must be an integer >= %d, got %r" % (minimum, value))
    return value


def _bool(raw: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise SpecError("%s.%s" % (where, key) if where else key, "must be true or false, got %r" % (value,))
    return value


def _list(raw: Mapping[str, Any], key: str) -> List[Any]:
    value = raw.get(key) or []
    if not isinstance(value, (list, tuple)):
        raise SpecError(key, "must be a list, got %r" % (value,))
    return list(value)


def _ownership(raw: Mapping[str, Any], where: str, default_mode: str) -> Ownership:
    owner = str(raw.get("owner", "root"))
    group = str(raw.get("group", "root"))
    raw_mode = raw.get("mode", default_mode)
    # YAML reads an unquoted 0640 as the integer 416: that is the mode meant, in octal.
    mode = "0%o" % raw_mode if isinstance(raw_mode, int) and not isinstance(raw_mode, bool) else str(raw_mode)
    for key, value in (("owner", owner), ("group", group)):
        if not _OWNER_RE.match(value):
            raise SpecError("%s.%s" % (where, key), "must be a user/group name or a number, got %r" % (value,))
    if not _MODE_RE.match(mode):
        raise SpecError("%s.mode" % where, "must be an octal mode like 0640, got %r" % (mode,))
    return Ownership(owner=owner, group=group, mode="%04o" % int(mode, 8))


def _mapping(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise SpecError(where, "must be a mapping, got %r" % (item,))
    return item


def _directories(raw: Mapping[str, Any]) -> Tuple[Directory, ...]:
    result = []
    for index, item in enumerate(_list(raw, "directories")):
        where = "directories[%d]" % index
        item = _mapping(item, where)
        result.append(Directory(path=_abs(item.get("path"), where + ".path"), own=_ownership(item, where, "0750")))
    return tuple(result)


def _secrets(raw: Mapping[str, Any]) -> Tuple[Secret, ...]:
    result = []
    for index, item in enumerate(_list(raw, "secrets")):
        where = "secrets[%d]" % index
        # A bare path: a token, root only.
        item = {"path": item} if isinstance(item, str) else _mapping(item, where)
        fmt = item.get("format", "token")
        check_choice(fmt, where + ".format", SECRET_FORMATS)
        result.append(Secret(path=_abs(item.get("path"), where + ".path"), own=_ownership(item, where, "0600"),
                             length=_int(item, "length", where, 64, 16), format=fmt))
    return tuple(result)


def _files(raw: Mapping[str, Any]) -> Tuple[File, ...]:
    result = []
    for index, item in enumerate(_list(raw, "files")):
        where = "files[%d]" % index
        item = _mapping(item, where)
        content, src = item.get("content"), item.get("src")
        if (content is None) == (src is None):
            raise SpecError(where, "needs exactly one of content and src")
        if content is not None and not isinstance(content, str):
            raise SpecError(where + ".content", "must be a string")
        result.append(File(
            path=_abs(item.get("path"), where + ".path"),
            own=_ownership(item, where, "0640"),
            content=content,
            src=_abs(src, where + ".src") if src is not None else None,
            restart=_bool(item, "restart", where, True),
            secret=_bool(item, "secret", where, False),
            label=str(item.get("label") or where + ".src"),
            pem=_bool(item, "pem", where, False),
        ))
    return tuple(result)


def _links(raw: Mapping[str, Any]) -> Tuple[Link, ...]:
    result = []
    for index, item in enumerate(_list(raw, "links")):
        where = "links[%d]" % index
        item = _mapping(item, where)
        result.append(Link(path=_abs(item.get("path"), where + ".path"), src=_abs(item.get("src"), where + ".src")))
    return tuple(result)


def _tls(raw: Any) -> Optional[SelfSignedTls]:
    if not raw:
        return None
    raw = _mapping(raw, "tls")
    domains = raw.get("domains")
    if not isinstance(domains, (list, tuple)) or not domains or not all(isinstance(d, str) and d for d in domains):
        raise SpecError("tls.domains", "must be a non-empty list of names, got %r" % (domains,))
    days = _int(raw, "days", "tls", 825, 1)
    ca_days = _int(raw, "ca_days", "tls", 3650, 1)
    if ca_days <= days:
        raise SpecError("tls.ca_days", "must be larger than tls.days (%d), got %d" % (days, ca_days))
    return SelfSignedTls(
        ca_dir=_abs(raw.get("ca_dir"), "tls.ca_dir"),
        tls_dir=_abs(raw.get("tls_dir"), "tls.tls_dir"),
        domains=tuple(sorted({d.lower() for d in domains})),
        common_name=_str(raw, "common_name", "tls", allow_empty=False),
        key_owner=str(raw.get("key_owner", "root")),
        key_group=str(raw.get("key_group", "root")),
        cert_group=str(raw.get("cert_group", "root")),
        days=days,
        ca_days=ca_days,
        replaceable=_bool(raw, "replaceable", "tls", False),
    )


def _service_user(raw: Any) -> Optional[ServiceUser]:
    if not raw:
        return None
    raw = _mapping(raw, "service_user")
    names = {}
    for key in ("name", "group"):
        value = raw.get(key)
        if not isinstance(value, str) or not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", value):
            raise SpecError("service_user.%s" % key, "must be a user/group name, got %r" % (value,))
        names[key] = value
    sysusers_dir = raw.get("sysusers_dir") or ""
    return ServiceUser(name=names["name"], uid=_int(raw, "uid", "service_user", 0, 1), group=names["group"],
                       gid=_int(raw, "gid", "service_user", 0, 1), home=_abs(raw.get("home"), "service_user.home"),
                       sysusers_dir=_abs(sysusers_dir, "service_user.sysusers_dir") if sysusers_dir else "")


def _networks(raw: Mapping[str, Any]) -> Tuple[Network, ...]:
    """Names, or {name, subnet} mappings ("" subnet: the engine picks one)."""
    result = []
    for index, item in enumerate(_list(raw, "networks")):
        where = "networks[%d]" % index
        item = item if isinstance(item, Mapping) else {"name": item}
        refuse_unknown_keys(item, where, {"name", "subnet"})
        name, subnet = item.get("name"), item.get("subnet") or ""
        if not isinstance(name, str) or not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", name):
            raise SpecError(where, "invalid network name %r" % (name,))
        if subnet:
            try:
                parsed = ipaddress.IPv4Network(subnet, strict=True) if isinstance(subnet, str) else None
            except ValueError:
                parsed = None
            if parsed is None or parsed.prefixlen > 25:
                raise SpecError(where + ".subnet", "must be an IPv4 subnet of at least 128 addresses "
                                "(network/prefix), got %r" % (subnet,))
        result.append(Network(name=name, subnet=subnet))
    return tuple(result)


def _unit_list(raw: Mapping[str, Any], key: str) -> Tuple[str, ...]:
    return check_unit_names(key, _list(raw, key))


def component_from_dict(raw: Mapping[str, Any]) -> Component:
    """A validated Component from plain data (module parameters); raises SpecError."""
    raw = _mapping(raw, "component")
    name = _str(raw, "name", "", allow_empty=False)
    state = raw.get("state", "started")
    check_choice(state, "state", STATES)
    engine = raw.get("engine", "docker")
    try:
        engine = check_engine(engine, "engine")
    except EngineModeError as error:
        raise SpecError("engine", str(error)[len("engine "):]) from None
    instance = _str(raw, "instance", "", default="")
    if "\n" in instance:
        raise SpecError("instance", "must be one line, got %r" % (instance,))
    quadlet = _bool(raw, "quadlet", "", False)
    if quadlet and engine != "podman":
        raise SpecError("quadlet", "needs the podman engine, got %r" % (engine,))
    if state == "absent":
        return Component(name=name, state=state, engine=engine, instance=instance, quadlet=quadlet)
    # Without a container, a component is files only (for example secrets the stack shares).
    container = container_spec_from_dict(name, _mapping(raw["container"], "container")) if raw.get("container") else None
    reload_on_ready = _list(raw, "reload_on_ready")
    for index, target in enumerate(reload_on_ready):
        if not isinstance(target, str) or not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", target):
            raise SpecError("reload_on_ready[%d]" % index, "must be a container name, got %r" % (target,))
    component = Component(
        name=name,
        state=state,
        engine=engine,
        description=_str(raw, "description", "", default=""),
        image=container.image if container else "",
        pull=_bool(raw, "pull", "", True),
        create_networks=_bool(raw, "create_networks", "", True),
        requires=_unit_list(raw, "requires"),
        wants=_unit_list(raw, "wants"),
        after=_unit_list(raw, "after"),
        reload_on_ready=tuple(reload_on_ready),
        ready_timeout=_int(raw, "ready_timeout", "", 120, 1),
        restart_sec=_int(raw, "restart_sec", "", 5, 0),
        directories=_directories(raw),
        secrets=_secrets(raw),
        files=_files(raw),
        links=_links(raw),
        tls=_tls(raw.get("tls")),
        service_user=_service_user(raw.get("service_user")),
        networks=_networks(raw),
        container=container,
        extra_fingerprint=_str(raw, "fingerprint", "", default=""),
        instance=instance,
        image_check=image_check_from_dict(raw.get("image_check")),
        quadlet=quadlet,
    )
    _check_paths_unique(component)
    return component


def _check_paths_unique(component: Component) -> None:
    seen: Dict[str, str] = {}
    kinds = ([("directories", d.path) for d in component.directories] + [("secrets", s.path) for s in component.secrets]
             + [("files", f.path) for f in component.files] + [("links", link.path) for link in component.links])
    for kind, path in kinds:
        if path in seen:
            raise SpecError(kind, "%s is declared twice (also in %s)" % (path, seen[path]))
        seen[path] = kind


def components_from_list(raw: Any) -> List[Component]:
    """Several components; service names must be unique."""
    if not isinstance(raw, (list, tuple)):
        raise SpecError("components", "must be a list")
    result: List[Component] = []
    for item in raw:
        component = component_from_dict(item)
        if any(other.name == component.name for other in result):
            raise SpecError("components", "service %s is listed twice" % component.name)
        result.append(component)
    return result
