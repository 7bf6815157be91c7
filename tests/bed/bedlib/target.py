"""The target server: a privileged, systemd-booted podman container reached over SSH.

One target offers both engines; `up(engine=...)` starts the chosen one (docker is
disabled in the image). A podman target gets the component images as a read-only additional
image store prepared once on the host; a docker target loads them from a docker-archive
mounted read-only from the host's cache. No registry is ever involved.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .images import COMPONENTS, IMAGES, TARGET, TARGET_TRIXIE, build_images, image_store, images_archive
from .shell import PODMAN, BedError, cache_dir, podman, run, timed

PREFIX = "hearth-bed-"
ENGINES = ("docker", "podman")
# Debian release of the target -> its image (trixie: systemd 257, podman 5.4 with Quadlet).
TARGET_IMAGES = {"bookworm": TARGET, "trixie": TARGET_TRIXIE}
LABEL = "hearth-bed.run"               # run id; every container/volume of the bed has it
OWNER_LABEL = "hearth-bed.owner"       # "<pid>:<process start time>" or ""
CREATED_LABEL = "hearth-bed.created"   # epoch seconds
WORKDIR_LABEL = "hearth-bed.workdir"
ARCHIVES_IN_TARGET = "/var/cache/hearth-bed"
STORE_IN_TARGET = "/var/lib/hearth-bed-images"
# The inner podman's storage with the host-made image store beside its own (read-only there:
# images there can be run and built upon, never removed).
STORAGE_CONF = f"""[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
[storage.options]
additionalimagestores = ["{STORE_IN_TARGET}"]
"""
# Target ports published on 127.0.0.1:<random free port> of the host.
PUBLISHED = ("22", "80", "443", "8448")
KEY_NAME = "id_ed25519"
WORKDIR_FILES = (KEY_NAME, f"{KEY_NAME}.pub", "inventory.yml", "target.json")


@dataclass
class Target:
    name: str                  # container name, always starts with hearth-bed-
    engine: str
    workdir: Path
    ssh_port: int
    key_path: Path
    bridge_ip: str
    ports: dict[str, int]      # target port -> host loopback port
    volumes: list[str]
    run_id: str
    timings: dict[str, float] = field(default_factory=dict)
    os: str = "bookworm"

    def to_json(self) -> str:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["key_path"] = str(self.key_path)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Target:
        data = json.loads(text)
        data["workdir"] = Path(data["workdir"])
        data["key_path"] = Path(data["key_path"])
        return cls(**data)

    def ssh_argv(self, *command: str) -> list[str]:
        """argv for real SSH into the target (what Ansible does)."""
        return ["ssh", "-i", str(self.key_path), "-p", str(self.ssh_port),
                *SSH_OPTIONS, "root@127.0.0.1", *command]


SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes")


def full_name(name: str) -> str:
    full = name if name.startswith(PREFIX) else PREFIX + name
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", full):
        raise BedError(f"bad target name {full!r}: use lower-case letters, digits, '-'")
    return full


def volume_names(full: str) -> list[str]:
    # Each engine keeps its storage on a real volume: overlay on overlay does not work.
    return [f"{full}-containers", f"{full}-docker"]


def _process_identity(pid: int) -> str:
    """pid plus its start time, so a recycled pid is not mistaken for the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def _owner_alive(owner: str) -> bool:
    if not owner:
        return False
    return _process_identity(int(owner.split(":")[0])) == owner


def exec_in_target(target: Target, argv: list[str], *, input_bytes: bytes | None = None,
                   check: bool = True, timeout: float | None = None,
                   ) -> subprocess.CompletedProcess[bytes]:
    """Run argv inside the target (podman exec, not SSH): for bed plumbing and checks."""
    return run([PODMAN, "exec", "-i", target.name, *argv], input_bytes=input_bytes,
               check=check, timeout=timeout)


def _wait(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise BedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _system_running(name: str) -> bool:
    proc = run([PODMAN, "exec", name, "systemctl", "is-system-running"], check=False)
    return proc.stdout.decode().strip() in ("running", "degraded")


def _ssh_ok(target: Target) -> bool:
    argv = target.ssh_argv("true")
    proc = run([argv[0], "-o", "ConnectTimeout=5", *argv[1:]], check=False, timeout=30)
    return proc.returncode == 0


def _engine_ready(target: Target) -> bool:
    return exec_in_target(target, [target.engine, "info"], check=False).returncode == 0


def _remove_container_and_volumes(full: str) -> None:
    podman("rm", "--force", "--time", "5", full, check=False)
    for volume in volume_names(full):
        podman("volume", "rm", "--force", volume, check=False)


def _remove_workdir_files(workdir: Path) -> None:
    for file_name in WORKDIR_FILES:
        (workdir / file_name).unlink(missing_ok=True)


def _write_inventory(target: Target) -> None:
    common_args = " ".join(SSH_OPTIONS)
    values = {
        "ansible_host": "127.0.0.1",
        "ansible_port": target.ssh_port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(target.key_path),
        "ansible_ssh_common_args": common_args,
        "ansible_python_interpreter": "/usr/bin/python3",
        "hearth_bed_engine": target.engine,
        "hearth_bed_bridge_ip": target.bridge_ip,
    }
    # JSON scalars are valid YAML: no YAML library needed.
    lines = ["all:", "  hosts:", f"    {target.name}:"]
    lines += [f"      {key}: {json.dumps(value)}" for key, value in values.items()]
    (target.workdir / "inventory.yml").write_text("\n".join(lines) + "\n")


def _published_ports(full: str) -> dict[str, int]:
    ports: dict[str, int] = {}
    for line in podman("port", full).splitlines():
        # "443/tcp -> 127.0.0.1:40123"
        match = re.match(r"(\d+)/tcp -> [\d.]+:(\d+)", line.strip())
        if match:
            ports[match.group(1)] = int(match.group(2))
    return ports


def _start_container(full: str, run_id: str, owner: str, workdir: Path, store: Path | None, image: str) -> None:
    labels = {LABEL: run_id, OWNER_LABEL: owner, CREATED_LABEL: str(int(time.time())),
              WORKDIR_LABEL: str(workdir)}
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    containers_volume, docker_volume = volume_names(full)
    for volume in (containers_volume, docker_volume):
        podman("volume", "create", "--label", f"{LABEL}={run_id}",
               "--label", f"{CREATED_LABEL}={labels[CREATED_LABEL]}", volume)
    archives = cache_dir() / "archives"
    archives.mkdir(exist_ok=True)
    port_args = [arg for port in PUBLISHED for arg in ("-p", f"127.0.0.1::{port}")]
    store_args = ["-v", f"{store}:{STORE_IN_TARGET}:ro"] if store is not None else []
    # --privileged + systemd: the inner engines need it. Not --cgroupns=private (breaks
    # after ~30 min on these machines); the host's cgroup tree is never bind-mounted.
    podman("run", "--detach", "--privileged", "--systemd=always", "--name", full,
           "--hostname", full, *label_args, *port_args,
           "-v", f"{containers_volume}:/var/lib/containers",
           "-v", f"{docker_volume}:/var/lib/docker",
           "-v", f"{archives}:{ARCHIVES_IN_TARGET}:ro", *store_args,
           IMAGES[image].ref)


def up(name: str, engine: str, workdir: Path, *, owner_pid: int | None = None,
       components: list[str] | None = None, build: bool = True,
       timeout: float = 180, os_name: str = "bookworm") -> Target:
    """Start a target, install a fresh SSH key, start `engine`, load component images.

    owner_pid: the process whose end makes this target garbage for gc() (pytest: pass
    os.getpid()); default $HEARTH_BED_OWNER_PID, else gc() only goes by age.
    os_name: the target's Debian release (TARGET_IMAGES).
    Writes <workdir>/inventory.yml and <workdir>/target.json.
    """
    if engine not in ENGINES:
        raise BedError(f"engine must be one of {ENGINES}, not {engine!r}")
    if os_name not in TARGET_IMAGES:
        raise BedError(f"os must be one of {tuple(TARGET_IMAGES)}, not {os_name!r}")
    image = TARGET_IMAGES[os_name]
    full = full_name(name)
    components = list(COMPONENTS) if components is None else components
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if owner_pid is None and os.environ.get("HEARTH_BED_OWNER_PID"):
        owner_pid = int(os.environ["HEARTH_BED_OWNER_PID"])
    owner = _process_identity(owner_pid) if owner_pid else ""
    run_id = uuid.uuid4().hex[:12]

    if build:
        with timed("build (cache check)", timings):
            build_images([image, *components])
    archive = store = None
    if components and engine == "podman":
        with timed("image store", timings):
            store = image_store(components)
    elif components:
        with timed("image archive", timings):
            archive = images_archive(components)
    # Same name = leftover of a run that died: it never blocks this one.
    _remove_container_and_volumes(full)
    _remove_workdir_files(workdir)
    key_path = workdir / KEY_NAME
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", full, "-f", str(key_path)])
    try:
        with timed("start target", timings):
            _start_container(full, run_id, owner, workdir, store, image)
        with timed("systemd running", timings):
            _wait("systemd in the target", lambda: _system_running(full), timeout)
        target = Target(
            name=full, engine=engine, workdir=workdir, ssh_port=0, key_path=key_path,
            bridge_ip=podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", full),
            ports={}, volumes=volume_names(full), run_id=run_id, timings=timings, os=os_name)
        ports = _published_ports(full)
        target.ssh_port = ports.pop("22")
        target.ports = ports
        exec_in_target(target, ["sh", "-c", "umask 077; cat > /root/.ssh/authorized_keys"],
                       input_bytes=Path(f"{key_path}.pub").read_bytes())
        if store is not None:
            exec_in_target(target, ["sh", "-c", "cat > /etc/containers/storage.conf"],
                           input_bytes=STORAGE_CONF.encode())
        if os_name == "trixie":
            # podman 5 warns on stderr at every command that cgroups v1 is deprecated (the
            # machines' cgroups are v1 and stay so); tests read stdout and stderr together
            # over SSH, where sshd's pam_env sets this for every session.
            exec_in_target(target, ["sh", "-c", "echo PODMAN_IGNORE_CGROUPSV1_WARNING=1 >> /etc/environment"])
        with timed(f"{engine} ready", timings):
            if engine == "docker":
                exec_in_target(target, ["systemctl", "enable", "--now", "--quiet",
                                        "containerd.service", "docker.service"])
            _wait(f"{engine} in the target", lambda: _engine_ready(target), timeout)
        if archive is not None:
            with timed("load images", timings):
                exec_in_target(target, [engine, "load", "-i",
                                        f"{ARCHIVES_IN_TARGET}/{archive.name}"])
        with timed("ssh ready", timings):
            _wait("SSH into the target", lambda: _ssh_ok(target), timeout)
    except BaseException:
        # Interrupted or failed: leave nothing behind.
        _remove_container_and_volumes(full)
        _remove_workdir_files(workdir)
        raise
    _write_inventory(target)
    (workdir / "target.json").write_text(target.to_json())
    return target


def restart(target: Target, timeout: float = 180) -> float:
    """Reboot the target (container restart); returns seconds until SSH answers again.

    The target comes back with a new bridge address: `target` and its workdir files are
    updated (the loopback ports stay)."""
    start = time.monotonic()
    podman("restart", "--time", "10", target.name)
    _wait("systemd after restart", lambda: _system_running(target.name), timeout)
    _wait("SSH after restart", lambda: _ssh_ok(target), timeout)
    seconds = round(time.monotonic() - start, 1)
    target.bridge_ip = podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", target.name)
    _write_inventory(target)
    (target.workdir / "target.json").write_text(target.to_json())
    return seconds


def down(target: Target) -> None:
    """Remove the target's container, volumes, key and bed files in its workdir."""
    _remove_container_and_volumes(target.name)
    _remove_workdir_files(target.workdir)


def _label(full: str, key: str) -> str:
    return podman("inspect", "--format", f'{{{{index .Config.Labels "{key}"}}}}', full,
                  check=False)


def load_target(name: str) -> Target:
    """The Target of a running bed container, from the target.json `up` wrote."""
    full = full_name(name)
    workdir = _label(full, WORKDIR_LABEL)
    if not workdir:
        raise BedError(f"no bed target named {full}")
    return Target.from_json((Path(workdir) / "target.json").read_text())


def down_by_name(name: str) -> None:
    full = full_name(name)
    workdir = _label(full, WORKDIR_LABEL)
    _remove_container_and_volumes(full)
    if workdir and Path(workdir).is_dir():
        _remove_workdir_files(Path(workdir))


def gc(max_age: float = 3 * 3600, everything: bool = False) -> list[str]:
    """Remove bed leftovers: targets whose owner process ended, targets without a live
    owner older than max_age, and volumes no bed container uses. Returns what went."""
    removed: list[str] = []
    now = time.time()
    live_runs: set[str] = set()
    listing = podman("ps", "--all", "--filter", f"label={LABEL}", "--format", "json")
    for container in json.loads(listing or "[]"):
        labels = container.get("Labels") or {}
        full = container["Names"][0]
        owner = labels.get(OWNER_LABEL, "")
        age = now - float(labels.get(CREATED_LABEL) or 0)
        # The sandbox (scripts/sandbox) is meant to outlive its command and any test run:
        # only `sandbox down` or `gc --all` removes it.
        kept = full.startswith(PREFIX + "sandbox-") and not owner
        stale = everything or (bool(owner) and not _owner_alive(owner)) or (
            not kept and not _owner_alive(owner) and age > max_age)
        if not stale:
            live_runs.add(labels.get(LABEL, ""))
            continue
        workdir = labels.get(WORKDIR_LABEL, "")
        _remove_container_and_volumes(full)
        if workdir and Path(workdir).is_dir():
            _remove_workdir_files(Path(workdir))
        removed.append(full)
    volumes = podman("volume", "ls", "--filter", f"label={LABEL}", "--format", "json")
    for volume in json.loads(volumes or "[]"):
        labels = volume.get("Labels") or {}
        age = now - float(labels.get(CREATED_LABEL) or 0)
        # A volume younger than a minute may belong to an `up` that is starting now.
        if labels.get(LABEL) not in live_runs and (everything or age > 60):
            if run([PODMAN, "volume", "rm", volume["Name"]], check=False).returncode == 0:
                removed.append(volume["Name"])
    return removed


__all__ = ["Target", "up", "down", "down_by_name", "gc", "restart", "exec_in_target",
           "load_target"]
