# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL major upgrade (issue 13, point 4) on a real bed target: 15 -> 17.

One target, every step needing the one before: the base stack on PostgreSQL 15 (the bed's
bookworm image) with a user and a message; site.yml with the PostgreSQL 17 image is refused
before anything changes; the upgrade with an image whose server cannot start (the 17 image
with a bad setting in its command; its initialisation works) fails and leaves 15 running on
its data, Synapse serving, and site.yml then changes nothing; the upgrade with the good image
brings 17 on a new directory, keeps the old one, and the client logs in with the old
password, reads the old message and sends a new one; a second run and site.yml change nothing.

Podman only: the upgrade is engine commands the stack already runs on both engines (exec,
create, start, rm of the role's own container spec), and the unit and the readiness check are
the ones test_base_stack.py covers on docker; a docker run would repeat the same ~4 minutes.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from typing import Dict, List

import pytest
from nio import AsyncClient, LoginResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse

from bedlib.images import COMPONENTS
from conftest import ENGINES, MATRIX_HOSTNAME, SERVER_NAME, Stack, converged_stack, target_factory
from harness import LoopbackNames, failure_messages, ssl_context, wait_for

NAMES = [MATRIX_HOSTNAME, SERVER_NAME]
PG_BASE = "/opt/hearth-matrix/postgres"
PG15 = "localhost/hearth/postgres:test"
PG17 = "localhost/hearth/postgres17:test"
# The 17 image whose server refuses to start (an unknown setting); built on the target.
PG17_BROKEN = "localhost/hearth-test/postgres17-broken:test"
BROKEN_CONTAINERFILE = 'FROM %s\nCMD ["postgres", "-c", "hearth_no_such_setting=1"]\n' % PG17


async def _login(base_url: str, user: str, password: str, context: ssl.SSLContext) -> AsyncClient:
    client = AsyncClient(base_url, user, ssl=context)
    response = await client.login(password, device_name="hearth-pg-upgrade-%s" % uuid.uuid4().hex[:6])
    if not isinstance(response, LoginResponse):
        await client.close()
        raise AssertionError("login as %s failed: %r" % (user, response))
    return client


async def _send(base_url: str, user: str, password: str, context: ssl.SSLContext, room_id: str, body: str) -> str:
    """Send into room_id (a new room when empty); returns the room."""
    client = await _login(base_url, user, password, context)
    try:
        if not room_id:
            created = await client.room_create(name="before the upgrade")
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
        sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        assert isinstance(sent, RoomSendResponse), sent
        return room_id
    finally:
        await client.close()


async def _bodies(base_url: str, user: str, password: str, context: ssl.SSLContext, room_id: str) -> List[str]:
    client = await _login(base_url, user, password, context)
    try:
        await client.sync(timeout=3000, full_state=True)
        messages = await client.room_messages(room_id, start=client.next_batch or "", limit=50)
        assert isinstance(messages, RoomMessagesResponse), messages
        return [getattr(event, "body", "") for event in messages.chunk if hasattr(event, "body")]
    finally:
        await client.close()


def _messages(output: str, needle: str) -> List[str]:
    """The failed tasks' one-line messages holding needle (not the [ERROR] summary lines;
    the YAML callback may quote a message)."""
    found = [m.strip().strip("'\"") for m in failure_messages(output) if needle in m and not m.startswith("[ERROR]")]
    assert all("\n" not in m for m in found), found
    return found


def _server_version(stack: Stack) -> str:
    _rc, out = stack.bed.engine_cmd("exec hearth-postgres psql -AtX -U synapse -d synapse -c 'SHOW server_version'")
    return out.strip()


def _data_dirs(stack: Stack) -> Dict[str, str]:
    """Every entry of the role's base directory, with the major in its PG_VERSION ('' if none)."""
    _rc, out = stack.bed.sh("cd %s && for d in *; do echo \"$d $(cat $d/PG_VERSION 2>/dev/null)\"; done" % PG_BASE)
    return {line.split(" ")[0]: line.partition(" ")[2].strip() for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("engine", ["podman"])
def test_postgres_15_to_17(engine: str, bed_images: Dict[str, object]) -> None:
    if engine not in ENGINES:
        pytest.skip("HEARTH_TEST_ENGINES has no podman")
    user, password = "carol-%s" % uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex
    user_id = "@%s:%s" % (user, SERVER_NAME)
    timings: Dict[str, float] = {}
    with target_factory(engine, "pgupgrade", components=list(COMPONENTS) + ["postgres17"]) as target:
        started = time.monotonic()
        stack = converged_stack(target)
        timings["deploy"] = time.monotonic() - started
        assert stack.register(user, password).rc == 0
        context = ssl_context(stack.ca_file)
        before = "sent on PostgreSQL 15 %s" % uuid.uuid4()
        with LoopbackNames(NAMES):
            room_id = asyncio.run(_send(stack.base_url, user_id, password, context, "", before))
        assert _server_version(stack).startswith("15.")
        images = dict(stack.extra_vars["hearth_images"])

        def image(ref: str) -> Dict[str, object]:
            return {"hearth_images": dict(images, postgres=ref)}

        # 1. The new image alone: refused before anything changes, naming the variable and the command.
        postgres_started = stack.started_at("hearth-postgres")
        refused = stack.converge(image(PG17))
        assert refused.rc != 0
        messages = _messages(refused.output, "postgres_upgrade.yml")
        assert messages and messages[0].startswith("postgres_image %s is PostgreSQL 17" % PG17), refused.tail(40)
        assert stack.started_at("hearth-postgres") == postgres_started

        # 2. A new server that does not come up: 15 back on its data, Synapse serving.
        target.sh("mkdir -p /tmp/broken && printf '%s' '%s' > /tmp/broken/Containerfile && "
                  "podman build -q --pull=never -t %s /tmp/broken" % ("%s", BROKEN_CONTAINERFILE, PG17_BROKEN))
        failed = stack.converge(image(PG17_BROKEN), playbook="postgres_upgrade.yml")
        timings["failed upgrade"] = failed.seconds
        assert failed.rc != 0
        messages = _messages(failed.output, "upgrade failed")
        assert messages and "PostgreSQL 15 runs again on %s/data" % PG_BASE in messages[0], failed.tail(60)
        assert _server_version(stack).startswith("15.")
        assert _data_dirs(stack) == {"data": "15", "secrets": ""}
        with LoopbackNames(NAMES):
            assert before in asyncio.run(_bodies(stack.base_url, user_id, password, context, room_id))
        # Exactly the old stack: site.yml with the old image changes nothing.
        again = stack.converge()
        assert again.rc == 0 and again.changed == 0, again.tail(60)

        # 3. The upgrade.
        upgraded = stack.converge(image(PG17), playbook="postgres_upgrade.yml")
        timings["upgrade"] = upgraded.seconds
        assert upgraded.rc == 0, upgraded.tail(80)
        assert password not in upgraded.output
        assert _server_version(stack).startswith("17.")
        assert _data_dirs(stack) == {"data": "15", "data-17": "17", "secrets": ""}
        target.assert_hardened("hearth-postgres")  # the 17 image runs like the 15 one: uid 991, no capabilities
        after = "sent on PostgreSQL 17 %s" % uuid.uuid4()
        seen: List[List[str]] = []

        def round_trip() -> bool:
            with LoopbackNames(NAMES):
                asyncio.run(_send(stack.base_url, user_id, password, context, room_id, after))
                seen[:] = [asyncio.run(_bodies(stack.base_url, user_id, password, context, room_id))]
            return True

        wait_for(round_trip, 90, 3, "login with the old password after the upgrade")
        assert before in seen[0] and after in seen[0]

        # 4. Nothing more to do: the upgrade again, and site.yml with the new image.
        second = stack.converge(image(PG17), playbook="postgres_upgrade.yml")
        assert second.rc == 0 and second.changed == 0, second.tail(40)
        assert "already PostgreSQL 17" in second.output
        site = stack.converge(image(PG17))
        assert site.rc == 0 and site.changed == 0, site.tail(60)
        assert _data_dirs(stack)["data"] == "15"
    print("postgres upgrade timings (%s): %s" % (engine, ", ".join("%s %.1f s" % item for item in timings.items())))
