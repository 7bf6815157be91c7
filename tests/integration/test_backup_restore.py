# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup and restore (issue 13, points 1 and 2) on real bed targets, per engine.

One test per engine, because every step needs the one before: the base stack on a first
target, a user who sends a message and uploads a file, hearth.matrix.backup fetched to this
test's temporary directory, the first target removed, hearth.matrix.restore onto a fresh
target; then a matrix-nio client logs in with the old password, reads the message and
downloads the file, and the key server shows the same key. Finally a backup of another server
(the same backup with a forged signing key and server name) is refused on the restored host,
which is left exactly as it was.

The backup is taken while a client keeps sending messages (a thread with its own event loop):
every message whose send was acknowledged before the backup playbook started must be in the
restored database, and the restored Synapse starts on it (the restore converges and the
client logs in).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from nio import (AsyncClient, DownloadResponse, LoginResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendError, RoomSendResponse,
                 UploadResponse)

from conftest import BASE_VARS, MATRIX_HOSTNAME, SERVER_NAME, Stack, converged_stack, target_factory
from harness import CA_ON_TARGET, LoopbackNames, failure_messages, https_get, ssl_context, wait_for

NAMES = [MATRIX_HOSTNAME, SERVER_NAME]
# The busy writer sends as fast as the server answers (Synapse's default lets a user send one
# message every 5 s after a burst of 10); the restore is given the same variables.
BUSY_VARS = {"synapse_extra_config": {"rc_message": {"per_second": 50, "burst_count": 500}}}
BACKUP_ROOT = "/var/backups/hearth-matrix"
# Besides the backup's own copy on the host: what must be the same after a refused restore.
STATE_DIGEST = ("cd /opt/hearth-matrix && find . -path ./postgres/data -prune -o -type f -printf '%p %m %U:%G\\n' | sort; "
                "find . -path ./postgres/data -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; "
                "ls -A " + BACKUP_ROOT + " 2>/dev/null || true")


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hearth-backup-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _login(base_url: str, user: str, password: str, context: ssl.SSLContext, device: str) -> AsyncClient:
    client = AsyncClient(base_url, user, ssl=context)
    response = await client.login(password, device_name=device)
    if not isinstance(response, LoginResponse):
        await client.close()
        raise AssertionError("login as %s failed: %r" % (user, response))
    return client


