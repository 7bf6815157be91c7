# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup and restore modules: the engine commands mocked, files real (in tmp_path)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple, Union
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.module_utils import backup as bk
from ansible_collections.hearth.matrix.plugins.modules import backup as backup_module
from ansible_collections.hearth.matrix.plugins.modules import restore as restore_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

KEY = "ed25519 a_WxYz c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ\n"


class FakeEngine:
    """run_command of a host with a stack: pg_dump writes a dump, pg_restore reads it."""

    def __init__(self, dump_rc: int = 0) -> None:
        self.calls: List[Union[str, List[str]]] = []
        self.dump_rc = dump_rc

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        self.calls.append(args)
        if isinstance(args, str) and "pg_dump" in args:
            if self.dump_rc:
                return self.dump_rc, "", "pg_dump: error: connection failed"
            target = re.search(r"> (\S+)$", args).group(1)
            Path(target).write_bytes(b"PGDMP fake")
            return 0, "", ""
        if isinstance(args, str) and "pg_restore" in args:
            return 0, "", ""
        if "synapse.__version__" in " ".join(args):
            return 0, "1.163.2\n", ""
        if "SHOW server_version" in args:
            return 0, "15.14\n", ""
        return 1, "", "unexpected"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    base = tmp_path / "opt"
    for rel, content in {"synapse/keys/signing.key": KEY, "secrets/postgres_synapse_password": "pw",
                         "synapse/data/media_store/local_content/aa/bb/cc": "MEDIA",
                         "synapse/config/homeserver.yaml": "server_name: hearth.test\n"}.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(content)
    return base


def _run(main: Any, args: dict, engine: FakeEngine, **kwargs: Any) -> dict:
    def run_command(self: basic.AnsibleModule, command: Any, **kw: Any) -> Tuple[int, str, str]:
        return engine.run_command(self, command, **kw)

    with mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name):
        return run_module(main, args, **kwargs)


def _backup(host: Path, tmp_path: Path, **extra: Any) -> Tuple[dict, FakeEngine]:
    engine = FakeEngine()
    args = {"base_dir": str(host), "root": str(tmp_path / "backups"), "engine": "podman"}
    args.update(extra)
    return _run(backup_module.main, args, engine), engine


def test_backup_writes_manifest_dump_and_files(host: Path, tmp_path: Path) -> None:
    result, engine = _backup(host, tmp_path, name="20261130T091500Z")
    assert not result["failed"], result
    dest = Path(result["path"])
    assert result["signing_key_id"] == "ed25519:a_WxYz" and result["server_name"] == "hearth.test"
    assert result["versions"] == {"synapse": "1.163.2", "postgresql": "15.14"}
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["database"]["sha256"] == bk.sha256_file(str(dest / "database.dump"))
    assert "files/synapse/keys/signing.key" in result["files"] and result["files"][:2] == ["manifest.json", "database.dump"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dest / "database.dump").st_mode) == 0o600
    dump_cmd = [c for c in engine.calls if isinstance(c, str) and "pg_dump" in c][0]
    assert "/usr/bin/podman exec hearth-postgres pg_dump --format=custom" in dump_cmd
    # No secret value in what the module returns.
    assert "pw" not in json.dumps(result).replace("password", "") and KEY.split()[2] not in json.dumps(result)
    assert bk.verify(str(dest))["server_name"] == "hearth.test"


def test_backup_retention_keeps_newest(host: Path, tmp_path: Path) -> None:
    for name in ("20261101T000000Z", "20261102T000000Z", "20261103T000000Z"):
        result, _engine = _backup(host, tmp_path, name=name, keep=0)
        assert not result["failed"]
    result, _engine = _backup(host, tmp_path, name="20261104T000000Z", keep=2)
    assert result["removed"] == ["20261101T000000Z", "20261102T000000Z"]
    assert sorted(os.listdir(tmp_path / "backups")) == ["20261103T000000Z", "20261104T000000Z"]


def test_backup_check_mode_and_diff_change_nothing(host: Path, tmp_path: Path) -> None:
    engine = FakeEngine()
    result = _run(backup_module.main, {"base_dir": str(host), "root": str(tmp_path / "backups"), "name": "20261130T091500Z"},
                  engine, check_mode=True, diff=True)
    assert result["changed"] and not result["failed"]
    assert "20261130T091500Z" in result["diff"]["after"] and result["diff"]["before"] == "\n"
    assert engine.calls == [] and not (tmp_path / "backups").exists()


def test_backup_errors_are_one_line_and_leave_nothing(host: Path, tmp_path: Path) -> None:
    engine = FakeEngine(dump_rc=1)
    result = _run(backup_module.main, {"base_dir": str(host), "root": str(tmp_path / "backups"), "name": "x"}, engine)
    assert result["failed"] and "pg_dump in hearth-postgres failed" in result["msg"] and "\n" not in result["msg"]
    assert os.listdir(tmp_path / "backups") == []
    result = _run(backup_module.main, {"base_dir": str(tmp_path / "none"), "root": str(tmp_path / "backups")}, FakeEngine())
    assert result["failed"] and "hearth_base_dir" in result["msg"]
    result = _run(backup_module.main, {"base_dir": str(host), "root": str(tmp_path / "backups"), "keep": -1}, FakeEngine())
    assert result["failed"] and "hearth_backup_keep" in result["msg"]


