# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of a rootless engine mode: the service user, its subordinate ids, linger,
its systemd instance, and running the engine and ``systemctl --user`` as that user.

``check_rootless`` only reads and raises (before anything changes); ``prepare_rootless``
converges. ``UserHost`` wraps the module so that the shared machinery (service_state.py),
which calls ``<engine> ...`` and ``systemctl ...``, runs those two commands as the service
user against its own storage and its own systemd instance, and everything else as root.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.component import (
    Component,
    Directory,
    File,
    Ownership,
)
from ansible_collections.hearth.matrix.plugins.module_utils.docker_rootless import (
    DEBIAN_CONTRIB,
    ENGINE_UNIT,
    REQUIRED,
    SETUP_SCRIPT,
    engine_unit,
    missing_commands,
    path_dirs,
)
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import (
    MIN_SUBIDS,
    IdMap,
    IdRange,
    RootlessUser,
    engine_binary,
    free_range_start,
    is_rootless,
    low_ports,
    network_helper_refusal,
    parse_subids,
    rootless_settings,
    run_as_argv,
    runtime_dir,
    unenforced_limits,
    usable_range,
    user_unit_dir,
)
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import (
    Host,
    HostError,
    Report,
    ensure_directory,
    ensure_file,
)
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import parse_version
from ansible_collections.hearth.matrix.plugins.module_utils.socket_state import RootlessAccount, socket_activated

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
LINGER_DIR = "/var/lib/systemd/linger"
SYSCTL_FILE = "/etc/sysctl.d/60-hearth-rootless.conf"
PORT_START_PROC = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
USER_VARIABLE = "hearth_rootless_user"
PORT_VARIABLE = "hearth_rootless_unprivileged_port_start"


