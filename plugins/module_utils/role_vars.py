# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each role receives in the site playbook: its variables, computed from the topology.

Roles never read each other's variables. The site playbook sets these (one set_fact) and
runs the roles; a component added to the stack brings its rules here and in topology.py,
and nothing else in the playbooks grows. Secrets are handed over as host paths, never as
values: a role puts a path into its config with ``secret_ref`` and the module fills it in
on the host.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible_collections.hearth.matrix.plugins.module_utils.topology import PORTS, SERVICE_NAMES

# Role directory names under <base dir>.
BASE_DIRS = {
    "postgres": "postgres",
    "synapse": "synapse",
    "nginx_proxy": "nginx-proxy",
    "mailer": "mailer",
    "identity": "identity",
    "corporal": "corporal",
    "element": "element",
}


def shared_secret_path(base_dir: str, name: str) -> str:
    """Where the site playbook keeps a secret several roles share (root only)."""
    return "%s/secrets/%s" % (base_dir, name)


def _plumbing(component: str, topology: Mapping[str, Any], engine: str, base_dir: str) -> Dict[str, Any]:
    service = topology["services"][SERVICE_NAMES[component]]
    return {
        "enabled": True,
        "engine": engine,
        "base_dir": "%s/%s" % (base_dir, BASE_DIRS[component]),
        "container_networks": list(service["networks"]),
        "container_address": service["address"],
        # Every other component by name, so no lookup goes through the engine's DNS, plus
        # the user's own entries (federation peers DNS does not give the containers).
        "container_hosts": dict({name: address for name, address in topology["hosts"].items()
                                 if name != SERVICE_NAMES[component]}, **topology.get("extra_hosts", {})),
        "requires": list(service["requires"]),
        "wants": list(service["wants"]),
        "after": list(service["after"]),
        "reload_on_ready": list(service.get("reload_on_ready", [])),
    }


def _component_values(component: str, topology: Mapping[str, Any], base_dir: str) -> Dict[str, Any]:
    def secret(name: str) -> str:
        return shared_secret_path(base_dir, name)

    on = topology["enabled"]
    if component == "postgres":
        database = topology["synapse"]["database"]
        return {"db_name": database["name"], "db_user": database["user"],
                "password_file": secret("postgres_synapse_password"), "port": PORTS["postgres"]}
    if component == "synapse":
        synapse = topology["synapse"]
        email = synapse["email"]
        values = {
            "server_name": topology["server_name"],
            "public_baseurl": synapse["public_baseurl"],
            "database_host": synapse["database"]["host"],
            "database_port": synapse["database"]["port"],
            "database_name": synapse["database"]["name"],
            "database_user": synapse["database"]["user"],
            "registration_shared_secret_file": secret("registration_shared_secret"),
            "shared_secret_auth_enabled": synapse["shared_secret_auth"],
            "identity_server_url": synapse["identity_server"],
            "email_enabled": email["enabled"],
            "listener_port": PORTS["synapse"],
        }
        if on["postgres"]:
            values["database_password_file"] = secret("postgres_synapse_password")
        if synapse["shared_secret_auth"]:
            values["shared_secret_auth_secret_file"] = secret("shared_secret_auth")
        if email["enabled"]:
            values.update(email_smtp_host=email["smtp_host"], email_smtp_port=email["smtp_port"],
                          email_notif_from=email["notif_from"])
        return values
    if component == "nginx_proxy":
        proxy = topology["proxy"]
        return {
            "matrix_hostname": proxy["matrix_hostname"],
            "server_name": proxy["server_name"],
            "client_upstream": proxy["client_upstream"],
            "federation_upstream": proxy["federation_upstream"],
            "identity_upstream": proxy["identity_upstream"],
            "element": proxy["element"],
            "well_known_client": topology["well_known"]["client"],
        }
    if component == "mailer":
        return {"sender": topology["mailer"]["sender"], "port": topology["mailer"]["port"]}
    if component == "identity":
        identity = topology["identity"]
        values = {"server_name": identity["server_name"], "port": identity["port"], "email_enabled": on["mailer"]}
        if on["mailer"]:
            # Sydent's own mail (its 3PID sessions) goes through the stack's relay.
            values.update(email_smtp_host=SERVICE_NAMES["mailer"], email_smtp_port=PORTS["mailer"],
                          email_from=topology["mailer"]["sender"])
        return values
    if component == "corporal":
        corporal = topology["corporal"]
        return {
            "homeserver_domain_name": corporal["homeserver_domain"],
            "homeserver_api_endpoint": corporal["homeserver_api"],
            "gateway_port": corporal["gateway_port"],
            # The same secrets Synapse gets: corporal registers users and logs in as them.
            "registration_shared_secret_file": secret("registration_shared_secret"),
            "auth_shared_secret_file": secret("shared_secret_auth"),
        }
    if component == "element":
        servers = topology["element"]["config"]["default_server_config"]
        return {
            "default_homeserver_url": servers["m.homeserver"]["base_url"],
            "default_server_name": servers["m.homeserver"]["server_name"],
            "identity_server_url": servers.get("m.identity_server", {}).get("base_url", ""),
            "port": PORTS["element"],
        }
    raise ValueError("no role variables for component %r" % component)


def role_vars(topology: Mapping[str, Any], engine: str, base_dir: str,
              images: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``<role>_<option>`` -> value for every enabled component's role, and common's.

    ``images`` (hearth_images): the image of a component, where the user gave one.
    """
    result: Dict[str, Any] = {
        "common_engine": engine,
        "common_base_dir": base_dir,
        "common_networks": [topology["network"]],
        "common_network_subnet": topology["network_subnet"],
    }
    for component, enabled in topology["enabled"].items():
        if not enabled:
            continue
        values = _plumbing(component, topology, engine, base_dir)
        values.update(_component_values(component, topology, base_dir))
        if component in (images or {}):
            values["image"] = images[component]
        result.update(("%s_%s" % (component, key), value) for key, value in values.items())
    return result


def beyond_defaults(values: Mapping[str, Any], defined: Any, defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """The role variables the play must set: those the user has not set (``defined``: the
    names the play knows) and whose value differs from the role's own default. Setting the
    others changes nothing (the role's default is the same value) and costs the play one
    loop item each (measured: 118 items, about 15 ms each, 72 of them equal to the default
    for the full stack). A default that holds Jinja is never taken as equal."""
    def same(key: str, value: Any) -> bool:
        if key not in defaults:
            return False
        default = defaults[key]
        if isinstance(default, str) and ("{{" in default or "{%" in default):
            return False
        return bool(default == value and type(default) is type(value))
    return {key: value for key, value in values.items() if key not in defined and not same(key, value)}


def removed_components(topology: Mapping[str, Any], engine: str) -> list:
    """The disabled components, as components to remove (unit and container; data stays)."""
    return [{"name": SERVICE_NAMES[component], "state": "absent", "engine": engine}
            for component, enabled in topology["enabled"].items() if not enabled]


def shared_secrets_component(topology: Mapping[str, Any], engine: str, base_dir: str) -> Dict[str, Any]:
    """The secrets several roles share, as a files-only component (generated once, root only)."""
    return {
        "name": "hearth-shared-secrets",
        "engine": engine,
        "directories": [{"path": "%s/secrets" % base_dir, "owner": "root", "group": "root", "mode": "0700"}],
        "secrets": [shared_secret_path(base_dir, name) for name in topology["shared_secrets"]],
    }
