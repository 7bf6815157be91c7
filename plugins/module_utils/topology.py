# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one model of the stack's topology.

Which components are enabled decides who requires whom, where the proxy sends each route,
which identity server and mail relay Synapse and Element use, and the start order. Roles
never read each other's variables: the site playbook computes this once and hands each role
the values it needs.

Rules (from the history of matrix-docker-ansible-deploy, where these couplings first
appeared and were learnt the hard way):

* corporal on: the client API goes through corporal's gateway, which gets the homeserver
  address and both shared secrets; Synapse loads the shared-secret-auth provider. Corporal
  has no unit dependency on Synapse (see _service_nodes).
* identity on: the proxy routes /_matrix/identity to it; Synapse, /.well-known/matrix/client
  and Element name it. Off: they name the configured public identity server, or none.
* mailer on: Synapse's email goes through it; Synapse only *wants* it (mail being down
  must not take the homeserver down).
* postgres on: Synapse requires it. Off: external database settings are mandatory.
* element on: the proxy serves it on its hostname, which joins the TLS names.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Sequence

from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import ENGINE_MODES

COMPONENTS = ("postgres", "mailer", "synapse", "identity", "corporal", "element", "nginx_proxy")

SERVICE_NAMES = {
    "postgres": "hearth-postgres",
    "synapse": "hearth-synapse",
    "nginx_proxy": "hearth-nginx-proxy",
    "mailer": "hearth-mailer",
    "identity": "hearth-identity",
    "corporal": "hearth-corporal",
    "element": "hearth-element",
}

# Ports inside the stack network (unprivileged: every container runs without capabilities).
PORTS = {
    "postgres": 5432,
    "synapse": 8008,
    "mailer": 8025,
    "identity": 8090,
    "corporal": 41080,
    "element": 8080,
}

DEFAULT_NETWORK = "hearth"
# The stack network's subnet. Every component gets a fixed address in its upper half and
# every container an /etc/hosts entry for each component (--add-host), so no container
# needs the engine's DNS to find another: Debian 12's aardvark-dns 1.4 answers no query
# for tens of seconds while containers on the network start or stop (measured on the bed:
# lookups failed after 20-40 s during a converge). The engine hands out the lower half
# to containers that ask for no address (--ip-range).
DEFAULT_SUBNET = "10.89.91.0/24"
# Host number of each component in the upper half of the subnet (fixed: an address must not
# move when another component is switched on or off).
ADDRESS_OFFSETS = {"postgres": 10, "synapse": 11, "nginx_proxy": 12, "mailer": 13, "identity": 14,
                   "corporal": 15, "element": 16}
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,100}$")


_NOTHING = object()


class TopologyError(ValueError):
    """The stack description is contradictory or incomplete; ``field`` names the input.

    ``message`` may name other input fields as ``{0}``, ``{1}`` ... (``refs``), so that
    :meth:`render` can name every field the way the caller knows it (the playbooks name the
    user's hearth_* variables, see module_utils/stack.py). The offending value, if any, is
    kept apart in ``got``: it is the user's text and must never be read as a template.
    """

    def __init__(self, field_name: str, message: str, refs: Sequence[str] = (), got: Any = _NOTHING) -> None:
        self.field = field_name
        self.message = message
        self.refs = tuple(refs)
        self.got = got
        super().__init__(self.render(str, ": "))

    def detail(self, name_of: Callable[[str], str]) -> str:
        """The message with other fields named by ``name_of``, and the offending value."""
        text = self.message.format(*[name_of(ref) for ref in self.refs])
        if self.got is not _NOTHING:
            text += ", got %r" % (self.got,)
        return text

    def render(self, name_of: Callable[[str], str], separator: str = " ") -> str:
        """One line: the field (as ``name_of`` names it), then :meth:`detail`."""
        return name_of(self.field) + separator + self.detail(name_of)


@dataclass
class ServiceNode:
    name: str
    component: str
    requires: List[str] = field(default_factory=list)
    wants: List[str] = field(default_factory=list)
    after: List[str] = field(default_factory=list)
    networks: List[str] = field(default_factory=list)
    # Fixed address on the stack network ("" for user-defined extra services).
    address: str = ""
    # Containers told to reload once this service is ready (the proxy, for its upstreams).
    reload_on_ready: List[str] = field(default_factory=list)

    def ordering(self) -> List[str]:
        """Services this one starts after: every dependency implies ordering here."""
        seen: List[str] = []
        for dep in self.requires + self.wants + self.after:
            if dep not in seen:
                seen.append(dep)
        return seen

    def as_dict(self) -> Dict[str, Any]:
        return {
            "component": self.component,
            "requires": _units(self.requires),
            "wants": _units(self.wants),
            "after": _units(self.ordering()),
            "networks": list(self.networks),
            "address": self.address,
            "reload_on_ready": list(self.reload_on_ready),
        }