def _read(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class Plan:
    """What the host has (or will have once prepared) for the service user."""

    uid: int
    gid: int
    home: str
    idmap: IdMap
    exists: bool

    @property
    def unit_dir(self) -> str:
        return user_unit_dir(self.home)


def check_rootless(user: RootlessUser) -> Plan:
    """The user's ids and mapping; an existing user without a usable subordinate range is an
    error naming the variable (the collection adds a range only to a user it creates)."""
    try:
        entry: Optional[pwd.struct_passwd] = pwd.getpwnam(user.name)
    except KeyError:
        entry = None
    if entry is None:
        start = free_range_start([_read(SUBUID), _read(SUBGID)])
        planned = IdRange(start, MIN_SUBIDS)
        # Check mode before the user exists: uid 0 stands in for the uid useradd will pick.
        return Plan(uid=0, gid=0, home=user.home, idmap=IdMap(0, 0, planned, planned), exists=False)
    ranges = {}
    for path, kind in ((SUBUID, "uid"), (SUBGID, "gid")):
        # Both files name the owner by login name or uid (subgid(5): not by gid).
        found = parse_subids(_read(path), user.name, entry.pw_uid)
        usable = usable_range(found)
        if usable is None:
            have = "a range of %d" % found[0].count if found else "no range"
            raise HostError(USER_VARIABLE, "user %s has %s in %s; a rootless engine needs at least %d subordinate "
                            "%ss (usermod --add-sub%ss START-END %s), or name another user"
                            % (user.name, have, path, MIN_SUBIDS, kind, kind, user.name))
        ranges[kind] = usable
    return Plan(uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, exists=True,
                idmap=IdMap(entry.pw_uid, entry.pw_gid, ranges["uid"], ranges["gid"]))


def _run(host: Host, argv: List[str], variable: str = USER_VARIABLE) -> str:
    rc, out, err = host.run_command(argv)
    if rc != 0:
        raise HostError(variable, "%s failed: %s" % (" ".join(argv[:3]), (err or out).strip()[-300:]))
    return out


def prepare_rootless(host: Host, bins: Dict[str, Optional[str]], user: RootlessUser, plan: Plan,
                     report: Report) -> Plan:
    """The user (with its ranges), linger, its running systemd instance, its unit directory
    and the opt-in low-port sysctl. Returns the plan with the real ids."""
    if not plan.exists:
        rng = plan.idmap.subuid
        report.changes.append("rootless user %s: created with subordinate ids %d-%d" % (user.name, rng.start, rng.end))
        if host.check_mode:
            return plan
        _run(host, [bins["useradd"] or "useradd", "--system", "--user-group", "--create-home", "--home-dir", user.home,
                    "--shell", "/usr/sbin/nologin", "--comment", "hearth.matrix rootless engine", user.name])
        span = "%d-%d" % (rng.start, rng.end)
        _run(host, [bins["usermod"] or "usermod", "--add-subuids", span, "--add-subgids", span, user.name])
        plan = check_rootless(user)
    if not os.path.exists(os.path.join(LINGER_DIR, user.name)):
        # Linger: the user's systemd instance starts at boot, without anyone logging in.
        report.changes.append("rootless user %s: linger enabled" % user.name)
        if not host.check_mode:
            _run(host, [bins["loginctl"] or "loginctl", "enable-linger", user.name])
    manager = "user@%d.service" % plan.uid
    rc, _out, _err = host.run_command([bins["systemctl"] or "systemctl", "is-active", "--quiet", manager])
    if rc != 0 or not os.path.isdir(runtime_dir(plan.uid)):
        report.changes.append("rootless user %s: systemd instance started" % user.name)
        if not host.check_mode:
            _run(host, [bins["systemctl"] or "systemctl", "start", manager])
    own = Ownership(str(plan.uid), str(plan.gid), "0700")
    config = os.path.join(plan.home, ".config")
    containers = os.path.join(config, "containers")
    for path in (config, os.path.join(config, "systemd"), plan.unit_dir, containers):
        if os.path.isdir(os.path.dirname(path)) or not host.check_mode:
            ensure_directory(host, Directory(path, own), report)
    if os.path.isdir(containers) or not host.check_mode:
        ensure_file(host, File(path=os.path.join(containers, "storage.conf"), restart=False,
                               own=Ownership(str(plan.uid), str(plan.gid), "0644"),
                               content=storage_conf(bins.get("fuse-overlayfs"))), report)
    if user.unprivileged_port_start is not None:
        ensure_port_start(host, bins, user.unprivileged_port_start, report)
    return plan


def storage_conf(fuse_overlayfs: Optional[str]) -> str:
    """The service user's image storage: overlay. Without a storage.conf, podman falls back to
    vfs (a full copy per layer; its layer roots are 0700, so a container's non-root user
    cannot even exec). fuse-overlayfs, when installed, also works where the user's home is
    itself on overlayfs (native rootless overlay needs Linux 5.13 and no overlay below)."""
    lines = ["# Managed by hearth.matrix: the rootless engine's image storage.", "[storage]", 'driver = "overlay"']
    if fuse_overlayfs:
        lines += ["", "[storage.options.overlay]", 'mount_program = "%s"' % fuse_overlayfs]
    return "\n".join(lines) + "\n"


def ensure_port_start(host: Host, bins: Dict[str, Optional[str]], start: int, report: Report) -> None:
    """The opt-in: unprivileged processes may bind ports from ``start`` on (kept across boots)."""
    ensure_file(host, File(path=SYSCTL_FILE, own=Ownership("root", "root", "0644"), restart=False,
                           content="# Managed by hearth.matrix (%s)\nnet.ipv4.ip_unprivileged_port_start = %d\n"
                           % (PORT_VARIABLE, start)), report)
    if _read(PORT_START_PROC).strip() != str(start):
        report.changes.append("sysctl net.ipv4.ip_unprivileged_port_start=%d" % start)
        if not host.check_mode:
            _run(host, [bins["sysctl"] or "sysctl", "-w", "net.ipv4.ip_unprivileged_port_start=%d" % start],
                 PORT_VARIABLE)


def remap(component: Component, idmap: IdMap) -> Component:
    """The component with every owner and group as the host ids the rootless engine shows
    the container's ids as (root -> the service user, uid U -> subuid_start + U - 1)."""
    def own(item: Ownership) -> Ownership:
        return Ownership(idmap.owner(item.owner), idmap.group(item.group), item.mode)

    tls = component.tls
    if tls is not None:
        tls = replace(tls, key_owner=idmap.owner(tls.key_owner), key_group=idmap.group(tls.key_group),
                      cert_group=idmap.group(tls.cert_group))
    return replace(
        component,
        directories=tuple(replace(d, own=own(d.own)) for d in component.directories),
        secrets=tuple(replace(s, own=own(s.own)) for s in component.secrets),
        files=tuple(replace(f, own=own(f.own)) for f in component.files),
        tls=tls,
        # The host account of rootful containers means nothing here: the mapping decides.
        service_user=None,
    )


def cgroup_v2() -> bool:
    """Unified hierarchy: only there can a rootless engine get cgroup controllers delegated."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


class UserHost:
    """The module, with the engine and systemctl run as the service user (``--user`` scope).

    ``planned``: check mode before the user exists. Nothing can run as a user that is not
    there, so the engine and the user's systemd answer as a new user's would once prepared:
    the engine answers, the images are there (copied from root's store on apply), no network,
    no unit; so the run reports everything it would create."""

    def __init__(self, module: Any, prefix: Sequence[str], engine_path: str, systemctl: str,
                 planned: bool = False) -> None:
        self._module = module
        self._prefix = list(prefix)
        self._engine_path = engine_path
        self._systemctl = systemctl
        self._planned = planned

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def run_command(self, args: Sequence[str], **kwargs: Any) -> Tuple[int, str, str]:
        argv = list(args)
        if self._planned and argv and (argv[0] == self._engine_path
                                       or (argv[0] == self._systemctl and argv[1:2] != ["--version"])):
            return planned_answer(argv[1:])
        if argv and argv[0] == self._systemctl and argv[1:2] != ["--version"]:
            argv = self._prefix + [argv[0], "--user"] + argv[1:]
        elif argv and argv[0] == self._engine_path:
            argv = self._prefix + argv
        result: Tuple[int, str, str] = self._module.run_command(argv, **kwargs)
        return result


PLANNED_IMAGE_ID = "(copied on apply)"


def planned_answer(args: Sequence[str]) -> Tuple[int, str, str]:
    """What the engine or ``systemctl --user`` of a user that check mode only plans answers."""
    if args[:1] == ["info"] or args[:1] == ["show"]:
        return 0, "", ""      # the engine will answer; systemd knows no unit yet
    if args[:2] == ["image", "inspect"]:
        names = [arg for arg in args[2:] if not arg.startswith("--") and arg != "{{.Id}}"]
        return 0, "".join(PLANNED_IMAGE_ID + "\n" for _name in names), ""
    return 1, "", "the service user does not exist yet (check mode)"


def user_host(module: Any, runuser: str, user: RootlessUser, plan: Plan, engine_path: str, systemctl: str) -> UserHost:
    home_user = replace(user, home=plan.home)
    return UserHost(module, run_as_argv(runuser, home_user, plan.uid), engine_path, systemctl,
                    planned=not plan.exists)


def copy_image_from_root(module: Any, host: UserHost, engine_path: str, image: str, home: str) -> bool:
    """An image in root's store but not in the user's (e.g. built or loaded as root) is
    copied over with save/load; False when root does not have it either."""
    rc, _out, _err = module.run_command([engine_path, "image", "inspect", "--format", "{{.Id}}", image])
    if rc != 0:
        return False
    fd, archive = tempfile.mkstemp(prefix=".hearth-image-", suffix=".tar", dir=home)
    os.close(fd)
    try:
        _run(module, [engine_path, "save", "--output", archive, image], "image")
        os.chmod(archive, 0o644)
        rc, out, err = host.run_command([engine_path, "load", "--input", archive])
        if rc != 0:
            raise HostError("image", "loading %s into the rootless store failed: %s" % (image, (err or out).strip()[-300:]))
    finally:
        os.unlink(archive)
    return True


def ensure_user_dockerd(module: Any, host: UserHost, plan: Plan, systemctl: str, report: Report) -> None:
    """docker_rootless: the user's docker.service written, enabled and running (restarted
    when its unit changed), before any container unit needs it."""
    script = module.get_bin_path(SETUP_SCRIPT, opt_dirs=[DEBIAN_CONTRIB]) or ""
    text = engine_unit(script, path_dirs(script), module.get_bin_path("fuse-overlayfs"))
    path = os.path.join(plan.unit_dir, ENGINE_UNIT)
    changed = _read(path) != text
    ensure_file(module, File(path=path, own=Ownership(str(plan.uid), str(plan.gid), "0644"), content=text,
                             restart=False), report)
    if module.check_mode:
        return
    if changed:
        _run(host, [systemctl, "daemon-reload"], "hearth_engine")
    rc, _out, _err = host.run_command([systemctl, "is-enabled", "--quiet", ENGINE_UNIT])
    if rc != 0:
        report.changes.append("rootless dockerd: enabled")
        _run(host, [systemctl, "enable", ENGINE_UNIT], "hearth_engine")
    rc, _out, _err = host.run_command([systemctl, "is-active", "--quiet", ENGINE_UNIT])
    if rc != 0 or changed:
        report.changes.append("rootless dockerd: %s" % ("started" if rc != 0 else "restarted"))
        _run(host, [systemctl, "restart" if rc == 0 else "start", ENGINE_UNIT], "hearth_engine")


def _engine_refusal(module: Any, mode: str, engine_path: str) -> Optional[str]:
    """Why the rootless mode cannot run its containers on this host, or None (before any change)."""
    if engine_binary(mode) == "docker":
        found = {command: module.get_bin_path(command) for command, _package in REQUIRED}
        found[SETUP_SCRIPT] = module.get_bin_path(SETUP_SCRIPT, opt_dirs=[DEBIAN_CONTRIB])
        return missing_commands(found)
    rc, out, _err = module.run_command([engine_path, "version", "--format", "{{.Client.Version}}"])
    refusal = network_helper_refusal(mode, parse_version(out) if rc == 0 else (),
                                     {name: bool(module.get_bin_path(name)) for name in ("pasta", "slirp4netns")})
    return refusal[len("hearth_engine "):] if refusal else None


def _role_of(component: Component) -> str:
    """The role whose <role>_* variables a component comes from (its instance names it)."""
    return component.instance.split("@", 1)[0] if component.instance else component.name


def _unenforceable(module: Any, component: Component) -> Component:
    """cgroup v1 gives a rootless engine no controllers: the limits go, with a warning
    naming each variable (never silently; podman itself would ignore them)."""
    spec = component.container
    if spec is None or cgroup_v2():
        return component
    dropped = unenforced_limits(_role_of(component), spec.memory, spec.pids_limit, spec.cpu_shares)
    if not dropped:
        return component
    module.warn("%s: not enforced by a rootless engine on this cgroup v1 host (no delegated controllers): %s; "
                "use a cgroup v2 host or a rootful engine mode for these limits" % (component.name, ", ".join(dropped)))
    return replace(component, container=replace(spec, memory=None, pids_limit=None, cpu_shares=None))


def setup_engine_mode(module: Any, components: List[Component]) -> Tuple[Any, List[Component], Optional[Report]]:
    """For a rootless mode: check (before any change), prepare the user, and return the host
    that runs engine and systemctl as the user, the components with mapped ownership, and
    the report of the preparation. Rootful modes come back unchanged."""
    modes = sorted({c.engine for c in components})
    if not any(is_rootless(mode) for mode in modes):
        return module, components, None
    if len(modes) > 1:
        raise HostError("hearth_engine", "mixes %s in one run; a stack runs under one engine mode" % " and ".join(modes))
    settings = rootless_settings(module.params.get("rootless") or {})
    user = RootlessUser(settings["user"], settings["home"], settings["unprivileged_port_start"])
    plan = check_rootless(user)
    ports = [(c.name, p.host_port) for c in components if c.state == "started" and c.container is not None
             for p in c.container.ports]
    low = low_ports(ports, user.unprivileged_port_start)
    # Without the opt-in, low ports are socket-activated (socket_state.py); an opt-in that is
    # set but too high for a published port is an error.
    if low and user.unprivileged_port_start is None and engine_binary(modes[0]) == "docker":
        name, port = low[0]
        raise HostError(PORT_VARIABLE, "is needed for %s with hearth_engine docker_rootless: it publishes port %d, and a "
                        "rootless dockerd can neither bind it nor take it from systemd (socket activation needs "
                        "podman_rootless); set it to %d or lower (host-wide), or publish ports >= 1024"
                        % (name, port, min(p for _n, p in low)))
    if low and user.unprivileged_port_start is not None:
        name, port = low[0]
        raise HostError(PORT_VARIABLE, "must be %d or lower: %s publishes port %d, which a rootless engine cannot "
                        "bind (the kernel's net.ipv4.ip_unprivileged_port_start is 1024 unless this opt-in lowers it "
                        "for the whole host), or publish ports >= 1024" % (min(p for _n, p in low), name, port))
    for component in components:
        socket_activated(component, user.unprivileged_port_start)   # a UDP port among them is an error
    runuser, engine_path = module.get_bin_path("runuser"), module.get_bin_path(engine_binary(modes[0]))
    systemctl = module.get_bin_path("systemctl")
    if not (runuser and engine_path and systemctl):
        raise HostError("hearth_engine", "%s needs runuser, %s and systemctl on the host"
                        % (modes[0], engine_binary(modes[0])))
    refusal = _engine_refusal(module, modes[0], engine_path)
    if refusal:
        raise HostError("hearth_engine", refusal)
    bins = {name: module.get_bin_path(name) for name in ("useradd", "usermod", "loginctl", "sysctl", "fuse-overlayfs")}
    bins["systemctl"] = systemctl
    report = Report()
    plan = prepare_rootless(module, bins, user, plan, report)
    host = user_host(module, runuser, user, plan, engine_path, systemctl)
    host.params = dict(module.params, unit_dir=plan.unit_dir)
    host.idmap = plan.idmap   # what the data's owners must be (mode_switch_host)
    host.account = RootlessAccount(user.name, plan.uid, plan.home, user.unprivileged_port_start)
    mapped = [_unenforceable(module, remap(c, plan.idmap)) for c in components]
    if not plan.exists:   # check mode: what the apply would do for a user it creates
        if engine_binary(modes[0]) == "docker":
            report.changes.append("rootless dockerd: written, enabled and started")
        images = sorted({c.image for c in mapped if c.state == "started" and c.container is not None})
        report.changes += ["image %s: copied from root's store" % image for image in images]
        return host, mapped, report
    if engine_binary(modes[0]) == "docker":
        ensure_user_dockerd(module, host, plan, systemctl, report)
    for image in sorted({c.image for c in mapped if c.state == "started" and c.container is not None}):
        rc, _out, _err = host.run_command([engine_path, "image", "inspect", "--format", "{{.Id}}", image])
        if rc != 0:
            report.changes.append("image %s: copied from root's store" % image)
            if not module.check_mode:
                copy_image_from_root(module, host, engine_path, image, plan.home)
    return host, mapped, report
