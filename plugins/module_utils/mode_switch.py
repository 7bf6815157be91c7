# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a deployed stack between a rootful and a rootless engine mode, data kept.

A container's uid U is host uid U under a rootful engine, and ``subuid_start + U - 1``
(0: the service user) under the service user's rootless engine (engine_mode.IdMap). The
same data directory therefore needs other host owners in the other mode. Each component's
base directory records the mapping its files were last given (``MARKER``: absent means
rootful, which is how every deployment starts). When a run's mapping differs:

1. the services of that component the other mode runs (system units for rootful, the
   service user's units for rootless; found by the ``# instance:`` line, whatever their
   service name) are stopped and removed with their containers, since they hold the data,
   the fixed address and the published ports;
2. every file under the component's directories gets its owner and group translated:
   host id -> container id under the old mapping -> host id under the new one. Ids that
   are no container's under the old mapping (e.g. a file an operator owns) are left alone;
3. the marker is written last. A run cut off before it translates again from the old
   mapping. Ids already moved into a subordinate range are outside the old mapping and
   stay; the one id that can be taken twice is a container root's file moved to the service
   user, if that user's uid is also a container uid under the old mapping.
"""

from __future__ import annotations

import os
import pwd
from typing import Iterator, List, Optional, Sequence, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import IdMap, IdRange

MARKER = ".hearth-owners"
ROOTFUL_TEXT = "rootful"


def marker_text(idmap: Optional[IdMap]) -> str:
    if idmap is None:
        return ROOTFUL_TEXT + "\n"
    return "rootless uid=%d gid=%d subuid=%d:%d subgid=%d:%d\n" % (
        idmap.user_uid, idmap.user_gid, idmap.subuid.start, idmap.subuid.count, idmap.subgid.start, idmap.subgid.count)


def parse_marker(text: Optional[str]) -> Optional[IdMap]:
    """The mapping a marker records (None: rootful, also for no marker). A marker that
    cannot be read as ours raises ValueError: guessing could give the data wrong owners."""
    if text is None or text.strip() == ROOTFUL_TEXT:
        return None
    words = text.split()
    fields = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    try:
        if words[0] != "rootless":
            raise ValueError(words[0])
        subuid = [int(part) for part in fields["subuid"].split(":")]
        subgid = [int(part) for part in fields["subgid"].split(":")]
        return IdMap(int(fields["uid"]), int(fields["gid"]), IdRange(subuid[0], subuid[1]), IdRange(subgid[0], subgid[1]))
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError("unreadable owner marker %r" % text.strip()[:80]) from exc


def same_mapping(a: Optional[IdMap], b: Optional[IdMap]) -> bool:
    return marker_text(a) == marker_text(b)


def _container_id(host_id: int, own: int, sub: IdRange) -> Optional[int]:
    if host_id == own:
        return 0
    if sub.start <= host_id <= sub.end:
        return host_id - sub.start + 1
    return None


def _host_id(container_id: int, own: int, sub: IdRange) -> Optional[int]:
    if container_id == 0:
        return own
    return sub.start + container_id - 1 if container_id <= sub.count else None


def translate(host_id: int, old: Optional[IdMap], new: Optional[IdMap], kind: str) -> int:
    """``host_id`` (a uid, or a gid with kind "gid") under ``old`` as the host id of the same
    container id under ``new``; unchanged when it is no container's id under ``old`` or
    has none under ``new``."""
    if old is None:
        container_id: Optional[int] = host_id
    elif kind == "uid":
        container_id = _container_id(host_id, old.user_uid, old.subuid)
    else:
        container_id = _container_id(host_id, old.user_gid, old.subgid)
    if container_id is None:
        return host_id
    if new is None:
        return container_id
    result = (_host_id(container_id, new.user_uid, new.subuid) if kind == "uid"
              else _host_id(container_id, new.user_gid, new.subgid))
    return host_id if result is None else result


def _paths(roots: Sequence[str]) -> Iterator[str]:
    """Every path under the roots (each once; links themselves, never followed)."""
    seen = set()
    for root in roots:
        if not os.path.isdir(root) or os.path.islink(root):
            continue
        for directory, dirnames, filenames in os.walk(root, followlinks=False):
            for name in [""] + dirnames + filenames:
                path = os.path.join(directory, name) if name else directory
                if path not in seen:
                    seen.add(path)
                    yield path


def translate_tree(roots: Sequence[str], old: Optional[IdMap], new: Optional[IdMap]) -> int:
    """Translate the owner and group of every path under ``roots``; returns how many moved.
    The mode is kept (chown clears set-id bits, which none of the stack's files carry)."""
    moved = 0
    for path in _paths(roots):
        info = os.lstat(path)
        uid, gid = translate(info.st_uid, old, new, "uid"), translate(info.st_gid, old, new, "gid")
        if (uid, gid) != (info.st_uid, info.st_gid):
            os.lchown(path, uid, gid)
            if not os.path.islink(path):
                os.chmod(path, info.st_mode & 0o7777)
            moved += 1
    return moved


def read_marker(base_dir: str) -> Optional[str]:
    try:
        with open(os.path.join(base_dir, MARKER), "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_marker(base_dir: str, idmap: Optional[IdMap]) -> None:
    path = os.path.join(base_dir, MARKER)
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(marker_text(idmap))
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def base_dir_of(instance: str) -> str:
    """The base directory an instance ("<role>@<base dir>") names ("" for none)."""
    return instance.split("@", 1)[1] if "@" in instance else ""


def user_unit_dir_of(idmap: IdMap) -> Tuple[str, str, str]:
    """(name, home, unit dir) of the service user a rootless mapping belongs to."""
    entry = pwd.getpwuid(idmap.user_uid)
    return entry.pw_name, entry.pw_dir, os.path.join(entry.pw_dir, ".config", "systemd", "user")


def engine_of_unit(path: str) -> str:
    """The engine binary a unit of ours runs (its ExecStart's first word), "" if none."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("ExecStart="):
                words = line[len("ExecStart="):].split()
                return words[0].lstrip("-+@!:") if words else ""
    return ""


def runs_as_user(path: str) -> bool:
    """A system unit of ours that runs as a user (``User=``): a rootless mode's, e.g. its
    socket-activated proxy (socket_state.py), not a rootful mode's."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        return any(line.startswith("User=") for line in handle)


def roots_of(base_dir: str, directories: Sequence[str]) -> List[str]:
    """The trees to translate: the base directory, and any directory outside it."""
    inside = base_dir.rstrip("/") + "/"
    return [base_dir] + [d for d in directories if not (d + "/").startswith(inside)]
