# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/backup: what is kept, manifest, verification, retention, restore checks."""

from __future__ import annotations

import datetime
import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils import backup as bk

KEY = "ed25519 a_AbCd c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ\n"
UID, GID = os.getuid(), os.getgid()


def _write(path: Path, content: str, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.chmod(path, mode)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "opt"
    _write(root / "synapse/keys/signing.key", KEY, 0o600)
    _write(root / "synapse/config/homeserver.yaml", "server_name: \"example.org\"\npublic_baseurl: https://x/\n")
    _write(root / "secrets/registration_shared_secret", "s1", 0o600)
    _write(root / "postgres/secrets/password", "pw", 0o600)
    _write(root / "synapse/secrets/macaroon_secret_key", "m", 0o600)
    _write(root / "synapse/data/media_store/local_content/ab/cd/efgh", "MEDIA", 0o644)
    _write(root / "nginx-proxy/ca/ca.key", "CAKEY", 0o600)
    _write(root / "nginx-proxy/tls/server.crt", "CRT", 0o644)
    _write(root / "nginx-proxy/config/nginx.conf", "not kept")
    os.symlink("/etc/passwd", str(root / "secrets/link"))
    return root


def _backup(base: Path, dest: Path) -> dict:
    dest.mkdir(mode=0o700)
    entries = bk.copy_into_backup(str(base), str(dest), bk.collect(str(base)))
    manifest = bk.build_manifest(server_name="example.org", key_id=bk.signing_key_id(KEY), created="20261130T091500Z",
                                 versions={"synapse": "1.2.3"}, entries=entries, database=None)
    bk.write_private_json(str(dest / bk.MANIFEST), manifest)
    return manifest


def test_collect_keeps_state_and_parents_only(base: Path) -> None:
    paths = {e.path: e for e in bk.collect(str(base))}
    assert "synapse/keys/signing.key" in paths
    assert "secrets/registration_shared_secret" in paths
    assert "postgres/secrets/password" in paths and "synapse/secrets/macaroon_secret_key" in paths
    assert "synapse/data/media_store/local_content/ab/cd/efgh" in paths
    assert "nginx-proxy/ca/ca.key" in paths and "nginx-proxy/tls/server.crt" in paths
    assert "nginx-proxy/config/nginx.conf" not in paths
    assert "synapse/config/homeserver.yaml" not in paths
    assert "secrets/link" not in paths
    assert paths["."].kind == "dir" and paths["synapse"].kind == "dir" and paths["synapse/data"].kind == "dir"
    order = [e.path for e in bk.collect(str(base))]
    assert order[0] == "."
    assert order.index("synapse") < order.index("synapse/keys") < order.index("synapse/keys/signing.key")
    assert paths["synapse/keys/signing.key"].mode == 0o600


def test_collect_missing_base_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(bk.BackupError, match="hearth_base_dir"):
        bk.collect(str(tmp_path / "nope"))


def test_backup_is_root_only_and_verifies(base: Path, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    manifest = _backup(base, dest)
    for root, dirs, files in os.walk(dest):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600
    assert bk.verify(str(dest))["signing_key_id"] == "ed25519:a_AbCd"
    summary = bk.summary(manifest)
    assert summary["signing_key_sha256"] == bk.sha256_file(str(base / bk.SIGNING_KEY))
    assert summary["file_count"] == 7 and summary["database"] is False
    # The manifest records the original mode, not the backup's 0600.
    media = [f for f in manifest["files"] if f["path"].endswith("efgh")][0]
    assert media["mode"] == "0644" and media["size"] == 5


def test_verify_detects_damage_and_missing(base: Path, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    _backup(base, dest)
    target = dest / "files/secrets/registration_shared_secret"
    target.write_text("s2")
    with pytest.raises(bk.BackupError, match="sha256 of files/secrets/registration_shared_secret"):
        bk.verify(str(dest))
    target.write_text("longer")
    with pytest.raises(bk.BackupError, match="has 6 bytes"):
        bk.verify(str(dest))
    target.unlink()
    with pytest.raises(bk.BackupError, match="missing"):
        bk.verify(str(dest))


def test_verify_rejects_foreign_and_malformed_manifests(tmp_path: Path) -> None:
    with pytest.raises(bk.BackupError, match="no backup at"):
        bk.verify(str(tmp_path))
    (tmp_path / bk.MANIFEST).write_text("{")
    with pytest.raises(bk.BackupError, match="not valid JSON"):
        bk.verify(str(tmp_path))
    (tmp_path / bk.MANIFEST).write_text(json.dumps({"format": "other"}))
    with pytest.raises(bk.BackupError, match="not a hearth.matrix backup"):
        bk.verify(str(tmp_path))
    bad = {"format": bk.FORMAT, "format_version": 1, "server_name": "x", "signing_key_id": "k",
           "files": [{"path": "../etc/passwd", "type": "file", "mode": "0600", "uid": 0, "gid": 0, "size": 1, "sha256": "0" * 64}]}
    (tmp_path / bk.MANIFEST).write_text(json.dumps(bad))
    with pytest.raises(bk.BackupError, match="not a plain relative path"):
        bk.verify(str(tmp_path))


def test_signing_key_id_and_server_name() -> None:
    assert bk.signing_key_id(KEY) == "ed25519:a_AbCd"
    with pytest.raises(bk.BackupError):
        bk.signing_key_id("garbage")
    assert bk.server_name_from_config("a: 1\nserver_name: 'hearth.test'\n") == "hearth.test"
    assert bk.server_name_from_config("a: 1\n") == ""


def test_timestamp_and_retention() -> None:
    moment = datetime.datetime(2026, 11, 30, 9, 15, 0, tzinfo=datetime.timezone.utc)
    assert bk.timestamp(moment) == "20261130T091500Z"
    names = ["20261101T000000Z", "20261103T000000Z", "20261102T000000Z", "restore-x", "notes"]
    assert bk.expired(names, 2) == ["20261101T000000Z"]
    assert bk.expired(names, 0) == []
    assert bk.expired(names, 5) == []


def test_check_restore_refuses_another_server(base: Path, tmp_path: Path) -> None:
    summary = bk.summary(_backup(base, tmp_path / "b"))
    fresh = bk.host_identity(str(tmp_path / "empty"))
    assert fresh.empty and bk.check_restore(summary, fresh, "example.org", False) == "fresh"
    assert bk.check_restore(summary, bk.host_identity(str(base)), "example.org", False) == "same"
    other = bk.HostIdentity(server_name="other.org", signing_key_sha256="f" * 64, has_database=True)
    with pytest.raises(bk.BackupError, match="hearth_restore_force: true") as err:
        bk.check_restore(summary, other, "example.org", False)
    assert "\n" not in str(err.value) and "other.org" in str(err.value)
    assert bk.check_restore(summary, other, "example.org", True) == "forced"
    with pytest.raises(bk.BackupError, match="set hearth_server_name: example.org"):
        bk.check_restore(summary, fresh, "wrong.org", False)


def test_restore_puts_files_back_with_owner_and_mode(base: Path, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    manifest = _backup(base, dest)
    target = tmp_path / "new"
    entries = bk.manifest_entries(manifest)
    plan = bk.plan_restore(str(dest), str(target), entries)
    assert all(p.changed for p in plan)
    for placement in plan:
        bk.apply_placement(str(dest), str(target), placement)
    assert (target / bk.SIGNING_KEY).read_text() == KEY
    assert stat.S_IMODE(os.stat(target / bk.SIGNING_KEY).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(target / "synapse/data/media_store/local_content/ab/cd/efgh").st_mode) == 0o644
    assert bk.host_identity(str(target)).signing_key_sha256 == bk.summary(manifest)["signing_key_sha256"]
    # A second pass changes nothing; a changed mode is corrected without rewriting content.
    assert not [p for p in bk.plan_restore(str(dest), str(target), entries) if p.changed]
    os.chmod(target / "secrets/registration_shared_secret", 0o644)
    changed = [p for p in bk.plan_restore(str(dest), str(target), entries) if p.changed]
    assert [(p.entry.path, p.content, p.attributes) for p in changed] == [("secrets/registration_shared_secret", False, True)]
    bk.apply_placement(str(dest), str(target), changed[0])
    assert stat.S_IMODE(os.stat(target / "secrets/registration_shared_secret").st_mode) == 0o600


def test_restore_refuses_directory_where_a_file_belongs(base: Path, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    manifest = _backup(base, dest)
    target = tmp_path / "new"
    (target / bk.SIGNING_KEY).mkdir(parents=True)
    with pytest.raises(bk.BackupError, match="is a directory"):
        for placement in bk.plan_restore(str(dest), str(target), bk.manifest_entries(manifest)):
            bk.apply_placement(str(dest), str(target), placement)


def _acme_tree(base: Path) -> None:
    """certbot's layout: account key, archive/ with numbered files, live/ links into archive/."""
    _write(base / "acme/accounts/acme.test/directory/abc/private_key.json", "{\"k\": 1}", 0o600)
    _write(base / "acme/archive/matrix.example.org/cert1.pem", "CERT1", 0o644)
    _write(base / "acme/archive/matrix.example.org/privkey1.pem", "KEY1", 0o600)
    _write(base / "acme/renewal/matrix.example.org.conf", "renew", 0o644)
    (base / "acme/live/matrix.example.org").mkdir(parents=True)
    for name in ("cert", "privkey"):
        os.symlink("../../archive/matrix.example.org/%s1.pem" % name, str(base / ("acme/live/matrix.example.org/%s.pem" % name)))
    # Links the backup must not keep: absolute, and relative but out of the acme tree.
    os.symlink("/etc/passwd", str(base / "acme/live/absolute.pem"))
    os.symlink("../../synapse/keys/signing.key", str(base / "acme/live/outside.pem"))


def test_acme_links_kept_as_links_and_restored(base: Path, tmp_path: Path) -> None:
    _acme_tree(base)
    dest = tmp_path / "b"
    manifest = _backup(base, dest)
    kept = {item["path"]: item for item in manifest["files"]}
    assert kept["acme/accounts/acme.test/directory/abc/private_key.json"]["type"] == "file"
    assert kept["acme/live/matrix.example.org/cert.pem"] == {
        "path": "acme/live/matrix.example.org/cert.pem", "type": "link", "target": "../../archive/matrix.example.org/cert1.pem",
        "mode": "0777", "uid": UID, "gid": GID}
    assert "acme/live/absolute.pem" not in kept and "acme/live/outside.pem" not in kept
    # Nothing was followed: the backup holds no copy behind a link.
    assert not (dest / "files/acme/live/matrix.example.org/cert.pem").exists()
    assert bk.verify(str(dest))

    target = tmp_path / "new"
    entries = bk.manifest_entries(manifest)
    for placement in bk.plan_restore(str(dest), str(target), entries):
        bk.apply_placement(str(dest), str(target), placement)
    link = target / "acme/live/matrix.example.org/privkey.pem"
    assert os.path.islink(link) and os.readlink(link) == "../../archive/matrix.example.org/privkey1.pem"
    assert link.read_text() == "KEY1"
    assert stat.S_IMODE(os.stat(target / "acme/archive/matrix.example.org/privkey1.pem").st_mode) == 0o600
    # A second pass changes nothing; a link changed by hand is put back.
    assert not [p for p in bk.plan_restore(str(dest), str(target), entries) if p.changed]
    os.unlink(link)
    os.symlink("../../archive/matrix.example.org/cert1.pem", str(link))
    changed = [p for p in bk.plan_restore(str(dest), str(target), entries) if p.changed]
    assert [(p.entry.path, p.content) for p in changed] == [("acme/live/matrix.example.org/privkey.pem", True)]
    bk.apply_placement(str(dest), str(target), changed[0])
    assert os.readlink(link) == "../../archive/matrix.example.org/privkey1.pem"


@pytest.mark.parametrize("path, link, tree, inside", [
    ("acme/live/x/cert.pem", "../../archive/x/cert1.pem", "acme", True),
    ("acme/live/x/cert.pem", "../../../synapse/keys/signing.key", "acme", False),
    ("acme/live/x/cert.pem", "../../../synapse/keys/signing.key", ".", True),
    ("acme/live/x/cert.pem", "../../../../etc/passwd", ".", False),
    ("acme/cert.pem", "/etc/passwd", ".", False),
    ("acme/cert.pem", "", ".", False),
    ("acme/cert.pem", "../acme2/x", "acme", False),
])
def test_link_stays_inside(path: str, link: str, tree: str, inside: bool) -> None:
    assert bk.link_stays_inside(path, link, tree) is inside


def test_restore_refuses_links_out_of_the_base_and_paths_through_links(base: Path, tmp_path: Path) -> None:
    """A manifest (edited by hand, say) never makes a link out of the base directory, and
    nothing is written through a link a restore finds on the host."""
    entry = {"path": "acme/live/x.pem", "type": "link", "target": "../../../etc/passwd", "mode": "0777", "uid": 0, "gid": 0}
    with pytest.raises(bk.BackupError, match="outside the base directory"):
        bk.Entry.from_dict(entry)
    dest = tmp_path / "b"
    manifest = _backup(base, dest)
    target = tmp_path / "new"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.mkdir()
    os.symlink(str(elsewhere), str(target / "synapse"))
    with pytest.raises(bk.BackupError, match="behind a symbolic link"):
        for placement in bk.plan_restore(str(dest), str(target), bk.manifest_entries(manifest)):
            bk.apply_placement(str(dest), str(target), placement)
    assert not list(elsewhere.iterdir())


class _Module:
    def __init__(self) -> None:
        self.failed: List[str] = []
        self.exited: List[Dict[str, Any]] = []

    def fail_json(self, msg: str) -> None:
        self.failed.append(msg)

    def exit_json(self, **result: Any) -> None:
        self.exited.append(result)


def _raise(error: Exception) -> Dict[str, Any]:
    raise error


def test_finish_exits_with_the_result_or_fails_with_one_line() -> None:
    module = _Module()
    bk.finish(module, "backup", lambda: {"changed": True})
    assert module.exited == [{"changed": True}] and module.failed == []
    module = _Module()
    bk.finish(module, "restore", lambda: _raise(bk.BackupError("hearth_restore_force is needed")))
    assert module.failed == ["hearth_restore_force is needed"] and module.exited == []
    module = _Module()
    bk.finish(module, "backup", lambda: _raise(PermissionError(13, "Permission denied", "/var/backups/x")))
    assert module.failed == ["backup failed: /var/backups/x: Permission denied"] and module.exited == []
