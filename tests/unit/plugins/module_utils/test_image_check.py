# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_check: when a new image is probed, Synapse's schema rule, the probe's container."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import component_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.container import ContainerSpec, SpecError, container_spec_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.image_check import (
    SYNAPSE_PROBE,
    ImageCheck,
    SynapseSchema,
    image_changes,
    image_check_from_dict,
    parse_synapse_probe,
    probe_argv,
    run_image_check,
    synapse_refusal,
    unit_image_id,
)
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import ScriptedHost

PODMAN = "/usr/bin/podman"
CHECK = ImageCheck(kind="synapse_schema", variable="synapse_image", config="/config/homeserver.yaml")
OLD_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
NEW_ID = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
UNIT = "[Unit]\nDescription=Synapse\n# fingerprint: image=%s state=0011223344556677\n" % OLD_ID[:19]


def spec() -> ContainerSpec:
    return container_spec_from_dict("hearth-synapse", {
        "image": "localhost/synapse:new", "user": "991:991", "networks": ["hearth"], "address": "10.89.91.130",
        "hosts": {"hearth-postgres": "10.89.91.131"},
        "ports": [{"host_address": "127.0.0.1", "host_port": 8008, "container_port": 8008}],
        "mounts": [{"source": "/opt/s/config", "target": "/config", "read_only": True},
                   {"source": "/opt/s/data", "target": "/data", "read_only": False}],
        "healthcheck": {"command": ["python", "-c", "pass"]}, "labels": {"a": "b"},
        "command": ["-m", "synapse.app.homeserver"], "entrypoint": "python", "memory": "1g",
    })


def probe_out(**fields: Any) -> str:
    data: Dict[str, Any] = {"version": "1.162.0", "schema_version": 94, "db_version": 94, "db_compat_version": 84}
    data.update(fields)
    return "some warning\n" + json.dumps(data) + "\n"


# --- the component field --------------------------------------------------------------------------

def test_image_check_parsed_and_defaults() -> None:
    assert image_check_from_dict(None) is None and image_check_from_dict({}) is None
    parsed = image_check_from_dict({"kind": "synapse_schema", "variable": "synapse_image", "config": "/c/h.yaml"})
    assert parsed == ImageCheck("synapse_schema", "synapse_image", "/c/h.yaml", "python")
    raw = {"name": "hearth-synapse", "container": {"image": "i", "user": "991:991"},
           "image_check": {"kind": "synapse_schema", "variable": "v", "config": "/c"}}
    component = component_from_dict(raw)
    assert component.image_check == ImageCheck("synapse_schema", "v", "/c")


@pytest.mark.parametrize("raw, field", [
    ("yes", "image_check"),
    ({"kind": "synapse_schema", "variable": "v", "config": "/c", "extra": 1}, "image_check"),
    ({"kind": "postgres", "variable": "v", "config": "/c"}, "image_check.kind"),
    ({"kind": "synapse_schema", "variable": "Not A Name", "config": "/c"}, "image_check.variable"),
    ({"kind": "synapse_schema", "variable": "v", "config": "relative"}, "image_check.config"),
    ({"kind": "synapse_schema", "variable": "v", "config": "/c", "python": ""}, "image_check.python"),
])
def test_image_check_errors_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(SpecError) as error:
        image_check_from_dict(raw)
    assert error.value.field == field


# --- when to probe: only a deployed unit with another image -----------------------------------------

def test_image_changes_only_for_a_deployed_unit_with_another_image() -> None:
    assert unit_image_id(UNIT) == OLD_ID[:19]
    assert unit_image_id(None) is None and unit_image_id("[Unit]\n") is None
    assert not image_changes(None, NEW_ID)            # fresh install: no data to protect
    assert not image_changes(UNIT, OLD_ID)            # same image: a no-change run probes nothing
    assert image_changes(UNIT, NEW_ID)
    docker_unit = UNIT.replace(OLD_ID[:19], ("sha256:" + OLD_ID)[:19])
    assert not image_changes(docker_unit, "sha256:" + OLD_ID) and image_changes(docker_unit, "sha256:" + NEW_ID)


# --- Synapse's rule: refused only when the database's compat version is above the image's schema ----

@pytest.mark.parametrize("db_version, compat, refused", [
    (None, None, False),   # empty database: Synapse creates the schema
    (94, None, False),     # an old database without a compat row
    (94, 84, False),       # older Synapse (1.162 on 1.163's database): Synapse itself accepts it
    (94, 94, False),
    (95, 95, True),        # written by a Synapse whose compat version is above 94
])
def test_synapse_rule(db_version: Optional[int], compat: Optional[int], refused: bool) -> None:
    found = SynapseSchema(version="1.162.0", schema_version=94, db_version=db_version, db_compat_version=compat)
    message = synapse_refusal(found, "localhost/synapse:old", "synapse_image", running="1.170.0")
    assert (message is not None) == refused
    if message is not None:
        assert message.startswith("synapse_image: localhost/synapse:old has Synapse 1.162.0 (database schema 94 at most)")
        assert "schema 95, running Synapse 1.170.0" in message and "schema 95 or newer" in message
        assert "\n" not in message