def test_restore_steps_onto_a_fresh_host(host: Path, tmp_path: Path) -> None:
    made, _engine = _backup(host, tmp_path, name="20261130T091500Z")
    engine = FakeEngine()
    verified = _run(restore_module.main, {"step": "verify", "backup_dir": made["path"]}, engine)
    assert not verified["failed"] and verified["manifest"]["server_name"] == "hearth.test"
    fresh = tmp_path / "fresh"
    checked = _run(restore_module.main, {"step": "check", "manifest": verified["manifest"], "base_dir": str(fresh),
                                         "server_name": "hearth.test"}, engine)
    assert checked["host_state"] == "fresh" and not checked["changed"]
    dry = _run(restore_module.main, {"step": "files", "backup_dir": made["path"], "base_dir": str(fresh)}, engine,
               check_mode=True, diff=True)
    assert dry["changed"] and not fresh.exists()
    assert str(fresh / "synapse/keys/signing.key") + " (content)" in dry["diff"]["after"] and KEY not in dry["diff"]["after"]
    placed = _run(restore_module.main, {"step": "files", "backup_dir": made["path"], "base_dir": str(fresh)}, engine)
    assert placed["changed"] and (fresh / "synapse/keys/signing.key").read_text() == KEY
    again = _run(restore_module.main, {"step": "files", "backup_dir": made["path"], "base_dir": str(fresh)}, engine)
    assert not again["changed"]
    restored = _run(restore_module.main, {"step": "database", "backup_dir": made["path"], "engine": "docker"}, engine)
    assert restored["changed"] and not restored["failed"]
    command = [c for c in engine.calls if isinstance(c, str) and "pg_restore" in c][0]
    assert command.startswith("/usr/bin/docker exec -i hearth-postgres pg_restore --clean --if-exists --create")
    assert command.endswith("< %s/database.dump" % made["path"])


def test_restore_refuses_another_servers_host(host: Path, tmp_path: Path) -> None:
    made, _engine = _backup(host, tmp_path, name="20261130T091500Z")
    summary = _run(restore_module.main, {"step": "verify", "backup_dir": made["path"]}, FakeEngine())["manifest"]
    (host / "synapse/keys/signing.key").write_text("ed25519 a_Othr b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Ro\n")
    result = _run(restore_module.main, {"step": "check", "manifest": summary, "base_dir": str(host)}, FakeEngine())
    assert result["failed"] and "hearth_restore_force: true" in result["msg"]
    forced = _run(restore_module.main, {"step": "check", "manifest": summary, "base_dir": str(host), "force": True}, FakeEngine())
    assert forced["host_state"] == "forced"


def test_restore_database_check_mode_and_damage(host: Path, tmp_path: Path) -> None:
    made, _engine = _backup(host, tmp_path, name="20261130T091500Z")
    engine = FakeEngine()
    dry = _run(restore_module.main, {"step": "database", "backup_dir": made["path"]}, engine, check_mode=True, diff=True)
    assert dry["changed"] and engine.calls == [] and "restored from" in dry["diff"]["after"]
    Path(made["path"], "database.dump").write_bytes(b"PGDMP other")
    damaged = _run(restore_module.main, {"step": "database", "backup_dir": made["path"]}, engine)
    assert damaged["failed"] and "database.dump" in damaged["msg"]
    missing = _run(restore_module.main, {"step": "check", "manifest": {}}, engine)
    assert missing["failed"] and "needs manifest" in missing["msg"]


def test_the_timer_script_takes_the_same_backup(host: Path, tmp_path: Path) -> None:
    """playbooks/files/hearth-matrix-backup with a copy of module_utils/backup.py next to it, as
    the timer runs it; the engine is a fake on PATH."""
    repo = Path(bk.__file__).resolve().parents[2]
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(str(repo / "plugins/module_utils/backup.py"), str(lib / "hearth_backup.py"))
    shutil.copy(str(repo / "playbooks/files/hearth-matrix-backup"), str(lib / "hearth-matrix-backup"))
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "podman").write_text("#!/bin/sh\ncase \"$*\" in\n  *pg_dump*) printf 'PGDMP fake' ;;\n"
                                     "  *synapse.__version__*) echo 1.163.2 ;;\n  *server_version*) echo 15.14 ;;\n"
                                     "  *) exit 1 ;;\nesac\n")
    os.chmod(fake_bin / "podman", 0o755)
    config = tmp_path / "backup.json"
    config.write_text(json.dumps({"base_dir": str(host), "engine": "podman", "root": str(tmp_path / "backups"), "keep": "1",
                                  "database": "True", "postgres_service": "hearth-postgres", "database_name": "synapse",
                                  "database_user": "synapse", "synapse_service": "hearth-synapse", "server_name": "hearth.test"}))
    env = dict(os.environ, PATH="%s:%s" % (fake_bin, os.environ["PATH"]), HEARTH_BACKUP_CONFIG=str(config))
    done = subprocess.run([sys.executable, str(lib / "hearth-matrix-backup")], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stdout
    assert "hearth.test ed25519:a_WxYz" in done.stdout
    [name] = os.listdir(tmp_path / "backups")
    manifest = bk.verify(str(tmp_path / "backups" / name))
    assert manifest["versions"] == {"synapse": "1.163.2", "postgresql": "15.14"}
    assert (tmp_path / "backups" / name / "database.dump").read_bytes() == b"PGDMP fake"