def _units(names: Sequence[str]) -> List[str]:
    return [name + ".service" for name in names]


def check_hostname(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not _HOSTNAME_RE.match(value):
        raise TopologyError(field_name, "must be a DNS name like matrix.example.org", got=value)
    return value


def _check_url(field_name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TopologyError(field_name, "must be a string URL or empty", got=value)
    if value and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise TopologyError(field_name, "must be an http(s) URL or empty", got=value)
    return value.rstrip("/")


def _enabled_components(raw: Any) -> Dict[str, bool]:
    if not isinstance(raw, Mapping):
        raise TopologyError("components", "must be a mapping of component name to boolean")
    unknown = set(raw) - set(COMPONENTS)
    if unknown:
        raise TopologyError("components", "unknown component(s): %s (known: %s)"
                            % (", ".join(sorted(unknown)), ", ".join(COMPONENTS)))
    enabled = {}
    for name in COMPONENTS:
        value = raw.get(name, False)
        if not isinstance(value, bool):
            raise TopologyError("components.%s" % name, "must be a boolean", got=value)
        enabled[name] = value
    return enabled


def _check_contradictions(enabled: Mapping[str, bool]) -> None:
    needs_synapse = ("corporal", "nginx_proxy", "postgres", "mailer", "identity")
    if not enabled["synapse"]:
        for name in needs_synapse:
            if enabled[name]:
                raise TopologyError("components.%s" % name, "is true but {0} is false: "
                                    "%s only makes sense in front of or beside Synapse" % name,
                                    refs=["components.synapse"])
    if enabled["corporal"] and not enabled["nginx_proxy"]:
        raise TopologyError("components.corporal", "needs {0}: corporal only enforces its policy "
                            "when the proxy sends the client API through it", refs=["components.nginx_proxy"])


def _external_database(raw: Any) -> Dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TopologyError("external_database", "is required when {0} is false "
                            "(a mapping with host, name, user and optionally port)", refs=["components.postgres"])
    result: Dict[str, Any] = {}
    for key in ("host", "name", "user"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise TopologyError("external_database.%s" % key, "is required when {0} is false",
                                refs=["components.postgres"])
        result[key] = value
    port = raw.get("port", 5432)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise TopologyError("external_database.port", "must be a port number (1-65535)", got=port)
    result["port"] = port
    return result


def topological_order(nodes: Mapping[str, ServiceNode]) -> List[str]:
    """Start order (Kahn's algorithm, ties broken by component order for stable output)."""
    rank = {name: index for index, name in enumerate(nodes)}
    for node in nodes.values():
        for dep in node.ordering():
            if dep not in nodes:
                raise TopologyError("services.%s" % node.name, "depends on %s, which is not enabled" % dep)
    pending = {name: set(node.ordering()) for name, node in nodes.items()}
    order: List[str] = []
    while pending:
        ready = sorted((name for name, deps in pending.items() if not deps), key=rank.__getitem__)
        if not ready:
            raise TopologyError("services", "dependency cycle: %s" % " -> ".join(_find_cycle(pending)))
        for name in ready:
            order.append(name)
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def _find_cycle(pending: Mapping[str, set]) -> List[str]:
    """One concrete cycle among services that could not be ordered, for the error message."""
    start = sorted(pending)[0]
    path = [start]
    current = start
    while True:
        current = sorted(dep for dep in pending[current] if dep in pending)[0]
        if current in path:
            return path[path.index(current):] + [current]
        path.append(current)


def _extra_services(raw: Any, nodes: Dict[str, ServiceNode], network: str) -> None:
    """User-defined services (bridges, bots ...) that take part in ordering and networks."""
    if raw is None:
        return
    if not isinstance(raw, (list, tuple)):
        raise TopologyError("extra_services", "must be a list")
    for index, item in enumerate(raw):
        where = "extra_services[%d]" % index
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise TopologyError(where, "must be a mapping with a name")
        name = item["name"]
        if not _SERVICE_RE.match(name):
            raise TopologyError(where + ".name", "is an invalid service name", got=name)
        if name in nodes:
            raise TopologyError(where + ".name", "is a duplicate service name", got=name)
        lists = {}
        for key in ("requires", "wants", "after"):
            value = item.get(key, [])
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise TopologyError("%s.%s" % (where, key), "must be a list of service names")
            lists[key] = [v[:-len(".service")] if v.endswith(".service") else v for v in value]
        nodes[name] = ServiceNode(name=name, component="extra", networks=[network], **lists)


@dataclass(frozen=True)
class StackInput:
    server_name: str
    matrix_hostname: str
    element_hostname: str
    enabled: Mapping[str, bool]
    public_identity_server: str
    network: str
    subnet: ipaddress.IPv4Network
    mailer_sender: str
    extra_hosts: Mapping[str, str] = field(default_factory=dict)


def _parse_input(stack: Mapping[str, Any]) -> StackInput:
    if not isinstance(stack, Mapping):
        raise TopologyError("stack", "must be a mapping")
    server_name = check_hostname("server_name", stack.get("server_name"))
    matrix_hostname = check_hostname("matrix_hostname", stack.get("matrix_hostname") or "matrix." + server_name)
    enabled = _enabled_components(stack.get("components", {}))
    _check_contradictions(enabled)
    element_hostname = stack.get("element_hostname") or "element." + server_name
    if enabled["element"]:
        check_hostname("element_hostname", element_hostname)
        if element_hostname == matrix_hostname:
            raise TopologyError("element_hostname", "must differ from {0}", refs=["matrix_hostname"], got=element_hostname)
    network = stack.get("network", DEFAULT_NETWORK)
    if not isinstance(network, str) or not _SERVICE_RE.match(network):
        raise TopologyError("network", "is not a valid network name", got=network)
    subnet = _subnet(stack.get("network_subnet", DEFAULT_SUBNET))
    mailer = stack.get("mailer") or {}
    if not isinstance(mailer, Mapping):
        raise TopologyError("mailer", "must be a mapping")
    sender = mailer.get("sender") or "matrix@%s" % server_name
    if not isinstance(sender, str) or not re.match(r"^[^@\s]+@[^@\s]+$", sender):
        raise TopologyError("mailer.sender", "must be an email address", got=sender)
    extra_hosts = _extra_hosts(stack.get("extra_hosts"))
    return StackInput(
        extra_hosts=extra_hosts,
        server_name=server_name,
        matrix_hostname=matrix_hostname,
        element_hostname=element_hostname,
        enabled=enabled,
        public_identity_server=_check_url("public_identity_server", stack.get("public_identity_server", "https://vector.im")),
        network=network,
        subnet=subnet,
        mailer_sender=sender,
    )


def _subnet(value: Any) -> ipaddress.IPv4Network:
    """An IPv4 subnet with room for the dynamic lower half and the fixed upper half."""
    try:
        subnet = ipaddress.IPv4Network(value, strict=True) if isinstance(value, str) else None
    except ValueError:
        subnet = None
    if subnet is None or subnet.prefixlen > 25:
        raise TopologyError("network_subnet", "must be an IPv4 subnet of at least 128 addresses written as "
                            "network/prefix, such as 10.89.91.0/24", got=value)
    return subnet


def _extra_hosts(raw: Any) -> Dict[str, str]:
    """The user's own /etc/hosts entries (name -> IPv4 address) for every container.

    On a real server DNS finds federation peers and mail hosts; these are for names DNS does
    not give the containers (split-horizon DNS, closed networks, the test bed). A component's
    name cannot be taken: it would send the stack's own traffic elsewhere.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TopologyError("extra_hosts", "must map host names to IPv4 addresses, e.g. {{matrix.example.net: 192.0.2.10}}",
                            got=raw)
    hosts: Dict[str, str] = {}
    for name in sorted(raw, key=str):
        where = "extra_hosts.%s" % (name,)
        check_hostname(where, name)
        if name in SERVICE_NAMES.values():
            raise TopologyError(where, "is the name of a component of the stack; pick another name")
        try:
            address = ipaddress.IPv4Address(raw[name]) if isinstance(raw[name], str) else None
        except ValueError:
            address = None
        if address is None:
            raise TopologyError(where, "must be an IPv4 address", got=raw[name])
        hosts[name] = str(address)
    return hosts


def component_address(subnet: ipaddress.IPv4Network, component: str) -> str:
    """The fixed address of a component: upper half of the subnet, plus its offset."""
    upper = subnet.network_address + subnet.num_addresses // 2
    return str(upper + ADDRESS_OFFSETS[component])


def dynamic_range(subnet: ipaddress.IPv4Network) -> str:
    """The lower half, where the engine places containers that ask for no address."""
    return str(next(subnet.subnets(prefixlen_diff=1)))


def _service_nodes(inp: StackInput) -> Dict[str, ServiceNode]:
    on = inp.enabled
    svc = SERVICE_NAMES
    nodes: Dict[str, ServiceNode] = {}
    for component in COMPONENTS:
        if on[component]:
            nodes[svc[component]] = ServiceNode(name=svc[component], component=component, networks=[inp.network],
                                                address=component_address(inp.subnet, component))
    if on["synapse"]:
        synapse = nodes[svc["synapse"]]
        if on["postgres"]:
            synapse.requires.append(svc["postgres"])
        if on["mailer"]:
            synapse.wants.append(svc["mailer"])
    # Corporal has no unit dependency on Synapse, like the proxy below: its gateway speaks
    # HTTP to Synapse's fixed address and answers (with an error) while Synapse is down, and
    # its reconciliation retries on its own interval (Reconciliation.RetryIntervalMilliseconds)
    # until Synapse answers. With Wants=/After=, a whole-stack restart kept the gateway down
    # until Synapse was ready again (its downtime was the whole restart), and Requires= would
    # also restart it with every Synapse restart.

    # The proxy has no dependency on its upstreams at all (the unit model orders a unit
    # after what it wants): every upstream has a fixed address in the proxy's /etc/hosts, so
    # nginx loads its config whether they run or not and never needs a reload to find one
    # again. A restart of the whole stack restarts the proxy at once instead of after
    # Synapse is ready (its downtime was the whole restart), and an upstream restart neither
    # restarts nor reloads it. nginx retries a request whose kept-alive connection died with
    # a restarted upstream on a new connection. Every unit is started by the playbooks and
    # at boot (WantedBy=multi-user.target), so nothing needs the proxy to pull them in.
    return nodes


def _identity_url(inp: StackInput) -> str:
    if inp.enabled["identity"]:
        return "https://%s" % inp.matrix_hostname
    return inp.public_identity_server


def _upstream(component: str) -> str:
    return "http://%s:%d" % (SERVICE_NAMES[component], PORTS[component])


def compute_topology(stack: Mapping[str, Any]) -> Dict[str, Any]:
    """Everything that crosses role boundaries, as plain JSON-serialisable data."""
    inp = _parse_input(stack)
    on = inp.enabled
    nodes = _service_nodes(inp)
    _extra_services(stack.get("extra_services"), nodes, inp.network)
    order = topological_order(nodes)
    if not on["postgres"] and on["synapse"]:
        database = _external_database(stack.get("external_database"))
    else:
        database = {"host": SERVICE_NAMES["postgres"], "port": PORTS["postgres"], "name": "synapse", "user": "synapse"}
    identity = _identity_url(inp)
    base_url = "https://%s" % inp.matrix_hostname

    well_known_client: Dict[str, Any] = {"m.homeserver": {"base_url": base_url}}
    if identity:
        well_known_client["m.identity_server"] = {"base_url": identity}

    result: Dict[str, Any] = {
        "network": inp.network,
        "network_subnet": str(inp.subnet),
        "network_dynamic_range": dynamic_range(inp.subnet),
        # name -> address of every component, enabled or not: each container's /etc/hosts
        # entries. All of them, so that switching one component on or off changes no other
        # container (and restarts none).
        "hosts": {SERVICE_NAMES[c]: component_address(inp.subnet, c) for c in COMPONENTS},
        # The user's own entries (hearth_extra_hosts), added to every container's /etc/hosts.
        "extra_hosts": dict(inp.extra_hosts),
        "server_name": inp.server_name,
        "matrix_hostname": inp.matrix_hostname,
        "enabled": dict(on),
        "services": {name: node.as_dict() for name, node in nodes.items()},
        "start_order": order,
        "stop_order": list(reversed(order)),
        # /.well-known/matrix/server is the proxy's: it knows its federation port.
        "well_known": {"client": well_known_client},
        # Secrets that more than one role must agree on; the playbook creates them once.
        "shared_secrets": _shared_secrets(on),
    }
    if on["synapse"]:
        result["synapse"] = {
            "public_baseurl": base_url + "/",
            "database": database,
            "email": _email(inp),
            "identity_server": identity,
            "shared_secret_auth": on["corporal"],
        }
    if on["nginx_proxy"]:
        result["proxy"] = _proxy(inp)
    result["element"] = _element(inp, identity) if on["element"] else None
    result["corporal"] = {
        "homeserver_api": _upstream("synapse"),
        "homeserver_domain": inp.server_name,
        "gateway_port": PORTS["corporal"],
    } if on["corporal"] else None
    result["identity"] = {"public_url": identity, "port": PORTS["identity"], "server_name": inp.matrix_hostname} if on["identity"] else None
    result["mailer"] = {"port": PORTS["mailer"], "sender": inp.mailer_sender} if on["mailer"] else None
    _add_role_inputs(result, stack)
    return result


def _add_role_inputs(result: Dict[str, Any], stack: Mapping[str, Any]) -> None:
    """What the site playbook hands the roles (module_utils/role_vars.py)."""
    # Imported here: role_vars builds on this module's constants.
    from ansible_collections.hearth.matrix.plugins.module_utils import role_vars as rv

    engine = stack.get("engine", "docker")
    if engine not in ENGINE_MODES:
        raise TopologyError("engine", "must be one of %s, got %r" % (", ".join(ENGINE_MODES), engine))
    base_dir = stack.get("base_dir", "/opt/hearth-matrix")
    if (not isinstance(base_dir, str) or not re.match(r"^(/[A-Za-z0-9._-]+)+$", base_dir)
            or any(part in (".", "..") for part in base_dir.split("/"))):
        raise TopologyError("base_dir", "must be an absolute path such as /opt/hearth-matrix, got %r" % (base_dir,))
    result["role_vars"] = rv.role_vars(result, engine, base_dir, stack.get("images") or {})
    result["removed"] = rv.removed_components(result, engine)
    result["shared_secrets_component"] = rv.shared_secrets_component(result, engine, base_dir)


def _shared_secrets(on: Mapping[str, bool]) -> Dict[str, List[str]]:
    secrets: Dict[str, List[str]] = {}
    if on["synapse"]:
        secrets["registration_shared_secret"] = ["synapse"] + (["corporal"] if on["corporal"] else [])
    if on["corporal"]:
        secrets["shared_secret_auth"] = ["synapse", "corporal"]
    if on["postgres"] and on["synapse"]:
        secrets["postgres_synapse_password"] = ["postgres", "synapse"]
    return secrets


def _email(inp: StackInput) -> Dict[str, Any]:
    if not inp.enabled["mailer"]:
        return {"enabled": False}
    return {
        "enabled": True,
        "smtp_host": SERVICE_NAMES["mailer"],
        "smtp_port": PORTS["mailer"],
        "notif_from": "Matrix <%s>" % inp.mailer_sender,
    }


def _proxy(inp: StackInput) -> Dict[str, Any]:
    on = inp.enabled
    tls_domains = [inp.matrix_hostname]
    if inp.server_name != inp.matrix_hostname:
        # The server name serves /.well-known/matrix/* so it needs a certificate too.
        tls_domains.append(inp.server_name)
    element = None
    if on["element"]:
        element = {"hostname": inp.element_hostname, "upstream": _upstream("element")}
        tls_domains.append(inp.element_hostname)
    return {
        "matrix_hostname": inp.matrix_hostname,
        "server_name": inp.server_name,
        "client_upstream": _upstream("corporal" if on["corporal"] else "synapse"),
        "federation_upstream": _upstream("synapse"),
        "identity_upstream": _upstream("identity") if on["identity"] else "",
        "element": element,
        "tls_domains": tls_domains,
    }


def _element(inp: StackInput, identity: str) -> Dict[str, Any]:
    config: Dict[str, Any] = {
        "default_server_config": {
            "m.homeserver": {"base_url": "https://%s" % inp.matrix_hostname, "server_name": inp.server_name},
        },
        "disable_custom_urls": False,
        "brand": "Element",
        "room_directory": {"servers": [inp.server_name]},
    }
    if identity:
        config["default_server_config"]["m.identity_server"] = {"base_url": identity}
    return {"hostname": inp.element_hostname, "config": config}
