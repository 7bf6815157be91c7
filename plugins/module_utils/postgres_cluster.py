# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which PostgreSQL data directory the stack uses, and the major upgrade between two of them.

Layout under the postgres role's base directory:

    data/          the cluster the stack was first deployed with (any major)
    data-<major>/  a cluster the major upgrade made (dump of the older one, restored)

The cluster in use is the one of the newest major (its PG_VERSION file). An image of another
major is refused before anything changes: a newer one needs the upgrade playbook, an older
one cannot read the data. Without this, an image of a new major could only fail on the old
files, and one that picked a directory by its own major would start an empty database.

The upgrade is dump and restore, not pg_upgrade: pg_upgrade needs the old and the new
binaries in one image, while every PostgreSQL image (the official ones, the bed's) carries
one major. The old server dumps itself (pg_dumpall, roles and password hashes included), a
temporary container of the new image initialises <base>/data-<major>.new and restores the
dump, the row counts of every table are compared, and only then is the directory renamed to
data-<major>. The old directory is never written to.

Plain Python besides the runner the caller passes (``AnsibleModule.run_command``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.container import ContainerSpec, Mount, create_argv

Runner = Callable[[Union[str, List[str]]], Tuple[int, str, str]]

DATA = "data"
_DATA_RE = re.compile(r"^data(?:-(\d+))?$")
UPGRADE_PLAYBOOK = "playbooks/postgres_upgrade.yml (hearth.matrix.postgres_upgrade)"
# Where the upgrade keeps the dump and the old unit until it has finished.
WORK_DIR = "upgrade"
DUMP = "dumpall.sql"
DATA_IN_CONTAINER = "/var/lib/postgresql/data"
# Exact row counts of every table of a database, one "schema.table count" line each.
ROW_COUNTS_SQL = (
    "SELECT table_schema || '.' || table_name || ' ' || "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), "
    "false, true, '')))[1]::text FROM information_schema.tables "
    "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
)


class ClusterError(Exception):
    """One line for the operator; raised before anything changes where that is possible."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    path: str
    major: int


def read_major(data_dir: str) -> Optional[int]:
    """The major version in a data directory's PG_VERSION, None when there is no cluster."""
    try:
        with open(os.path.join(data_dir, "PG_VERSION")) as handle:
            text = handle.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    # 9.6 and older wrote "9.6": still older than 10, which is all the comparisons need.
    match = re.match(r"^(\d+)(?:\.\d+)?$", text)
    if not match:
        raise ClusterError("%s/PG_VERSION does not hold a PostgreSQL version: %r" % (data_dir, text[:40]))
    return int(match.group(1))


def clusters(base_dir: str) -> List[Cluster]:
    """The clusters under base_dir (data, data-<major>), oldest major first."""
    try:
        names = os.listdir(base_dir)
    except FileNotFoundError:
        return []
    found = []
    for name in sorted(names):
        if not _DATA_RE.match(name) or not os.path.isdir(os.path.join(base_dir, name)):
            continue
        major = read_major(os.path.join(base_dir, name))
        if major is not None:
            found.append(Cluster(os.path.join(base_dir, name), major))
    # Same major twice (data and data-17): the upgrade's directory wins.
    return sorted(found, key=lambda c: (c.major, os.path.basename(c.path) != DATA))


def current(base_dir: str) -> Optional[Cluster]:
    """The cluster in use: the one of the newest major."""
    found = clusters(base_dir)
    return found[-1] if found else None


def new_data_dir(base_dir: str, major: int) -> str:
    return os.path.join(base_dir, "%s-%d" % (DATA, major))


def image_major(env: Iterable[str]) -> Optional[int]:
    """The major of an image from its environment: PG_MAJOR (official images, the bed's), else
    a /usr/lib/postgresql/<major>/bin in PATH (Debian packages), else PG_VERSION."""
    values = dict(item.split("=", 1) for item in env if "=" in item)
    if re.match(r"^\d+$", values.get("PG_MAJOR", "")):
        return int(values["PG_MAJOR"])
    for part in values.get("PATH", "").split(":"):
        match = re.match(r"^/usr/lib/postgresql/(\d+)/bin/?$", part)
        if match:
            return int(match.group(1))
    match = re.match(r"^(\d+)[.~]", values.get("PG_VERSION", ""))
    return int(match.group(1)) if match else None


def choose_data_dir(base_dir: str, image: str, major: Optional[int], upgrading: bool = False) -> Dict[str, Any]:
    """The data directory the role mounts; refuses an image of another major than the cluster.

    upgrading: the upgrade playbook's first look, where a newer image is what it is about."""
    cluster = current(base_dir)
    if cluster is None:
        return {"data_dir": os.path.join(base_dir, DATA), "cluster_major": None, "image_major": major}
    if major is not None and major > cluster.major and not upgrading:
        raise ClusterError(
            "postgres_image %s is PostgreSQL %d but the database in %s is PostgreSQL %d: upgrade it with %s, "
            "or set postgres_image back to a PostgreSQL %d image"
            % (image, major, cluster.path, cluster.major, UPGRADE_PLAYBOOK, cluster.major))
    if major is not None and major < cluster.major:
        raise ClusterError(
            "postgres_image %s is PostgreSQL %d but the database in %s is PostgreSQL %d, which it cannot read: "
            "set postgres_image to a PostgreSQL %d image" % (image, major, cluster.path, cluster.major, cluster.major))
    return {"data_dir": cluster.path, "cluster_major": cluster.major, "image_major": major}


def inspect_image_env(run: Runner, engine_path: str, image: str) -> Optional[List[str]]:
    """The image's environment, None when the image is not on the host."""
    rc, out, _err = run([engine_path, "image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", image])
    if rc != 0:
        return None
    return [line for line in out.splitlines() if line]


# ---------------------------------------------------------------------------------------
# The upgrade


@dataclasses.dataclass(frozen=True)
class UpgradeRequest:
    base_dir: str
    image: str
    engine: str
    engine_path: str
    service: str
    database_user: str
    database_name: str
    unit_dir: str = "/etc/systemd/system"
    ready_timeout: int = 120
    # hearth.matrix.component's record of a restart it still owes (its pending_dir).
    pending_dir: str = "/run/hearth-matrix/pending-restart"

    @property
    def work_dir(self) -> str:
        return os.path.join(self.base_dir, WORK_DIR)

    @property
    def unit_path(self) -> str:
        return os.path.join(self.unit_dir, self.service + ".service")

    @property
    def saved_unit(self) -> str:
        return os.path.join(self.work_dir, self.service + ".service")


def plan_upgrade(base_dir: str, image: str, major: Optional[int]) -> Dict[str, Any]:
    """What the upgrade does; raises when it cannot (nothing changed yet)."""
    cluster = current(base_dir)
    if cluster is None:
        raise ClusterError("no PostgreSQL data directory under %s (postgres_base_dir): nothing to upgrade, "
                           "deploy the stack with the site playbook" % base_dir)
    if major is None:
        raise ClusterError("cannot tell the PostgreSQL major of postgres_image %s: its environment has neither PG_MAJOR "
                           "nor /usr/lib/postgresql/<major>/bin in PATH" % image)
    choose_data_dir(base_dir, image, major, upgrading=True)
    needed = major > cluster.major
    return {"needed": needed, "old_dir": cluster.path, "old_major": cluster.major, "new_major": major,
            "new_dir": new_data_dir(base_dir, major) if needed else cluster.path}


def restore_lines(lines: Iterable[str], bootstrap_user: str) -> Iterator[str]:
    """The dump without the CREATE ROLE of the new cluster's bootstrap superuser (initdb made
    it already; its ALTER ROLE, with the old password hash, stays)."""
    skip = {"CREATE ROLE %s;" % bootstrap_user, 'CREATE ROLE "%s";' % bootstrap_user}
    for line in lines:
        if line.rstrip("\n") not in skip:
            yield line


def temporary_spec(component: Mapping[str, Any], request: UpgradeRequest, new_dir: str) -> ContainerSpec:
    """The role's own container (user, read-only root, no capabilities, tmpfs, password file),
    on the new directory, without network or health check, as a plain server: the image's
    command is not used (the unit's settings apply only when the role runs it)."""
    spec = component_from_dict(component).container
    if spec is None:
        raise ClusterError("the planned postgres component has no container")
    mounts = tuple(Mount(source=new_dir, target=m.target, read_only=False) if m.target == DATA_IN_CONTAINER else m
                   for m in spec.mounts)
    if mounts == spec.mounts:
        raise ClusterError("the postgres container mounts nothing at %s" % DATA_IN_CONTAINER)
    # POSTGRES_DB=postgres: initdb creates no database; the dump creates them with their owners.
    env = tuple((k, "postgres" if k == "POSTGRES_DB" else v) for k, v in spec.env)
    return dataclasses.replace(spec, name=request.service + "-upgrade", image=request.image, mounts=mounts, env=env,
                               networks=("none",), address=None, hosts=(), ports=(), healthcheck=None,
                               labels=(), command=("postgres",), entrypoint=None)


def _check(run: Runner, argv: Union[str, List[str]], what: str) -> str:
    rc, out, err = run(argv)
    if rc != 0:
        raise ClusterError("%s failed (rc=%d): %s" % (what, rc, " ".join((err or out).split())[-400:]))
    return out


def _psql(request: UpgradeRequest, container: str, database: str, *args: str) -> List[str]:
    return [request.engine_path, "exec", container, "psql", "-AtX", "-v", "ON_ERROR_STOP=1", "--username",
            request.database_user, "--dbname", database] + list(args)


def row_counts(run: Runner, request: UpgradeRequest, container: str) -> str:
    return _check(run, _psql(request, container, request.database_name, "-c", ROW_COUNTS_SQL),
                  "counting the rows in %s" % container)


def _wait_ready(run: Runner, request: UpgradeRequest, container: str) -> None:
    # Over TCP: the entrypoint's initialising server listens on the socket only.
    probe = [request.engine_path, "exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", request.database_user,
             "-d", "postgres"]
    deadline = time.monotonic() + request.ready_timeout
    while run(probe)[0] != 0:
        state = run([request.engine_path, "inspect", "--format", "{{.State.Running}}", container])[1].strip()
        if state != "true" or time.monotonic() > deadline:
            logs = run([request.engine_path, "logs", "--tail", "5", container])
            raise ClusterError("the new server (%s) did not come up: %s" % (request.image, " ".join((logs[1] + logs[2]).split())[-400:]))
        time.sleep(1)


def _remove_tree(path: str) -> None:
    if os.path.lexists(path):
        shutil.rmtree(path)


def prepare(run: Runner, request: UpgradeRequest, plan: Mapping[str, Any], component: Mapping[str, Any]) -> Dict[str, Any]:
    """Dump the running old server, restore into a new cluster, compare, commit the directory.

    Synapse must be stopped (the dump is then the last state). On failure nothing but the
    temporary container and the .new directory was made, and both are removed."""
    new_dir, old_dir = plan["new_dir"], plan["old_dir"]
    staging = new_dir + ".new"
    temp = request.service + "-upgrade"
    os.makedirs(request.work_dir, mode=0o700, exist_ok=True)
    os.chmod(request.work_dir, 0o700)
    # The unit as it runs the old server now: the rollback puts exactly it back.
    if os.path.isfile(request.unit_path):
        shutil.copy2(request.unit_path, request.saved_unit)
    dump = os.path.join(request.work_dir, DUMP)
    dump_argv = [request.engine_path, "exec", request.service, "pg_dumpall", "--username", request.database_user]
    _check(run, "umask 077 && %s > %s" % (" ".join(shlex.quote(a) for a in dump_argv), shlex.quote(dump)),
           "pg_dumpall in %s" % request.service)
    os.chmod(dump, 0o600)  # password hashes: root only, whatever the shell's umask did
    old_counts = row_counts(run, request, request.service)
    filtered = dump + ".restore"
    with open(dump) as source, open(os.open(filtered, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as target:
        target.writelines(restore_lines(source, request.database_user))
    spec = temporary_spec(component, request, staging)
    owner = os.stat(old_dir)
    run([request.engine_path, "rm", "--force", temp])
    try:
        _remove_tree(staging)
        os.mkdir(staging, 0o700)
        os.chown(staging, owner.st_uid, owner.st_gid)
        _check(run, create_argv(spec, request.engine, request.engine_path), "creating the temporary container %s" % temp)
        _check(run, [request.engine_path, "start", temp], "starting the temporary container %s" % temp)
        _wait_ready(run, request, temp)
        restore = _psql(request, temp, "postgres", "-q", "-f", "-")
        restore.insert(2, "-i")
        _check(run, "%s < %s" % (" ".join(shlex.quote(a) for a in restore), shlex.quote(filtered)),
               "restoring the dump into PostgreSQL %d" % plan["new_major"])
        new_counts = row_counts(run, request, temp)
        if new_counts != old_counts:
            raise ClusterError("the restored database differs from the old one (row counts of %s)" % request.database_name)
        _check(run, [request.engine_path, "stop", "--time=60", temp], "stopping the temporary container %s" % temp)
        if read_major(staging) != plan["new_major"]:
            raise ClusterError("%s holds no PostgreSQL %d cluster after the restore" % (staging, plan["new_major"]))
    except BaseException:
        run([request.engine_path, "rm", "--force", temp])
        _remove_tree(staging)
        raise
    finally:
        os.unlink(filtered)
    run([request.engine_path, "rm", "--force", temp])
    # The commit: from here on the role uses the new directory (newest major).
    os.rename(staging, new_dir)
    return {"changed": True, "new_dir": new_dir, "old_dir": old_dir,
            "tables": len(new_counts.splitlines()), "dump_bytes": os.path.getsize(dump)}


def rollback(run: Runner, request: UpgradeRequest, plan: Mapping[str, Any]) -> Dict[str, Any]:
    """The old server back: the new directory removed (it holds nothing the old one does not),
    the old unit restored, the server restarted, then the dump and saved unit removed.
    Synapse is the playbook's to start."""
    changes: List[str] = []
    new_dir, old_dir = plan["new_dir"], plan["old_dir"]
    run([request.engine_path, "rm", "--force", request.service + "-upgrade"])
    for path in (new_dir + ".new", new_dir):
        if path != old_dir and os.path.lexists(path):
            _remove_tree(path)
            changes.append("removed %s" % path)
    unit_changed = False
    if os.path.isfile(request.saved_unit):
        with open(request.saved_unit, "rb") as handle:
            saved = handle.read()
        existing = b""
        if os.path.isfile(request.unit_path):
            with open(request.unit_path, "rb") as handle:
                existing = handle.read()
        if existing != saved:
            shutil.copy2(request.saved_unit, request.unit_path)
            unit_changed = True
            changes.append("restored %s" % request.unit_path)
    if unit_changed:
        _check(run, ["systemctl", "daemon-reload"], "systemctl daemon-reload")
    active = run(["systemctl", "is-active", "--quiet", request.service + ".service"])[0] == 0
    if unit_changed or not active:
        _check(run, ["systemctl", "restart", request.service + ".service"], "restarting %s on %s" % (request.service, old_dir))
        changes.append("restarted %s" % request.service)
    # The failed converge recorded a restart of the new unit it never finished; the old unit
    # now runs, so that restart is owed no more (else the next site run would do it).
    pending = os.path.join(request.pending_dir, request.service)
    if os.path.exists(pending):
        os.unlink(pending)
        changes.append("removed %s" % pending)
    # The old server runs: the dump and the saved unit are of no more use (kept if anything
    # above failed, for the operator).
    if finish(request)["changed"]:
        changes.append("removed %s" % request.work_dir)
    return {"changed": bool(changes), "changes": changes}


def finish(request: UpgradeRequest) -> Dict[str, Any]:
    """The upgrade succeeded: the dump and the saved unit go (the old directory stays)."""
    if not os.path.lexists(request.work_dir):
        return {"changed": False}
    _remove_tree(request.work_dir)
    return {"changed": True}