async def _populate(base_url: str, user: str, password: str, context: ssl.SSLContext, media: bytes) -> Dict[str, str]:
    """Create a room, send a message, upload a file; what must come back after the restore."""
    client = await _login(base_url, user, password, context, "hearth-backup-writer")
    try:
        created = await client.room_create(name="before the backup")
        assert isinstance(created, RoomCreateResponse), created
        body = "sent before the backup %s" % uuid.uuid4()
        sent = await client.room_send(created.room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        assert isinstance(sent, RoomSendResponse), sent
        uploaded, _keys = await client.upload(io.BytesIO(media), content_type="application/octet-stream",
                                              filename="before-backup.bin", filesize=len(media))
        assert isinstance(uploaded, UploadResponse), uploaded
        return {"room_id": created.room_id, "body": body, "mxc": uploaded.content_uri}
    finally:
        await client.close()


async def _create_room(base_url: str, user: str, password: str, context: ssl.SSLContext) -> str:
    client = await _login(base_url, user, password, context, "hearth-backup-room-maker")
    try:
        created = await client.room_create(name="busy during the backup")
        assert isinstance(created, RoomCreateResponse), created
        return str(created.room_id)
    finally:
        await client.close()


async def _read_back(base_url: str, user: str, password: str, context: ssl.SSLContext, room_id: str, mxc: str) -> Tuple[List[str], bytes]:
    client = await _login(base_url, user, password, context, "hearth-backup-reader-%s" % uuid.uuid4().hex[:6])
    try:
        await client.sync(timeout=3000, full_state=True)
        messages = await client.room_messages(room_id, start=client.next_batch or "", limit=50)
        assert isinstance(messages, RoomMessagesResponse), messages
        downloaded = await client.download(mxc=mxc)
        assert isinstance(downloaded, DownloadResponse), downloaded
        return [getattr(event, "body", "") for event in messages.chunk if hasattr(event, "body")], bytes(downloaded.body)
    finally:
        await client.close()


class Writer:
    """Keeps sending messages to one room from a thread; records each acknowledged one with the
    monotonic time its acknowledgement arrived."""

    def __init__(self, base_url: str, user: str, password: str, context: ssl.SSLContext, room_id: str) -> None:
        self.args = (base_url, user, password, context)
        self.room_id = room_id
        self.acked: List[Tuple[float, str]] = []
        self.errors: List[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        client = await _login(*self.args, device="hearth-backup-busy-writer")
        try:
            number = 0
            while not self.stop.is_set():
                body = "busy %04d %s" % (number, uuid.uuid4().hex[:8])
                sent = await client.room_send(self.room_id, "m.room.message", {"msgtype": "m.text", "body": body})
                if isinstance(sent, RoomSendResponse):
                    self.acked.append((time.monotonic(), body))
                    number += 1
                elif isinstance(sent, RoomSendError) and sent.retry_after_ms:
                    await asyncio.sleep(sent.retry_after_ms / 1000)
                else:
                    self.errors.append(repr(sent))
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    def acked_before(self, moment: float) -> List[str]:
        return [body for at, body in list(self.acked) if at < moment]

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)


async def _room_bodies(base_url: str, user: str, password: str, context: ssl.SSLContext, room_id: str) -> List[str]:
    """Every text message of a room, paging back from the newest."""
    client = await _login(base_url, user, password, context, "hearth-backup-counter-%s" % uuid.uuid4().hex[:6])
    try:
        await client.sync(timeout=3000, full_state=True)
        bodies: List[str] = []
        start = client.next_batch or ""
        while True:
            page = await client.room_messages(room_id, start=start, limit=500)
            assert isinstance(page, RoomMessagesResponse), page
            bodies += [getattr(event, "body", "") for event in page.chunk if hasattr(event, "body")]
            if not page.chunk or not page.end or page.end == start:
                return bodies
            start = page.end
    finally:
        await client.close()


def _server_keys(stack: Stack) -> Dict[str, Any]:
    with LoopbackNames(NAMES):
        status, _headers, body = https_get(stack.federation_url + "/_matrix/key/v2/server", stack.ca_file)
    assert status == 200, body
    keys = json.loads(body)
    assert keys["server_name"] == SERVER_NAME
    return dict(keys["verify_keys"])


def _forge_other_server(backup: Path, forged: Path) -> None:
    """The same backup, but of another server: its own signing key and server name."""
    shutil.copytree(str(backup), str(forged))
    seed = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    key_path = forged / "files" / "synapse" / "keys" / "signing.key"
    key_path.write_text("ed25519 a_othr %s\n" % seed)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["server_name"] = "other.test"
    manifest["signing_key_id"] = "ed25519:a_othr"
    for entry in manifest["files"]:
        if entry["path"] == "synapse/keys/signing.key":
            entry["sha256"] = hashlib.sha256(key_path.read_bytes()).hexdigest()
            entry["size"] = key_path.stat().st_size
    (forged / "manifest.json").write_text(json.dumps(manifest))


def test_backup_restore_onto_a_fresh_target(engine: str, bed_images: Dict[str, Any], scratch: Path) -> None:
    user, password = "bob-%s" % uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex
    user_id = "@%s:%s" % (user, SERVER_NAME)
    media = os.urandom(48 * 1024)
    fetched = scratch / "fetched"
    timings: Dict[str, float] = {}

    # 1. The base stack on a first target, with a message and a file.
    with target_factory(engine, "backup") as first:
        started = time.monotonic()
        stack = converged_stack(first, BUSY_VARS)
        assert stack.register(user, password).rc == 0
        with LoopbackNames(NAMES):
            before = asyncio.run(_populate(stack.base_url, user_id, password, ssl_context(stack.ca_file), media))
        keys_before = _server_keys(stack)
        timings["deploy"] = time.monotonic() - started

        # The backup runs while a client keeps sending messages.
        with LoopbackNames(NAMES):
            busy_room = asyncio.run(_create_room(stack.base_url, user_id, password, ssl_context(stack.ca_file)))
            writer = Writer(stack.base_url, user_id, password, ssl_context(stack.ca_file), busy_room)
            writer.thread.start()
            try:
                wait_for(lambda: len(writer.acked) >= 3 or bool(writer.errors), 60, 0.5, "the busy writer's first messages")
                backup_began = time.monotonic()
                run = stack.converge({"hearth_backup_fetch_dir": str(fetched), "hearth_backup_keep": 3, "hearth_backup_timer": True},
                                     playbook="backup.yml")
            finally:
                writer.finish()
        assert not writer.errors, writer.errors
        acked_before = writer.acked_before(backup_began)
        assert len(writer.acked) > len(acked_before) >= 3, (len(acked_before), len(writer.acked))
        assert run.rc == 0, run.tail(60)
        timings["backup"] = run.seconds
        assert password not in run.output
        # The timer's service runs the same backup on the host, by itself.
        first.sh("systemctl is-enabled hearth-matrix-backup.timer && systemctl is-active hearth-matrix-backup.timer")
        time.sleep(1)
        first.sh("systemctl start hearth-matrix-backup.service")
        _rc, listed = first.sh("ls %s" % BACKUP_ROOT)
        assert len(listed.split()) == 2, listed
        _rc, journal = first.sh("journalctl -u hearth-matrix-backup.service --no-pager -o cat")
        assert "hearth-matrix-backup: %s/" % BACKUP_ROOT in journal and "ed25519:" in journal, journal
        # Root only on the host: 0700 directories, 0600 files, nothing else.
        _rc, modes = first.sh("find %s -mindepth 1 \\( \\( -type d ! -perm 0700 \\) -o \\( -type f ! -perm 0600 \\) -o ! -user root \\) -print"
                              % BACKUP_ROOT)
        assert modes.strip() == "", "not root-only in the backup:\n" + modes
        _rc, ca_before = first.sh("cat " + CA_ON_TARGET)

    # 2. What reached the controller: one backup, verified by its manifest, root-only too.
    [host_dir] = list(fetched.iterdir())
    [backup] = list(host_dir.iterdir())
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["server_name"] == SERVER_NAME
    assert manifest["signing_key_id"] in keys_before, (manifest["signing_key_id"], keys_before)
    assert manifest["versions"]["synapse"] not in ("", "unknown") and manifest["versions"]["postgresql"] not in ("", "unknown")
    assert manifest["database"]["format"] == "custom"
    paths = {entry["path"] for entry in manifest["files"]}
    assert {"synapse/keys/signing.key", "nginx-proxy/ca/ca.key", "secrets/registration_shared_secret"} <= paths
    assert any(path.startswith("synapse/data/media_store/local_content/") for path in paths)
    for root, dirs, files in os.walk(backup):
        assert oct(os.stat(root).st_mode & 0o777) == "0o700", root
        for name in files:
            assert oct(os.stat(os.path.join(root, name)).st_mode & 0o777) == "0o600", name

    # 3. A fresh target: restore, then the same server is back.
    with target_factory(engine, "restore") as second:
        extra = dict(BASE_VARS, hearth_engine=engine, **BUSY_VARS)
        restored = Stack(bed=second, extra_vars=extra, ca_file=second.workdir / "ca.crt")
        run = restored.converge({"hearth_restore_src": str(backup)}, playbook="restore.yml")
        assert run.rc == 0, run.tail(80)
        timings["restore"] = run.seconds
        _rc, ca_after = second.sh("cat " + CA_ON_TARGET)
        assert ca_after == ca_before, "the proxy's CA was not restored"
        restored.ca_file.write_text(ca_after)
        seen: List[Tuple[List[str], bytes]] = []

        def read_back() -> bool:
            with LoopbackNames(NAMES):
                seen[:] = [asyncio.run(_read_back(restored.base_url, user_id, password, ssl_context(restored.ca_file),
                                                  before["room_id"], before["mxc"]))]
            return True

        wait_for(read_back, 90, 3, "login with the old password after the restore")
        bodies, downloaded = seen[0]
        assert before["body"] in bodies
        assert downloaded == media
        assert _server_keys(restored) == keys_before
        with LoopbackNames(NAMES):
            restored_bodies = set(asyncio.run(_room_bodies(restored.base_url, user_id, password, ssl_context(restored.ca_file),
                                                           busy_room)))
        missing = [body for body in acked_before if body not in restored_bodies]
        assert not missing, "acknowledged before the backup began, missing after the restore: %s" % missing
        print("busy writer: %d messages acknowledged before the backup began, %d in all, %d restored"
              % (len(acked_before), len(writer.acked), len(restored_bodies & {body for _at, body in writer.acked})))

        # A second site run on the restored host changes nothing: nothing was regenerated.
        again = restored.converge()
        assert again.rc == 0 and again.changed == 0, again.tail(60)

        # 4. Another server's backup is refused on this host, and nothing changes here.
        forged = scratch / ("forged-" + backup.name)
        _forge_other_server(backup, forged)
        _rc, state_before = second.sh(STATE_DIGEST)
        started_before = {name: restored.started_at(name) for name in ("hearth-postgres", "hearth-synapse", "hearth-nginx-proxy")}
        refused = restored.converge({"hearth_restore_src": str(forged), "hearth_server_name": "other.test"}, playbook="restore.yml")
        assert refused.rc != 0, refused.tail(60)
        messages = [m for m in failure_messages(refused.output) if "hearth_restore_force" in m]
        assert messages and "\n" not in messages[0] and "another server's data" in messages[0], refused.tail(40)
        _rc, state_after = second.sh(STATE_DIGEST)
        assert state_after == state_before
        assert {name: restored.started_at(name) for name in started_before} == started_before
    print("backup/restore timings (%s): %s" % (engine, ", ".join("%s %.1f s" % item for item in timings.items())))