def test_parse_probe() -> None:
    assert parse_synapse_probe(probe_out(db_version=None, db_compat_version=None)) == SynapseSchema("1.162.0", 94, None, None)
    with pytest.raises(ValueError):
        parse_synapse_probe("Traceback ...\n")


# --- the probe's container --------------------------------------------------------------------------

def test_probe_argv_runs_the_new_image_read_only_without_clashes() -> None:
    argv = probe_argv(spec(), "podman", PODMAN, CHECK, NEW_ID)
    assert argv[:3] == [PODMAN, "run", "--rm"] and "create" not in argv
    name = next(arg for arg in argv if arg.startswith("--name="))
    assert name.startswith("--name=hearth-synapse-image-check-")
    assert "--network=hearth" in argv and "--add-host=hearth-postgres:10.89.91.131" in argv
    assert "--user=991:991" in argv and "--cap-drop=ALL" in argv and "--read-only" in argv
    assert not [arg for arg in argv if arg.startswith(("--ip=", "--mac-address=", "--publish=", "--health-", "--label="))]
    assert "--mount=type=bind,src=/opt/s/data,dst=/data,readonly" in argv
    assert argv[-5:] == ["--entrypoint=python", NEW_ID, "-c", SYNAPSE_PROBE, "/config/homeserver.yaml"]
    assert probe_argv(spec(), "podman", PODMAN, CHECK, NEW_ID) != argv   # a unique name each time


def test_run_image_check_accepts_refuses_and_reports_probe_errors() -> None:
    host = ScriptedHost(rules=[([PODMAN, "run"], (0, probe_out(), ""))])
    assert run_image_check(host, "podman", PODMAN, spec(), CHECK, NEW_ID) is None
    assert len(host.calls) == 1

    host = ScriptedHost(rules=[([PODMAN, "run"], (0, probe_out(db_version=95, db_compat_version=95), "")),
                               ([PODMAN, "exec", "hearth-synapse"], (0, "1.170.0\n", ""))])
    message = run_image_check(host, "podman", PODMAN, spec(), CHECK, NEW_ID)
    assert message is not None and message.startswith("synapse_image: localhost/synapse:new has Synapse 1.162.0")
    assert "running Synapse 1.170.0" in message

    host = ScriptedHost(rules=[([PODMAN, "run"], (1, "", "Traceback\npsycopg2.OperationalError: could not connect\n"))])
    message = run_image_check(host, "podman", PODMAN, spec(), CHECK, NEW_ID)
    assert message == ("synapse_image: localhost/synapse:new: could not read the database schema with the new image "
                       "(psycopg2.OperationalError: could not connect); nothing was changed")

    host = ScriptedHost(rules=[([PODMAN, "run"], (0, "nothing useful\n", ""))])
    message = run_image_check(host, "podman", PODMAN, spec(), CHECK, NEW_ID)
    assert message is not None and "unexpected answer from the schema probe" in message


def _fake_synapse(root: Path, schema_version: int) -> None:
    """Just enough of a Synapse package for the probe: its version and SCHEMA_VERSION."""
    package = root / "synapse" / "storage" / "schema"
    package.mkdir(parents=True)
    for path in (root / "synapse", root / "synapse" / "storage"):
        (path / "__init__.py").write_text("")
    (package / "__init__.py").write_text("SCHEMA_VERSION = %d\n" % schema_version)
    info = root / "matrix_synapse-1.162.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: matrix-synapse\nVersion: 1.162.0\n")


@pytest.mark.parametrize("tables", [False, True])
def test_probe_script_reads_a_sqlite_database(tmp_path: Path, tables: bool) -> None:
    """The probe itself, run by this Python against a SQLite database (the PostgreSQL path
    runs on the bed: tests/integration/test_synapse_upgrade.py)."""
    pytest.importorskip("yaml")
    _fake_synapse(tmp_path / "site", 94)
    database = tmp_path / "homeserver.db"
    with sqlite3.connect(str(database)) as connection:
        if tables:
            connection.execute("CREATE TABLE schema_version (version INTEGER, upgraded BOOL)")
            connection.execute("INSERT INTO schema_version VALUES (94, 1)")
            connection.execute("CREATE TABLE schema_compat_version (compat_version INTEGER)")
            connection.execute("INSERT INTO schema_compat_version VALUES (95)")
    config = tmp_path / "homeserver.yaml"
    config.write_text("database:\n  name: sqlite3\n  args:\n    database: %s\n    cp_min: 1\n" % database)
    done = subprocess.run([sys.executable, "-c", SYNAPSE_PROBE, str(config)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path / "site") + ":" + ":".join(sys.path)}, check=False)
    assert done.returncode == 0, done.stderr
    found = parse_synapse_probe(done.stdout)
    assert found == SynapseSchema("1.162.0", 94, 94 if tables else None, 95 if tables else None)
    assert (synapse_refusal(found, "i", "synapse_image") is not None) == tables
