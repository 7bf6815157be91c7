#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: component
short_description: Converge components of the stack (files, image, unit, service) in one call
version_added: "0.2.0"
description:
  - Takes the whole desired state of one or more components and converges it on the host in
    one execution. For each component, in the order given - its directories (owner, group,
    mode), its secrets (generated once, never regenerated), its config files (rendered on the
    controller, written atomically; an unchanged file is not touched), links, a self-signed
    certificate when asked, the image (pulled only when missing; its ID decides restarts with
    the files), the container networks, and the systemd unit (the collection's one model of a
    unit and of a container).
  - Then the services, with as few systemd calls as possible - one C(daemon-reload) when a
    unit changed, one C(enable) for the units not enabled yet, and one C(restart) job
    transaction for every service that is not running or whose unit changed, so systemd
    orders the starts by the units' own dependencies. A service whose unit is unchanged and
    that runs is left alone.
  - A component with C(state=absent) loses its unit and its container; its data
    directories stay.
  - A component's C(instance) (the action plugin sets C(<role>@<base dir>)) is written into
    its unit. A unit of the same instance under another name (the service was renamed) is
    stopped and removed with its container before the services start; data stays.
  - A change of engine mode between rootful and rootless (C(hearth_engine)) keeps the data.
    Each component's base directory records the id mapping its files were last given
    (C(.hearth-owners); none means rootful). When it differs, the other mode's services of
    that instance are stopped and removed with their containers, and the owner and group of
    every file under the component's directories are translated to the same container ids
    under the new mapping, before the services start.
  - A file may name a secret that lives on the host with the marker
    C(@@hearth-secret:/absolute/path@@) (filter M(hearth.matrix.secret_ref)); the module puts
    the secret's value there on the host, so the value never travels to the controller, and
    such files are never shown in a diff.
  - With the action plugin of the same name, a role passes O(role) and the shared options
    C(<role>_enabled), C(_engine), C(_service_name), C(_image), C(_uid), C(_gid),
    C(_base_dir), C(_container_networks), C(_manage_networks), C(_container_address),
    C(_container_hosts), C(_container_ports),
    C(_memory), C(_cpu_shares), C(_pids_limit), C(_stop_timeout), C(_ready_timeout), C(_requires),
    C(_wants), C(_after), C(_reload_on_ready) are read from the role's variables and checked
    on the controller; errors name the variable. When the variable C(hearth_plan) is true the
    component is only checked and added to the fact C(hearth_planned_components), so a
    playbook can check every component before anything changes and converge them all in one
    call.
