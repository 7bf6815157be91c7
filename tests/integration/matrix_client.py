# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Matrix client (matrix-nio): log in, create a room, send, read back; invite, join, wait."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, List, Optional

from nio import AsyncClient, JoinResponse, LoginResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse


@dataclass
class RoundTrip:
    room_id: str
    event_id: str
    body: str
    seen_by_second_session: List[str]


async def _login(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext], device: str) -> AsyncClient:
    client = AsyncClient(base_url, user, ssl=context if context is not None else False)
    response = await client.login(password, device_name=device)
    if not isinstance(response, LoginResponse):
        await client.close()
        raise AssertionError("login as %s failed: %r" % (user, response))
    return client


async def _round_trip(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext]) -> RoundTrip:
    body = "hearth test message %s" % uuid.uuid4()
    writer = await _login(base_url, user, password, context, "hearth-tests-writer")
    try:
        created = await writer.room_create(name="hearth test room")
        if not isinstance(created, RoomCreateResponse):
            raise AssertionError("room_create failed: %r" % (created,))
        sent = await writer.room_send(created.room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        if not isinstance(sent, RoomSendResponse):
            raise AssertionError("room_send failed: %r" % (sent,))
    finally:
        await writer.close()
    bodies = await read_messages(base_url, user, password, context, created.room_id)
    return RoundTrip(room_id=created.room_id, event_id=sent.event_id, body=body, seen_by_second_session=bodies)


async def read_messages(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext], room_id: str) -> List[str]:
    """Bodies of the text messages in a room, read by a fresh session (a second device)."""
    reader = await _login(base_url, user, password, context, "hearth-tests-reader-%s" % uuid.uuid4().hex[:6])
    try:
        await reader.sync(timeout=3000, full_state=True)
        messages = await reader.room_messages(room_id, start=reader.next_batch or "", limit=50)
        if not isinstance(messages, RoomMessagesResponse):
            raise AssertionError("room_messages failed: %r" % (messages,))
        return [getattr(event, "body", "") for event in messages.chunk if hasattr(event, "body")]
    finally:
        await reader.close()


def round_trip(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext]) -> RoundTrip:
    return asyncio.run(_round_trip(base_url, user, password, context))


def messages_in(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext], room_id: str) -> List[str]:
    return asyncio.run(read_messages(base_url, user, password, context, room_id))


# Federation scenarios keep one session per user open across several steps (rate limits on
# logins, and the invite must reach the session that joins).

@contextlib.asynccontextmanager
async def session(base_url: str, user: str, password: str, context: Optional[ssl.SSLContext],
                  device: str = "hearth-tests") -> AsyncIterator[AsyncClient]:
    """A logged-in matrix-nio client, closed at the end."""
    client = await _login(base_url, user, password, context, device)
    try:
        yield client
    finally:
        await client.close()


async def send_text(client: AsyncClient, room_id: str, body: str) -> str:
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    if not isinstance(sent, RoomSendResponse):
        raise AssertionError("room_send failed: %r" % (sent,))
    return sent.event_id


async def _poll(what: str, probe: Callable[[], Awaitable[bool]], timeout: float, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        await asyncio.sleep(interval)


async def wait_for_invite(client: AsyncClient, room_id: str, timeout: float = 60) -> None:
    """Sync until the client's user is invited to room_id (an invite may come over federation)."""
    async def invited() -> bool:
        await client.sync(timeout=2000)
        return room_id in client.invited_rooms

    await _poll("an invite to %s for %s" % (room_id, client.user_id), invited, timeout)


async def join(client: AsyncClient, room_id: str) -> None:
    joined = await client.join(room_id)
    if not isinstance(joined, JoinResponse):
        raise AssertionError("join %s as %s failed: %r" % (room_id, client.user_id, joined))


async def wait_for_bodies(client: AsyncClient, room_id: str, wanted: List[str], timeout: float = 60) -> List[str]:
    """Read the room's text messages until every body in ``wanted`` is there; returns them all."""
    seen: List[str] = []

    async def all_there() -> bool:
        await client.sync(timeout=2000)
        messages = await client.room_messages(room_id, start=client.next_batch or "", limit=50)
        if not isinstance(messages, RoomMessagesResponse):
            raise AssertionError("room_messages failed: %r" % (messages,))
        seen[:] = [getattr(event, "body", "") for event in messages.chunk if hasattr(event, "body")]
        return all(body in seen for body in wanted)

    await _poll("%s to read %s in %s" % (client.user_id, wanted, room_id), all_there, timeout)
    return seen
