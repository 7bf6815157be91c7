# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a hearth.matrix host: what is kept, the manifest, checks, retention, restore.

A backup is a directory (root only: directories 0700, files 0600)::

    <backup>/manifest.json          what is in it: server name, signing key id, versions,
                                    every file with its size, sha256, owner and mode
    <backup>/database.dump          pg_dump --format=custom of Synapse's database
    <backup>/files/<path>           each kept file, <path> relative to the base directory

Kept are the files that cannot be regenerated (``STATE_PATHS``): Synapse's signing key, every
generated secret, the proxy's private CA and certificate, the ACME client's account and
certificates, the media store and the identity server's database. Everything else
(configuration, units) is rendered again by the site playbook from the same variables.

Symbolic links are kept only as links (never followed), and only relative ones that stay
inside the kept tree they are in (certbot's ``live/`` links into ``archive/``): the manifest
records the link's text and a restore makes the same link. Any other link is skipped.

Plain Python (standard library only): the modules use it, and the host's backup timer runs
the same ``take_backup`` through a copy of this file (``playbooks/files/hearth-matrix-backup``).
Commands go through a runner the caller passes: ``AnsibleModule.run_command`` or
``subprocess``.
"""

from __future__ import annotations

import datetime
import glob
import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import shlex
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

FORMAT = "hearth-matrix-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
FILES_DIR = "files"
SIGNING_KEY = "synapse/keys/signing.key"
HOMESERVER_CONFIG = "synapse/config/homeserver.yaml"
# data, or data-<major> after a major upgrade (module_utils/postgres_cluster.py).
POSTGRES_VERSION_FILES = "postgres/data*/PG_VERSION"

# Relative to the base directory; a pattern matches one path level per '*'.
STATE_PATHS: Tuple[str, ...] = (
    "secrets",
    "*/secrets",
    "synapse/keys",
    "synapse/data/media_store",
    "nginx-proxy/ca",
    "nginx-proxy/tls",
    # hearth.matrix.acme's client (certbot): account key, archive/ and the live/ links into it.
    "acme",
    "identity/data",
)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
TIMESTAMP_RE = re.compile(r"^\d{8}T\d{6}Z$")
_KEY_RE = re.compile(r"^(ed25519) (\S+) (\S+)\s*$")
_SERVER_NAME_RE = re.compile(r"""^server_name:\s*["']?([^"'\s#]+)""", re.MULTILINE)
_CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore cannot go on; the message is one line for the user."""


@dataclass(frozen=True)
class Entry:
    """One file or directory of a backup, relative to the base directory."""

    path: str
    kind: str  # "file", "dir" or "link"
    mode: int
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    link: str = ""  # a link's text: relative, resolving inside the base directory

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"path": self.path, "type": self.kind, "mode": "%04o" % self.mode, "uid": self.uid, "gid": self.gid}
        if self.kind == "file":
            data.update(size=self.size, sha256=self.sha256)
        if self.kind == "link":
            data.update(target=self.link)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Entry":
        try:
            path = str(data["path"])
            kind = str(data["type"])
            entry = cls(path=path, kind=kind, mode=int(str(data["mode"]), 8), uid=int(data["uid"]), gid=int(data["gid"]),
                        size=int(data.get("size", 0)), sha256=str(data.get("sha256", "")), link=str(data.get("target", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError("manifest entry %r is malformed: %s" % (data, exc)) from exc
        check_relative(entry.path)
        if kind not in ("file", "dir", "link"):
            raise BackupError("manifest entry %s has unknown type %r" % (path, kind))
        if kind == "file" and not re.match(r"^[0-9a-f]{64}$", entry.sha256):
            raise BackupError("manifest entry %s has no sha256" % path)
        if kind == "link" and not link_stays_inside(entry.path, entry.link, "."):
            raise BackupError("manifest entry %s links to %r, outside the base directory" % (path, entry.link))
        return entry


def link_stays_inside(path: str, link: str, tree: str) -> bool:
    """Whether a link at ``path`` with text ``link`` names something inside ``tree`` (all
    relative to the base directory, "." for all of it), judged by the text alone: a restore
    must never make a link that leads out of what it restores."""
    if not link or os.path.isabs(link) or "\0" in link:
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), link))
    if resolved == ".." or resolved.startswith("../"):
        return False
    return tree == "." or resolved == tree or resolved.startswith(tree.rstrip("/") + "/")


def finish(module: Any, what: str, step: Callable[[], Dict[str, Any]]) -> None:
    """Run a module's step and exit with its result; a BackupError or OSError becomes one
    failure line (shared by the backup and restore modules)."""
    try:
        result = step()
    except BackupError as exc:
        module.fail_json(msg=str(exc))
        return
    except OSError as exc:
        module.fail_json(msg="%s failed: %s: %s" % (what, exc.filename or "", exc.strerror or exc))
        return
    module.exit_json(**result)


def check_relative(path: str) -> str:
    """A manifest path: relative, normalised, never leaving its directory."""
    if path == ".":
        return path
    if not path or path.startswith("/") or os.path.normpath(path) != path or path.split("/")[0] == "..":
        raise BackupError("manifest path %r is not a plain relative path" % path)
    return path


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def timestamp(now: Optional[datetime.datetime] = None) -> str:
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)


def signing_key_id(text: str) -> str:
    """``ed25519:a_AbCd`` from Synapse's signing key file (``ed25519 a_AbCd <seed>``)."""
    lines = [line for line in text.splitlines() if line.strip()]
    match = _KEY_RE.match(lines[0]) if lines else None
    if not match:
        raise BackupError("the signing key file is not in Synapse's format (ed25519 <id> <seed>)")
    return "%s:%s" % (match.group(1), match.group(2))


def server_name_from_config(text: str) -> str:
    """The server_name of a homeserver.yaml, '' when absent."""
    match = _SERVER_NAME_RE.search(text)
    return match.group(1) if match else ""


def _matches(base_dir: str, pattern: str) -> List[str]:
    """Existing directories or files under base_dir matching a relative pattern."""
    found = [""]
    for part in pattern.split("/"):
        nxt = []
        for prefix in found:
            here = os.path.join(base_dir, prefix) if prefix else base_dir
            if any(ch in part for ch in "*?["):
                try:
                    names = sorted(os.listdir(here))
                except OSError:
                    names = []
                nxt.extend(os.path.join(prefix, name) if prefix else name for name in names if fnmatch.fnmatchcase(name, part))
            else:
                candidate = os.path.join(prefix, part) if prefix else part
                if os.path.lexists(os.path.join(base_dir, candidate)):
                    nxt.append(candidate)
        found = nxt
    return [path for path in found if not os.path.islink(os.path.join(base_dir, path))]


def _entry(base_dir: str, rel: str, kind: str) -> Entry:
    full = os.path.join(base_dir, rel) if rel != "." else base_dir
    info = os.lstat(full)
    return Entry(path=rel, kind=kind, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid, gid=info.st_gid,
                 size=info.st_size if kind == "file" else 0, link=os.readlink(full) if kind == "link" else "")


def collect(base_dir: str, patterns: Iterable[str] = STATE_PATHS) -> List[Entry]:
    """Every kept file and directory under base_dir, with the directories leading to them,
    parents first, and the relative links that stay inside their kept tree (as links). No
    checksums yet."""
    if not os.path.isdir(base_dir):
        raise BackupError("hearth_base_dir %s does not exist on the host" % base_dir)
    entries: Dict[str, Entry] = {}

    def add_parents(rel: str) -> None:
        parts = rel.split("/")[:-1]
        for depth in range(len(parts) + 1):
            parent = "/".join(parts[:depth]) or "."
            if parent not in entries:
                entries[parent] = _entry(base_dir, parent, "dir")

    for pattern in patterns:
        for rel in _matches(base_dir, pattern):
            full = os.path.join(base_dir, rel)
            add_parents(rel)
            if os.path.isfile(full):
                entries[rel] = _entry(base_dir, rel, "file")
                continue
            if not os.path.isdir(full):
                continue
            entries.setdefault(rel, _entry(base_dir, rel, "dir"))
            for root, dirs, files in os.walk(full):
                dirs.sort()
                for name in dirs + sorted(files):
                    child = os.path.relpath(os.path.join(root, name), base_dir)
                    child_full = os.path.join(base_dir, child)
                    if os.path.islink(child_full):
                        if link_stays_inside(child, os.readlink(child_full), rel):
                            entries.setdefault(child, _entry(base_dir, child, "link"))
                        continue
                    if os.path.isdir(child_full):
                        entries.setdefault(child, _entry(base_dir, child, "dir"))
                    elif os.path.isfile(child_full):
                        entries.setdefault(child, _entry(base_dir, child, "file"))
    return sort_entries(entries.values())


def sort_entries(entries: Iterable[Entry]) -> List[Entry]:
    return sorted(entries, key=lambda e: (e.path != ".", e.path.split("/")))


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def copy_into_backup(base_dir: str, backup_dir: str, entries: Iterable[Entry]) -> List[Entry]:
    """Copy each file to <backup_dir>/files/<path> (0600, directories 0700); the returned
    entries carry the size and sha256 of the copy, so the manifest describes what was kept."""
    result: List[Entry] = []
    files_root = os.path.join(backup_dir, FILES_DIR)
    _private_dir(files_root)
    for entry in entries:
        target = os.path.join(files_root, entry.path) if entry.path != "." else files_root
        if entry.kind == "dir":
            _private_dir(target)
            result.append(entry)
            continue
        if entry.kind == "link":
            result.append(entry)  # the manifest holds the link's text; nothing to copy
            continue
        _private_dir(os.path.dirname(target))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, open(os.path.join(base_dir, entry.path), "rb") as source:
            shutil.copyfileobj(source, out, _CHUNK)
        os.chmod(target, 0o600)
        result.append(Entry(path=entry.path, kind="file", mode=entry.mode, uid=entry.uid, gid=entry.gid,
                            size=os.path.getsize(target), sha256=sha256_file(target)))
    return result


def build_manifest(*, server_name: str, key_id: str, created: str, versions: Dict[str, str], entries: List[Entry],
                   database: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": created,
        "server_name": server_name,
        "signing_key_id": key_id,
        "versions": dict(versions),
        "database": database,
        "files": [entry.to_dict() for entry in entries],
    }


def write_private_json(path: str, data: Dict[str, Any]) -> None:
    """Write JSON through a 0600 temporary file and a rename."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_manifest(backup_dir: str) -> Dict[str, Any]:
    path = os.path.join(backup_dir, MANIFEST)
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except OSError as exc:
        raise BackupError("no backup at %s: cannot read %s (%s)" % (backup_dir, MANIFEST, exc.strerror)) from exc
    except ValueError as exc:
        raise BackupError("%s is not valid JSON: %s" % (path, exc)) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("%s is not a hearth.matrix backup manifest" % path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError("%s has format_version %r, this collection reads %d" % (path, manifest.get("format_version"), FORMAT_VERSION))
    for key in ("server_name", "signing_key_id", "files"):
        if not manifest.get(key):
            raise BackupError("%s has no %s" % (path, key))
    return manifest


def manifest_entries(manifest: Dict[str, Any]) -> List[Entry]:
    return [Entry.from_dict(item) for item in manifest["files"]]


def signing_key_sha256(manifest: Dict[str, Any]) -> str:
    for entry in manifest_entries(manifest):
        if entry.path == SIGNING_KEY and entry.kind == "file":
            return entry.sha256
    raise BackupError("the backup holds no %s" % SIGNING_KEY)


def _check_file(path: str, rel: str, size: int, sha256: str) -> None:
    if not os.path.isfile(path):
        raise BackupError("the backup is incomplete: %s is missing" % rel)
    if os.path.getsize(path) != size:
        raise BackupError("the backup is damaged: %s has %d bytes, the manifest says %d" % (rel, os.path.getsize(path), size))
    if sha256_file(path) != sha256:
        raise BackupError("the backup is damaged: the sha256 of %s differs from the manifest" % rel)


def verify(backup_dir: str) -> Dict[str, Any]:
    """The manifest, once every file and the dump match their size and sha256."""
    manifest = read_manifest(backup_dir)
    entries = manifest_entries(manifest)
    signing_key_sha256(manifest)
    for entry in entries:
        if entry.kind == "file":
            _check_file(os.path.join(backup_dir, FILES_DIR, entry.path), FILES_DIR + "/" + entry.path, entry.size, entry.sha256)
    database = manifest.get("database")
    if database:
        _check_file(os.path.join(backup_dir, DUMP), DUMP, int(database["size"]), str(database["sha256"]))
    return manifest


def summary(manifest: Dict[str, Any]) -> Dict[str, Any]:
    """What a restore needs to know and may show (no secret values)."""
    entries = manifest_entries(manifest)
    return {
        "server_name": manifest["server_name"],
        "signing_key_id": manifest["signing_key_id"],
        "signing_key_sha256": signing_key_sha256(manifest),
        "created": manifest.get("created", ""),
        "versions": manifest.get("versions", {}),
        "database": bool(manifest.get("database")),
        "file_count": sum(1 for entry in entries if entry.kind == "file"),
        "bytes": sum(entry.size for entry in entries) + int((manifest.get("database") or {}).get("size", 0)),
    }


def expired(names: Iterable[str], keep: int) -> List[str]:
    """Backup names (UTC timestamps) beyond the newest ``keep``; 0 keeps all."""
    stamps = sorted(name for name in names if TIMESTAMP_RE.match(name))
    if keep <= 0 or len(stamps) <= keep:
        return []
    return stamps[:-keep]


@dataclass(frozen=True)
class HostIdentity:
    """Which server's data a host holds, from its files ('' = none)."""

    server_name: str
    signing_key_sha256: str
    has_database: bool

    @property
    def empty(self) -> bool:
        return not (self.server_name or self.signing_key_sha256 or self.has_database)


def host_identity(base_dir: str) -> HostIdentity:
    key = os.path.join(base_dir, SIGNING_KEY)
    config = os.path.join(base_dir, HOMESERVER_CONFIG)
    server_name = ""
    if os.path.isfile(config):
        with open(config) as handle:
            server_name = server_name_from_config(handle.read())
    return HostIdentity(server_name=server_name, signing_key_sha256=sha256_file(key) if os.path.isfile(key) else "",
                        has_database=bool(glob.glob(os.path.join(base_dir, POSTGRES_VERSION_FILES))))


def check_restore(summary_: Dict[str, Any], host: HostIdentity, server_name: str, force: bool) -> str:
    """'fresh', 'same' or 'forced'; raises when the restore must not go on."""
    if server_name and server_name != summary_["server_name"]:
        raise BackupError("hearth_server_name is %s but the backup is of %s: set hearth_server_name: %s"
                          % (server_name, summary_["server_name"], summary_["server_name"]))
    if host.empty:
        return "fresh"
    other = []
    if host.server_name and host.server_name != summary_["server_name"]:
        other.append("server name %s" % host.server_name)
    if host.signing_key_sha256 and host.signing_key_sha256 != summary_["signing_key_sha256"]:
        other.append("another signing key")
    if not other:
        return "same"
    if force:
        return "forced"
    raise BackupError("this host already holds another server's data (%s, not %s of the backup); nothing was changed: "
                      "set hearth_restore_force: true to overwrite it" % (", ".join(other), summary_["server_name"]))


@dataclass(frozen=True)
class Placement:
    """What restoring one entry changes on the host."""

    entry: Entry
    content: bool
    attributes: bool

    @property
    def changed(self) -> bool:
        return self.content or self.attributes


def plan_restore(backup_dir: str, base_dir: str, entries: Iterable[Entry]) -> List[Placement]:
    plan: List[Placement] = []
    for entry in entries:
        target = os.path.join(base_dir, entry.path) if entry.path != "." else base_dir
        if entry.kind == "dir":
            if os.path.isdir(target) and not os.path.islink(target):
                info = os.lstat(target)
                attrs = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) != (entry.mode, entry.uid, entry.gid)
                plan.append(Placement(entry, content=False, attributes=attrs))
            else:
                plan.append(Placement(entry, content=True, attributes=True))
            continue
        if entry.kind == "link":
            if os.path.islink(target) and os.readlink(target) == entry.link:
                info = os.lstat(target)
                plan.append(Placement(entry, content=False, attributes=(info.st_uid, info.st_gid) != (entry.uid, entry.gid)))
            else:
                plan.append(Placement(entry, content=True, attributes=True))
            continue
        if os.path.isfile(target) and not os.path.islink(target):
            info = os.lstat(target)
            content = info.st_size != entry.size or sha256_file(target) != entry.sha256
            attrs = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) != (entry.mode, entry.uid, entry.gid)
            plan.append(Placement(entry, content=content, attributes=attrs))
        else:
            plan.append(Placement(entry, content=True, attributes=True))
    return plan