options:
  role:
    description:
      - Prefix of the calling role's variables (for example V(synapse)); the action plugin
        builds one component from them, O(spec) and O(checks).
    type: str
  spec:
    description:
      - The component's own part of the desired state when O(role) is given - C(description),
        C(directories), C(secrets), C(files), C(links), C(tls), C(container) (mounts, tmpfs,
        env, health check, command ...; image, user, networks, address, hosts, ports and limits
        come from the shared options).
    type: dict
  checks:
    description:
      - Rules of the role that the argument spec cannot express, checked on the controller
        before anything changes, each C(ok) (boolean) and C(msg) (names the variable).
    type: list
    elements: dict
    default: []
  components:
    description:
      - Complete components, converged in the order given. Keys - C(name), C(state)
        (V(started) or V(absent)), C(engine), C(description), C(pull), C(create_networks),
        C(requires), C(wants), C(after), C(reload_on_ready), C(ready_timeout),
        C(restart_sec), C(directories) (C(path/owner/group/mode)), C(secrets)
        (C(path/owner/group/mode/length/format)), C(files)
        (C(path/content|src/owner/group/mode/restart/secret/label/pem)), C(links) (C(path/src)),
        C(tls) (C(ca_dir/tls_dir/domains/common_name/key_owner/key_group/cert_group/days/ca_days/replaceable)),
        C(container), C(fingerprint), C(instance), C(image_check) (C(kind/variable/config/python)),
        C(quadlet).
      - C(quadlet) (podman 4.4 or later only) - the service is a Quadlet file
        C(<quadlet_dir>/<name>.container) from which systemd generates C(<name>.service), not
        a unit in O(unit_dir); a files-only component's C(networks) also get
        C(<quadlet_dir>/<network>.network) files. On podman 5.0 or later a service with a
        health check uses C(Notify=healthy). A service that changes format is restarted from
        its new file and its old file is removed. The site playbook sets it from
        C(hearth_podman_quadlet).
      - C(image_check) with C(kind=synapse_schema) - before anything changes, when the image
        differs from the one the component's unit was written for, the new image runs once
        (C(<engine> run --rm), the component's user, networks and host entries, every mount
        read-only, no ports or fixed address) to read Synapse's C(SCHEMA_VERSION) and the
        database's C(schema_compat_version) (from the config file C(config)); the run fails,
        naming C(variable), when Synapse would refuse the database (compat version above the
        image's schema version) or the database cannot be read. Also in check mode.
      - The container spec (C(container)) - V(image), V(user) (C(uid:gid)), V(root_reason),
        V(cap_add), V(read_only), V(tmpfs) (paths or C(path/size/mode) dicts), V(mounts)
        (C(source/target/read_only) dicts, absolute paths), V(networks) (first is primary),
        V(address) (a fixed IPv4 address on the primary network), V(hosts) (host name to IPv4
        address, the container's C(/etc/hosts) entries),
        V(ports) (C(host_address/host_port/container_port/protocol) dicts), V(env_file),
        V(env), V(labels), V(sysctls) (only namespaced ones - C(net.*), C(kernel.shm*),
        C(kernel.msg*), C(kernel.sem), C(fs.mqueue.*)), V(healthcheck)
        (C(command/interval/timeout/retries/start_period)), V(memory) (at least C(32m)),
        V(cpu_shares) (2 to 262144), V(pids_limit),
        V(stop_timeout), V(command), V(entrypoint), V(workdir). The container runs non-root
        with all capabilities dropped, C(no-new-privileges) and a read-only root unless the
        spec says otherwise; root or an added capability needs V(root_reason).
      - Without C(container) a component is files only (directories, secrets, files, the
        service user C(service_user) (C(name/uid/group/gid/home/sysusers_dir)) and networks
        C(networks) (names, or C(name/subnet) dicts - a subnet of at least 128 IPv4 addresses,
        created with its lower half as the engine's range; an existing network with another
        subnet is an error)), converged before every service.
    type: list
    elements: dict
  unit_dir:
    description: Directory for the unit files.
    type: path
    default: /etc/systemd/system
  quadlet_dir:
    description: Directory for the Quadlet files of components with C(quadlet).
    type: path
    default: /etc/containers/systemd
  pending_dir:
    description:
      - Where a restart that is due is recorded until it has happened, so a run that stops
        between writing a unit and restarting its service still restarts it next time. On
        a tmpfs (C(/run)) - after a reboot every service has started anew anyway.
    type: path
    default: /run/hearth-matrix/pending-restart
  remove_units:
    description:
      - Units (in O(unit_dir)) left by a feature that is turned off, for example the ACME
        renewal timer - each one present is stopped, disabled and deleted (one
        C(daemon-reload) after). Absent ones are fine.
    type: list
    elements: str
    default: []
  remove_files:
    description:
      - Absolute paths of files such a feature left - each one present is deleted.
    type: list
    elements: path
    default: []
  rootless:
    description:
      - Settings of a rootless engine mode (C(engine=podman_rootless)); the action plugin
        fills them from C(hearth_rootless_user), C(hearth_rootless_home) and
        C(hearth_rootless_unprivileged_port_start).
      - Before anything changes - an existing O(rootless.user) without a subordinate uid and
        gid range of at least 65536 ids, or a published port below the opt-in
        O(rootless.unprivileged_port_start) when it is set, is an error naming the variable.
      - Then the user is created when missing (system user, home O(rootless.home), a free
        subordinate range of 65536 ids), linger is enabled, its systemd instance is started,
        units go to C(<home>/.config/systemd/user) and the engine and C(systemctl --user) run
        as the user. Every owner and group is the host id the container's id maps to (root
        is the user, uid U is the range's start + U - 1). An image missing from the user's
        store is copied from root's store. On a cgroup v1 host the memory, pids and CPU
        limits are dropped with a warning naming each C(<role>_*) variable.
      - Without O(rootless.unprivileged_port_start), a container that publishes a TCP port below
        1024 is socket-activated - C(/etc/systemd/system/<name>.socket) (PID 1 listens on
        every published address and port) and C(/etc/systemd/system/<name>.service), the same
        unit as a system unit with C(User=) the service user, in place of its user unit; the
        container gets the sockets as fds 3, 4, ... and no published ports. C(state=absent)
        removes both files.
    type: dict
    suboptions:
      user:
        description: The service user that owns the engine and the units.
        type: str
        default: hearth
      home:
        description: Its home (engine storage, units); default C(/var/lib/<user>).
        type: str
      unprivileged_port_start:
        description: Opt-in value of C(net.ipv4.ip_unprivileged_port_start) (persisted in C(/etc/sysctl.d)).
        type: int
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
author:
  - Hearth Matrix contributors (@hearth-matrix)
"""

EXAMPLES = r"""
- name: Converge Synapse from the synapse_* variables of the calling role
  hearth.matrix.component:
    role: synapse
    spec:
      description: Synapse Matrix homeserver
      directories:
        - {path: /opt/hearth-matrix/synapse/config, owner: root, group: "991", mode: "0750"}
      files:
        - path: /opt/hearth-matrix/synapse/config/homeserver.yaml
          content: "{{ lookup('ansible.builtin.template', 'homeserver.yaml.j2') }}"
          group: "991"
          mode: "0640"
      container:
        mounts:
          - {source: /opt/hearth-matrix/synapse/config, target: /config}

- name: Remove a component (unit and container; data stays)
  hearth.matrix.component:
    components:
      - {name: hearth-identity, state: absent, engine: docker}
"""

RETURN = r"""
components:
  description: Per service - C(changed), C(changes) (what changed, in words), C(started), C(restarted).
  returned: always
  type: dict
  sample: {"hearth-synapse": {"changed": true, "changes": ["file /opt/x: updated"], "started": false, "restarted": true}}
restarted:
  description: Services restarted because something they depend on changed.
  returned: always
  type: list
  elements: str
  sample: [hearth-synapse]
started:
  description: Services that were not running and were started.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hearth.matrix.plugins.module_utils.component import Component, components_from_list
from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import IdMap
from ansible_collections.hearth.matrix.plugins.module_utils.image_check import image_changes, run_image_check
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import (
    HostError,
    check_sources,
    Report,
    ensure_directory,
    ensure_file,
    ensure_link,
    ensure_secret,
    ensure_service_user,
)
from ansible_collections.hearth.matrix.plugins.module_utils.mode_switch_host import mark, switch_modes
from ansible_collections.hearth.matrix.plugins.module_utils.placement import Kind, Placement, Scope, place_services
from ansible_collections.hearth.matrix.plugins.module_utils.rootless_host import setup_engine_mode
from ansible_collections.hearth.matrix.plugins.module_utils.service_state import (
    EngineCache,
    HostFacts,
    daemon_reload,
    detect_facts,
    ensure_image,
    ensure_networks,
    prefetch,
    read_text,
    remove_leftovers,
    remove_service,
    restart_relevant,
    systemctl,
    unit_spec,
    unit_states,
    unit_text,
    units_of_instances,
    write_unit,
)
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import render_container
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet_state import (
    check_quadlet,
    drop_other_format,
    ensure_network_files,
    other_format_file,
    remove_quadlet_service,
)
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import (
    RootlessAccount,
    ensure_socket,
    remove_socket_service,
    restart_socket,
)
from ansible_collections.hearth.matrix.plugins.module_utils.tls import ensure_self_signed
from ansible_collections.hearth.matrix.plugins.module_utils.unit import check_unit_names

ARGUMENT_SPEC: Dict[str, Any] = {
    "role": {"type": "str"},
    "spec": {"type": "dict"},
    "checks": {"type": "list", "elements": "dict", "default": []},
    "components": {"type": "list", "elements": "dict"},
    "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
    "quadlet_dir": {"type": "path", "default": "/etc/containers/systemd"},
    "pending_dir": {"type": "path", "default": "/run/hearth-matrix/pending-restart"},
    "remove_units": {"type": "list", "elements": "str", "default": []},
    "remove_files": {"type": "list", "elements": "path", "default": []},
    # Only for a rootless engine mode; the action plugin fills it from hearth_rootless_*.
    "rootless": {"type": "dict", "options": {
        "user": {"type": "str", "default": "hearth"},
        "home": {"type": "str"},
        "unprivileged_port_start": {"type": "int"},
    }},
}
# systemd's states of a service that runs or is on its way there: not started again.
RUNNING_STATES = ("active", "activating", "reloading")


@dataclass
class Run:
    """What the steps of one converge share.

    ``system`` is the module as root: the system manager, the sockets of socket-activated
    services, leftovers, the engine-mode switch. ``host`` is the engine mode's: the same
    module in a rootful mode; in a rootless one it runs the engine and ``systemctl --user``
    as the service user, its ``params["unit_dir"]`` is that user's unit directory, and it
    carries the user (``account``) and the id mapping of the data (``idmap``)."""

    system: AnsibleModule
    host: Any
    facts: Dict[str, HostFacts]          # per engine of the components
    caches: Dict[str, EngineCache]       # per engine
    reports: Dict[str, Report] = field(default_factory=dict)   # per component, in the order they change

    @property
    def any_facts(self) -> HostFacts:
        """For systemctl calls: every engine's facts name the same systemctl."""
        return next(iter(self.facts.values()))

    @property
    def check_mode(self) -> bool:
        return bool(self.host.check_mode)

    @property
    def account(self) -> Optional[RootlessAccount]:
        """The rootless service user, None in a rootful mode."""
        return getattr(self.host, "account", None)

    @property
    def idmap(self) -> Optional[IdMap]:
        """How container ids map to host ids in a rootless mode; None when rootful."""
        return getattr(self.host, "idmap", None)

    @property
    def unit_dir(self) -> str:
        """The engine mode's unit directory (the service user's in a rootless mode)."""
        return str(self.host.params["unit_dir"])

    @property
    def system_unit_dir(self) -> str:
        return str(self.system.params["unit_dir"])

    @property
    def quadlet_dir(self) -> str:
        return str(self.host.params["quadlet_dir"])

    def report(self, name: str) -> Report:
        return self.reports.setdefault(name, Report())

    def on(self, scope: Scope) -> Any:
        """The host whose systemd runs units of ``scope``."""
        return self.system if scope is Scope.SYSTEM else self.host

    def restart_pending(self, name: str) -> bool:
        """A run that died between writing a unit and restarting its service left a marker."""
        return os.path.exists(os.path.join(self.host.params["pending_dir"], name))


@dataclass(frozen=True)
class SocketService:
    """A socket-activated service after its files were converged."""

    socket_changed: bool   # the .socket changed: socket and service restart together
    restart_due: bool      # the unit changed (beyond reload lines) or a restart is pending


@dataclass
class ServiceSteps:
    """What systemd must do once every service's files and unit are converged."""

    reload_engine: bool = False    # daemon-reload of the engine mode's instance
    reload_system: bool = False    # daemon-reload of the system manager after the transaction
    enable: List[str] = field(default_factory=list)
    start: List[str] = field(default_factory=list)     # not running
    restart: List[str] = field(default_factory=list)   # running, but its unit changed or a restart is due
    sockets: Dict[str, SocketService] = field(default_factory=dict)   # started after the transaction


def _converge_files(module: AnsibleModule, facts: HostFacts, component: Component, report: Report,
                    cache: EngineCache) -> None:
    if component.service_user is not None:
        ensure_service_user(module, module.get_bin_path("systemd-sysusers"), module.get_bin_path("useradd"),
                            module.get_bin_path("groupadd"), component.service_user, report)
    for directory in component.directories:
        ensure_directory(module, directory, report)
    for secret in component.secrets:
        ensure_secret(module, secret, report)
    for item in component.files:
        ensure_file(module, item, report)
    for link in component.links:
        ensure_link(module, link, report)
    if component.tls is not None:
        reasons = len(report.restart_reasons)
        ensure_self_signed(module, facts.openssl, component.tls, report)
        if module.check_mode and len(report.restart_reasons) > reasons:
            # Not issued in check mode: the new certificate's restart must still be predicted.
            report.digests.append("tls=to-be-issued")
        elif component.tls.replaceable:
            report.digests.append("tls=replaceable")
        else:
            report.digests.append("tls=%s" % (read_text(os.path.join(component.tls.tls_dir, "server.crt")) or ""))
    if component.networks:
        ensure_networks(module, facts, component.networks, report, cache)


def _converge_unit(module: AnsibleModule, facts: HostFacts, component: Component, unit_path: str,
                   report: Report, cache: EngineCache, podman_version: Tuple[int, ...],
                   transform: Optional[Callable[[str], str]] = None) -> Tuple[bool, bool]:
    """Everything but the service state; (unit changed, restart needed). ``transform``: the
    rendered unit turned into another scope's (socket activation's system unit)."""
    _converge_files(module, facts, component, report, cache)
    if component.container is None:
        raise HostError("container", "%s has no container, so no unit" % component.name)
    if component.create_networks:
        ensure_networks(module, facts, component.container.networks, report, cache)
    image_id = ensure_image(module, facts, component, report, cache)
    if component.quadlet:
        text = render_container(unit_spec(facts, component, image_id, report), podman_version)
    else:
        text = unit_text(facts, component, image_id, report)
    if transform is not None:
        text = transform(text)
    before = read_text(unit_path)
    if before == text:
        return False, False
    report.changes.append("unit %s: %s" % (unit_path, "written" if before is None else "updated"))
    report.diffs.append({"before_header": unit_path, "after_header": unit_path, "before": before or "", "after": text})
    if not module.check_mode:
        if not os.path.isdir(os.path.dirname(unit_path)):
            raise HostError("unit_dir", "%s does not exist" % os.path.dirname(unit_path))
        write_unit(unit_path, text)
    return True, restart_relevant(before) != restart_relevant(text)


# --- before anything changes ------------------------------------------------------------------

def _prepare(module: AnsibleModule, components: List[Component]) -> Tuple[Run, List[Component]]:
    """The engine mode set up (rootless: the service user checked and prepared, the owners
    mapped to its ids) and the host facts of each engine."""
    host, components, prepared = setup_engine_mode(module, components)
    facts: Dict[str, HostFacts] = {}
    for component in components:
        if component.engine not in facts:
            facts[component.engine] = detect_facts(host, host, component.engine)
    run = Run(system=module, host=host, facts=facts, caches={engine: EngineCache() for engine in facts})
    if prepared is not None:
        run.reports["hearth-rootless"] = prepared
    return run, components


def _switch_engine_modes(run: Run, components: List[Component]) -> List[str]:
    """Another engine mode ran this stack before: its services go, the data's owners follow
    (mode_switch_host.py). Returns the base directories to mark once they exist."""
    return switch_modes(run.system, run.any_facts, components, run.idmap, run.reports,
                        {"unit_dir": run.system_unit_dir, "quadlet_dir": run.quadlet_dir,
                         "podman": run.system.get_bin_path("podman") or ""})


def _quadlet_podman_version(run: Run, components: List[Component]) -> Tuple[int, ...]:
    """Quadlet needs podman >= 4.4: refused here, before anything changes (the error names
    the variable). () without a Quadlet service."""
    if not any(c.quadlet and c.state == "started" for c in components):
        return ()
    return check_quadlet(run.host, run.facts["podman"])


def _prefetch(run: Run, components: List[Component]) -> None:
    """One image inspect and one network inspect per engine for the whole run."""
    for engine, facts in run.facts.items():
        mine = [c for c in components if c.engine == engine and c.state == "started"]
        prefetch(run.host, facts, [c.image for c in mine if c.container is not None],
                 [n.name for c in mine for n in c.networks]
                 + [n for c in mine if c.container is not None and c.create_networks for n in c.container.networks],
                 run.caches[engine])


def _check_images(run: Run, placements: List[Placement]) -> None:
    """Before anything changes: a service whose image changes must accept the new image
    (image_check). Which image runs now is in the fingerprint of the unit where the service
    is placed. A run that keeps every image reads only the units it reads anyway."""
    for placement in placements:
        component = placement.component
        check, spec = component.image_check, component.container
        if check is None or spec is None:
            continue
        facts, cache = run.facts[component.engine], run.caches[component.engine]
        image_id = ensure_image(run.host, facts, component, run.report(component.name), cache)
        if image_id.startswith("("):
            continue   # check mode, image not pulled yet: nothing to probe
        cache.image_ids[component.image] = image_id
        if not image_changes(read_text(placement.unit_path), image_id):
            continue
        refusal = run_image_check(run.host, component.engine, facts.engine_path, spec, check, image_id)
        if refusal is not None:
            raise HostError(check.variable, refusal[len(check.variable) + 2:])


# --- files, units and services ----------------------------------------------------------------

def _converge_files_only(run: Run, components: List[Component]) -> bool:
    """Files-only components (e.g. the secrets several services share), before any service
    reads them. Returns whether a Quadlet network file changed (systemd must reload)."""
    network_files = False
    for component in components:
        if component.state != "started" or component.container is not None:
            continue
        report = run.report(component.name)
        _converge_files(run.host, run.facts[component.engine], component, report, run.caches[component.engine])
        if component.engine == "podman" and component.networks:
            network_files = ensure_network_files(run.host, component, run.quadlet_dir, report) or network_files
    return network_files


def _remove_renamed(run: Run, components: List[Component]) -> bool:
    """Stop and remove the unit and container of every instance that has another service name
    now (<role>_service_name changed); data stays. Before the new service starts: the two would
    share the data directories, the fixed address and the published ports."""
    current = {c.instance: c.name for c in components if c.instance}
    by_name = {c.name: c for c in components}
    removed = False
    for old_name, old_path, instance in units_of_instances(run.unit_dir, current):
        component = by_name[current[instance]]
        removed = remove_service(run.host, run.facts[component.engine], old_name, old_path,
                                 run.report(component.name)) or removed
    for old_name, old_path, instance in units_of_instances(run.quadlet_dir, current, ".container"):
        component = by_name[current[instance]]
        removed = remove_quadlet_service(run.host, run.facts[component.engine], old_name, old_path,
                                         run.report(component.name)) or removed
    return removed


def _converge_services(run: Run, placements: List[Placement], podman_version: Tuple[int, ...]) -> ServiceSteps:
    """Each service's files, image and unit, in the order given; what systemd must do then.
    One ``systemctl show`` for all of them (the engine mode's instance)."""
    states = unit_states(run.host, run.any_facts, [p.name for p in placements])
    steps = ServiceSteps()
    for placement in placements:
        if placement.kind is Kind.SOCKET:
            _converge_socket_service(run, placement, steps)
        else:
            _converge_engine_service(run, placement, states.get(placement.name, {}), podman_version, steps)
    return steps


def _converge_engine_service(run: Run, placement: Placement, state: Dict[str, str], podman_version: Tuple[int, ...],
                             steps: ServiceSteps) -> None:
    """A generated or Quadlet service in the engine mode's systemd instance: its file, the
    other format's file gone, and whether it must be enabled, started or restarted."""
    component, name = placement.component, placement.name
    report = run.report(name)
    facts, cache = run.facts[component.engine], run.caches[component.engine]
    if run.account is not None and remove_socket_service(run.system, facts, name, report):
        steps.reload_system = True   # socket-activated before (the opt-in is set now)
    unit_changed, restart_needed = _converge_unit(run.host, facts, component, placement.unit_path, report, cache,
                                                  podman_version)
    other = other_format_file(component, run.unit_dir, run.quadlet_dir)
    if other is not None:
        drop_other_format(run.host, facts, component, other, report)
        unit_changed = restart_needed = True
    # A unit written by a run that died before restarting the service still needs it.
    stale = state.get("NeedDaemonReload") == "yes" or run.restart_pending(name)
    steps.reload_engine = steps.reload_engine or unit_changed or stale
    if placement.enabled_by_systemctl and state.get("UnitFileState") != "enabled":
        steps.enable.append(name)
        report.changes.append("service %s: enabled" % name)
    if state.get("ActiveState") not in RUNNING_STATES:
        steps.start.append(name)
        report.changes.append("service %s: started" % name)
    elif restart_needed or stale:
        steps.restart.append(name)
        report.changes.append("service %s: restarted" % name)


def _converge_socket_service(run: Run, placement: Placement, steps: ServiceSteps) -> None:
    """A socket-activated service (socket_state.py): files, image, its system unit and its
    .socket; the user unit of the opt-in mode goes. The system manager reloads at once, so
    the start after the transaction finds both units as written. Files and image are the
    service user's (run.host); the two units belong to the system manager."""
    plan, name = placement.socket, placement.name
    if plan is None:
        raise ValueError("%s: a socket-activated placement without its socket plan" % name)
    report, manager = run.report(name), run.on(placement.scope)
    facts, cache = run.facts[placement.component.engine], run.caches[placement.component.engine]
    user_unit_removed = remove_service(run.host, facts, name, os.path.join(run.unit_dir, name + ".service"), report)
    unit_changed, restart_needed = _converge_unit(run.host, facts, placement.component, placement.unit_path, report,
                                                  cache, (), plan.transform)
    socket_changed = ensure_socket(manager, plan, report)
    # A run that died before the restart leaves the marker: the next run still restarts.
    restart_due = (unit_changed and restart_needed) or run.restart_pending(name)
    if restart_due or socket_changed:
        _mark_pending(manager, [name])
    if (unit_changed or socket_changed) and not run.check_mode:
        daemon_reload(manager, facts)
    steps.sockets[name] = SocketService(socket_changed, restart_due)
    steps.reload_engine = steps.reload_engine or user_unit_removed


# --- systemd ----------------------------------------------------------------------------------

def _run_transaction(run: Run, steps: ServiceSteps) -> None:
    """The engine mode's instance: one daemon-reload, one enable, then every start and
    restart as one job transaction, so systemd orders them by After=/Requires= and runs the
    independent ones in parallel (restart also starts a service that is not running). Then
    the system manager reloads when a socket-activated service's files went."""
    host = run.host
    _mark_pending(host, steps.restart)
    if steps.reload_engine and not run.check_mode:
        daemon_reload(host, run.any_facts)
    systemctl(host, run.any_facts, "enable", steps.enable)
    systemctl(host, run.any_facts, "restart", steps.start + steps.restart)
    _clear_pending(host, steps.start + steps.restart)
    if steps.reload_system and not run.check_mode:
        daemon_reload(run.system, run.any_facts)


def _start_socket_services(run: Run, sockets: Dict[str, SocketService]) -> Tuple[List[str], List[str]]:
    """Enable and start (or restart) each socket-activated service and its socket, as root:
    they are system units (their processes run as the service user). After the transaction,
    one by one: a changed socket needs its service stopped around its restart. Returns
    (started, restarted)."""
    system = run.on(Scope.SYSTEM)
    started: List[str] = []
    restarted: List[str] = []
    states = unit_states(system, run.any_facts, list(sockets))
    # A run that died after writing a system unit and before its reload and pending marker
    # left systemd with the old unit (the engine instance's units get the same check in
    # _converge_engine_service): reload now, and restart it below.
    stale = [name for name in sockets if states.get(name, {}).get("NeedDaemonReload") == "yes"]
    if stale and not run.check_mode:
        daemon_reload(system, run.any_facts)
    for name, service in sockets.items():
        report, state = run.reports[name], states.get(name, {})
        if state.get("UnitFileState") != "enabled":
            report.changes.append("service %s: enabled (with its socket)" % name)
            systemctl(system, run.any_facts, "enable", [name])
        if service.socket_changed:
            restart_socket(system, run.any_facts, name)
            (restarted if state.get("ActiveState") == "active" else started).append(name)
            report.changes.append("service %s: restarted with its socket" % name)
        elif state.get("ActiveState") not in RUNNING_STATES:
            started.append(name)
            report.changes.append("service %s: started" % name)
            systemctl(system, run.any_facts, "restart", [name])
        elif service.restart_due or name in stale:
            restarted.append(name)
            report.changes.append("service %s: restarted" % name)
            systemctl(system, run.any_facts, "restart", [name])
        _clear_pending(system, [name])
    return started, restarted


def _mark_pending(module: Any, names: List[str]) -> None:
    """Record due restarts before systemd sees the new units (removed once they happened)."""
    if module.check_mode or not names:
        return
    os.makedirs(module.params["pending_dir"], mode=0o700, exist_ok=True)
    for name in names:
        with open(os.path.join(module.params["pending_dir"], name), "w", encoding="utf-8"):
            pass


def _clear_pending(module: Any, names: List[str]) -> None:
    if module.check_mode:
        return
    for name in names:
        path = os.path.join(module.params["pending_dir"], name)
        if os.path.exists(path):
            os.unlink(path)


# --- removals -----------------------------------------------------------------------------------

def _remove_absent(run: Run, components: List[Component]) -> bool:
    """Every component with state absent loses its service, whatever its placement was (a
    generated unit, a Quadlet file, a socket-activated unit and its .socket); data stays.
    Returns whether a unit of the engine mode's instance went (it reloads once, later); the
    system manager reloads after each socket-activated service it loses."""
    removed = False
    for component in components:
        if component.state != "absent":
            continue
        report, facts = run.report(component.name), run.facts[component.engine]
        unit_path = os.path.join(run.unit_dir, component.name + ".service")
        removed = remove_service(run.host, facts, component.name, unit_path, report) or removed
        # Whatever the format now: a service removed after a format change leaves nothing.
        quadlet_path = os.path.join(run.quadlet_dir, component.name + ".container")
        removed = remove_quadlet_service(run.host, facts, component.name, quadlet_path, report) or removed
        if run.account is not None and remove_socket_service(run.system, facts, component.name,
                                                             report) and not run.check_mode:
            daemon_reload(run.system, facts)
    return removed


def _remove_leftovers(run: Run) -> None:
    """Units and files a feature that is now turned off left (remove_units, remove_files):
    system units, whatever the engine mode."""
    units, files = run.system.params["remove_units"], run.system.params["remove_files"]
    if not (units or files):
        return
    if remove_leftovers(run.system, run.any_facts, run.system_unit_dir, units, files,
                        run.report("leftovers")) and not run.check_mode:
        daemon_reload(run.system, run.any_facts)


def _result(run: Run, started: List[str], restarted: List[str]) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "changed": any(report.changed for report in run.reports.values()),
        "components": {
            name: {"changed": report.changed, "changes": report.changes,
                   "started": name in started, "restarted": name in restarted}
            for name, report in run.reports.items()
        },
        "started": started,
        "restarted": restarted,
    }
    if run.system._diff:
        result["diff"] = [diff for report in run.reports.values() for diff in report.diffs]
    return result


def converge(module: AnsibleModule, components: List[Component]) -> Dict[str, Any]:
    """The whole run: checks and reads first, then files, units and services, then systemd,
    then removals (docs/contract.md, Convergence)."""
    check_sources([item for component in components for item in component.files])
    run, components = _prepare(module, components)
    unmarked = _switch_engine_modes(run, components)
    podman_version = _quadlet_podman_version(run, components)
    _prefetch(run, components)
    # Decided once: which file each service gets, and which systemd instance drives it.
    placements = place_services(components, run.account, run.unit_dir, run.quadlet_dir)
    _check_images(run, placements)
    # Files-only components first: the secrets services share exist before any unit names them.
    network_files = _converge_files_only(run, components)
    renamed = _remove_renamed(run, components)
    steps = _converge_services(run, placements, podman_version)
    steps.reload_engine = steps.reload_engine or network_files   # Quadlet regenerates network services
    mark(run.system, unmarked, run.idmap)
    _run_transaction(run, steps)
    # After the transaction: a socket-activated service's socket is restarted around it.
    socket_started, socket_restarted = _start_socket_services(run, steps.sockets)
    removed = _remove_absent(run, components)
    _remove_leftovers(run)
    if (removed or renamed) and not run.check_mode:
        daemon_reload(run.host, run.any_facts)
    return _result(run, steps.start + socket_started, steps.restart + socket_restarted)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["components"] is None:
        module.fail_json(msg="components is required (the action plugin builds it from role/spec)")
    try:
        check_unit_names("remove_units", module.params["remove_units"])
    except SpecError as error:
        module.fail_json(msg=str(error), field=error.field)
    try:
        components = components_from_list(module.params["components"])
    except SpecError as error:
        module.fail_json(msg="components: %s" % error, field=error.field)
    relative = [path for path in module.params["remove_files"] if not os.path.isabs(path)]
    if relative:
        module.fail_json(msg="remove_files: must be absolute paths, got %s" % ", ".join(relative), field="remove_files")
    if not components:
        module.exit_json(changed=False, components={}, started=[], restarted=[])
    try:
        result = converge(module, components)
    except (HostError, SpecError) as error:
        module.fail_json(msg=str(error), field=error.field)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
