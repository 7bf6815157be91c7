# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refuse a new image that cannot run on the data the running one leaves behind.

Only when a component's image changes (the image ID its unit was written for differs from
the new one) and before anything on the host changes, a probe runs once in the NEW image: a
throw-away container with the component's own user, networks, host entries and mounts (all
read-only), without its name, ports, fixed address or health check, removed when it ends.
A run that keeps the image costs nothing: the unit on disk already says which image it runs.

Kinds of check:

``synapse_schema``
    Synapse refuses to start on a database whose ``schema_compat_version`` is greater than
    its own ``SCHEMA_VERSION`` (synapse/storage/prepare_database.py: "Cannot use this
    database as it is too new for the server to understand"). The probe reads the image's
    ``SCHEMA_VERSION`` and Synapse release, connects to the database named in the
    component's ``homeserver.yaml`` (read-only session) and reads ``schema_version`` and
    ``schema_compat_version``. An older Synapse that still understands the schema (the same
    rule) is let through: Synapse itself accepts it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from ansible_collections.hearth.matrix.plugins.module_utils.container import (
    ContainerSpec,
    SpecError,
    check_choice,
    create_argv,
    refuse_unknown_keys,
)

if TYPE_CHECKING:  # host_state imports component, which imports this module
    from ansible_collections.hearth.matrix.plugins.module_utils.host_state import Host

KINDS = ("synapse_schema",)
# The unit's fingerprint line names the image ID it was written for (service_state.unit_text).
_UNIT_IMAGE_RE = re.compile(r"^# fingerprint: image=(\S+)", re.MULTILINE)
_VARIABLE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class ImageCheck:
    kind: str
    # The variable that chose the image: a refusal names it.
    variable: str
    # Inside the container: the config file the probe reads and the Python that runs it.
    config: str
    python: str = "python"


def image_check_from_dict(raw: Any) -> Optional[ImageCheck]:
    """The component's ``image_check`` (kind, variable, config, python); raises SpecError."""
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("image_check", "must be a mapping, got %r" % (raw,))
    refuse_unknown_keys(raw, "image_check", {"kind", "variable", "config", "python"})
    kind = raw.get("kind")
    check_choice(kind, "image_check.kind", KINDS)
    variable = raw.get("variable")
    if not isinstance(variable, str) or not _VARIABLE_RE.match(variable):
        raise SpecError("image_check.variable", "must be a variable name, got %r" % (variable,))
    config = raw.get("config")
    if not isinstance(config, str) or not config.startswith("/"):
        raise SpecError("image_check.config", "must be an absolute path inside the container, got %r" % (config,))
    python = raw.get("python", "python")
    if not isinstance(python, str) or not python:
        raise SpecError("image_check.python", "must be a command, got %r" % (python,))
    return ImageCheck(kind=kind, variable=variable, config=config, python=python)


def unit_image_id(unit: Optional[str]) -> Optional[str]:
    """The (shortened) image ID a unit was written for; None without a unit or the line."""
    match = _UNIT_IMAGE_RE.search(unit or "")
    return match.group(1) if match else None


def image_changes(unit: Optional[str], image_id: str) -> bool:
    """True when a deployed unit runs another image than ``image_id`` (a fresh install,
    with no unit yet, has no data to protect: False)."""
    current = unit_image_id(unit)
    return current is not None and not image_id.startswith(current)


# Runs with the image's own Python; prints one JSON line. Never writes: the session is
# read-only, and the container's mounts are too.
SYNAPSE_PROBE = r"""
import importlib.metadata, json, sys
import yaml
from synapse.storage.schema import SCHEMA_VERSION
found = {"version": importlib.metadata.version("matrix-synapse"), "schema_version": SCHEMA_VERSION,
         "db_version": None, "db_compat_version": None}
with open(sys.argv[1], encoding="utf-8") as handle:
    database = (yaml.safe_load(handle) or {}).get("database") or {}
args = {k: v for k, v in (database.get("args") or {}).items() if not k.startswith("cp_")}
if database.get("name", "sqlite3") == "psycopg2":
    import psycopg2
    connection = psycopg2.connect(**args)
    connection.set_session(readonly=True)
    exists = "SELECT to_regclass(%s) IS NOT NULL"
else:
    import sqlite3
    connection = sqlite3.connect("file:%s?mode=ro" % args["database"], uri=True)
    exists = "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?"
cursor = connection.cursor()
for table, column, key in (("schema_version", "version", "db_version"),
                           ("schema_compat_version", "compat_version", "db_compat_version")):
    cursor.execute(exists, (table,))
    if cursor.fetchone()[0]:
        cursor.execute("SELECT %s FROM %s" % (column, table))
        row = cursor.fetchone()
        found[key] = int(row[0]) if row and row[0] is not None else None
connection.close()
print(json.dumps(found))
"""


@dataclasses.dataclass(frozen=True)
class SynapseSchema:
    """What the probe found: the image's Synapse and the database's schema (None: empty)."""

    version: str
    schema_version: int
    db_version: Optional[int]
    db_compat_version: Optional[int]


def parse_synapse_probe(out: str) -> SynapseSchema:
    """The probe's JSON line (the last line of its output); ValueError when there is none."""
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no answer from the probe: %r" % out.strip()[-200:])
    data: Dict[str, Any] = json.loads(lines[-1])

    def optional_int(key: str) -> Optional[int]:
        value = data.get(key)
        return None if value is None else int(value)

    return SynapseSchema(version=str(data["version"]), schema_version=int(data["schema_version"]),
                         db_version=optional_int("db_version"), db_compat_version=optional_int("db_compat_version"))


def synapse_refusal(found: SynapseSchema, image: str, variable: str, running: str = "") -> Optional[str]:
    """One line when Synapse in ``image`` would refuse the database, else None.

    The rule is Synapse's own: it starts when the database is empty, or when its
    SCHEMA_VERSION is at least the database's compat version (older releases included).
    """
    if found.db_compat_version is None or found.db_compat_version <= found.schema_version:
        return None
    return ("%s: %s has Synapse %s (database schema %d at most), but this database (schema %s%s) needs a Synapse "
            "with schema %d or newer, so it would refuse to start; nothing was changed: set %s back to an image "
            "of a Synapse at least as new as the one that upgraded the database"
            % (variable, image, found.version, found.schema_version,
               found.db_version if found.db_version is not None else "unknown",
               ", running Synapse %s" % running if running else "", found.db_compat_version, variable))


def probe_argv(spec: ContainerSpec, engine: str, engine_path: str, check: ImageCheck, image: str) -> List[str]:
    """``<engine> run --rm`` of the probe in ``image``, as the component's container minus
    what would clash with the running one or change anything (all mounts read-only)."""
    probe_spec = dataclasses.replace(
        spec,
        name="%s-image-check-%s" % (spec.name, uuid.uuid4().hex[:8]),
        image=image,
        mounts=tuple(dataclasses.replace(mount, read_only=True) for mount in spec.mounts),
        ports=(),
        address=None,
        healthcheck=None,
        labels=(),
        entrypoint=check.python,
        command=("-c", SYNAPSE_PROBE, check.config),
    )
    argv = create_argv(probe_spec, engine, engine_path)
    return [argv[0], "run", "--rm"] + argv[2:]


def _running_version(host: "Host", engine_path: str, spec: ContainerSpec, check: ImageCheck) -> str:
    """The Synapse release of the running container, for the message ("" if unknown)."""
    rc, out, _err = host.run_command([engine_path, "exec", spec.name, check.python, "-c",
                                      "import importlib.metadata as m; print(m.version('matrix-synapse'))"])
    return out.strip().splitlines()[-1] if rc == 0 and out.strip() else ""


def run_image_check(host: "Host", engine: str, engine_path: str, spec: ContainerSpec, check: ImageCheck,
                    image_id: str) -> Optional[str]:
    """Probe the new image (by ID: exactly what the unit will run). The refusal, one line
    starting with the variable's name, or None when the image can run on the data."""
    rc, out, err = host.run_command(probe_argv(spec, engine, engine_path, check, image_id))
    if rc != 0:
        detail = [line.strip() for line in (err or out).strip().splitlines() if line.strip()]
        return ("%s: %s: could not read the database schema with the new image (%s); nothing was changed"
                % (check.variable, spec.image, detail[-1] if detail else "exit %d" % rc))
    try:
        found = parse_synapse_probe(out)
    except (ValueError, KeyError, TypeError) as error:
        return "%s: %s: unexpected answer from the schema probe (%s); nothing was changed" % (
            check.variable, spec.image, error)
    if synapse_refusal(found, spec.image, check.variable) is None:
        return None
    return synapse_refusal(found, spec.image, check.variable, _running_version(host, engine_path, spec, check))