def apply_placement(backup_dir: str, base_dir: str, placement: Placement) -> None:
    """Put one entry in place: directories created, files written through a 0600 temporary
    file and a rename, then owner and mode as recorded."""
    entry = placement.entry
    target = os.path.join(base_dir, entry.path) if entry.path != "." else base_dir
    parent = os.path.dirname(os.path.normpath(target))
    if entry.path != "." and os.path.realpath(parent) != os.path.join(os.path.realpath(base_dir), os.path.dirname(entry.path)).rstrip("/"):
        raise BackupError("%s lies behind a symbolic link; nothing is restored through one" % target)
    if entry.kind == "link":
        if os.path.isdir(target) and not os.path.islink(target):
            raise BackupError("%s is a directory where the backup has a link" % target)
        if placement.content:
            # A new link under a temporary name, renamed over the old: never a moment without.
            tmp = os.path.join(parent, ".hearth-restore-link-%s" % os.path.basename(target))
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(entry.link, tmp)
            os.rename(tmp, target)
        os.lchown(target, entry.uid, entry.gid)
        return
    if entry.kind == "dir":
        if os.path.lexists(target) and not os.path.isdir(target):
            raise BackupError("%s is in the way of a directory of the backup" % target)
        os.makedirs(target, mode=0o700, exist_ok=True)
    elif placement.content:
        if os.path.isdir(target) and not os.path.islink(target):
            raise BackupError("%s is a directory where the backup has a file" % target)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".hearth-restore-")
        try:
            with os.fdopen(fd, "wb") as out, open(os.path.join(backup_dir, FILES_DIR, entry.path), "rb") as source:
                shutil.copyfileobj(source, out, _CHUNK)
            os.chown(tmp, entry.uid, entry.gid)
            os.chmod(tmp, entry.mode)
            os.rename(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    os.chown(target, entry.uid, entry.gid)
    os.chmod(target, entry.mode)


# Runs a command: an argv list directly, a string through /bin/sh; returns (rc, stdout, stderr).
Runner = Callable[[Union[str, List[str]]], Tuple[int, str, str]]


@dataclass(frozen=True)
class BackupRequest:
    """One backup to take; the error messages name the playbook's variables."""

    engine_path: str
    base_dir: str = "/opt/hearth-matrix"
    root: str = "/var/backups/hearth-matrix"
    name: str = ""
    keep: int = 7
    database: bool = True
    postgres_service: str = "hearth-postgres"
    database_name: str = "synapse"
    database_user: str = "synapse"
    synapse_service: str = "hearth-synapse"
    server_name: str = ""


def existing_backups(root: str) -> List[str]:
    if not os.path.isdir(root):
        return []
    return sorted(name for name in os.listdir(root) if TIMESTAMP_RE.match(name) and os.path.isfile(os.path.join(root, name, MANIFEST)))


def plan_backup(request: BackupRequest, now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """Checks the request; the backup's path and name, the backups before and those that go."""
    name = request.name or timestamp(now)
    if "/" in name or name in (".", ".."):
        raise BackupError("hearth_backup_dir must end in a plain directory name, got %r" % name)
    dest = os.path.join(request.root, name)
    if os.path.lexists(dest):
        raise BackupError("the backup directory %s exists already: choose another hearth_backup_dir" % dest)
    if request.keep < 0:
        raise BackupError("hearth_backup_keep must be 0 (keep all) or more, got %d" % request.keep)
    key_path = os.path.join(request.base_dir, SIGNING_KEY)
    if not os.path.isfile(key_path):
        raise BackupError("no Synapse signing key at %s: is hearth_base_dir right and the stack deployed?" % key_path)
    before = existing_backups(request.root)
    return {"path": dest, "name": name, "before": before, "removed": expired(before + [name], request.keep)}


def _answer(run: Runner, argv: List[str]) -> str:
    rc, out, _err = run(argv)
    return out.strip() if rc == 0 and out.strip() else "unknown"


def _dump(request: BackupRequest, run: Runner, dest: str) -> Dict[str, Any]:
    argv = [request.engine_path, "exec", request.postgres_service, "pg_dump", "--format=custom", "--username", request.database_user,
            "--dbname", request.database_name]
    # Streamed by the shell straight into the file (0600 from the umask): a dump may be larger than memory.
    rc, _out, err = run("umask 077 && %s > %s" % (" ".join(shlex.quote(arg) for arg in argv), shlex.quote(dest)))
    if rc != 0:
        raise BackupError("pg_dump in %s failed (rc=%d): %s" % (request.postgres_service, rc, " ".join(err.split())[-400:]))
    os.chmod(dest, 0o600)
    return {"path": DUMP, "format": "custom", "name": request.database_name, "user": request.database_user,
            "size": os.path.getsize(dest), "sha256": sha256_file(dest)}


def take_backup(request: BackupRequest, run: Runner, plan: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Dump, copy, manifest, then retention. A failed backup leaves no directory behind."""
    plan = plan or plan_backup(request)
    dest, name = plan["path"], plan["name"]
    with open(os.path.join(request.base_dir, SIGNING_KEY)) as handle:
        key_id = signing_key_id(handle.read())
    server_name = host_identity(request.base_dir).server_name or request.server_name
    os.makedirs(request.root, mode=0o700, exist_ok=True)
    os.chmod(request.root, 0o700)
    os.mkdir(dest, 0o700)
    try:
        database = _dump(request, run, os.path.join(dest, DUMP)) if request.database else None
        entries = copy_into_backup(request.base_dir, dest, collect(request.base_dir))
        engine = request.engine_path
        versions = {
            "synapse": _answer(run, [engine, "exec", request.synapse_service, "python3", "-c", "import synapse; print(synapse.__version__)"]),
            "postgresql": _answer(run, [engine, "exec", request.postgres_service, "psql", "-AtX", "--username", request.database_user,
                                        "--dbname", request.database_name, "-c", "SHOW server_version"]) if request.database else "external",
        }
        manifest = build_manifest(server_name=server_name, key_id=key_id, created=name if TIMESTAMP_RE.match(name) else timestamp(),
                                  versions=versions, entries=entries, database=database)
        write_private_json(os.path.join(dest, MANIFEST), manifest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    for old in plan["removed"]:
        shutil.rmtree(os.path.join(request.root, old))
    files = [MANIFEST] + ([DUMP] if database else []) + [FILES_DIR + "/" + e.path for e in entries if e.kind == "file"]
    return {"path": dest, "name": name, "removed": plan["removed"], "server_name": server_name, "signing_key_id": key_id,
            "versions": versions, "files": files, "bytes": sum(e.size for e in entries) + (database["size"] if database else 0)}
