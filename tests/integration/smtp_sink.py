# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throw-away SMTP sink for the tests: accepts every message, stores it, relays nothing.

Runs ON THE TARGET in a container on the stack network (stdlib only, Python 3.9+), so the
stack's Exim relay can use it as its smarthost. Each message is appended as one JSON line
({"mail_from", "rcpt_to", "data"}) to <dir>/messages.jsonl; tests read that file with
`<engine> exec`. Plain SMTP without TLS or AUTH (mailer_smarthost_security: none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import List

STORE_NAME = "messages.jsonl"


class Session:
    def __init__(self, store: str) -> None:
        self.store = store
        self.reset()

    def reset(self) -> None:
        self.mail_from = ""
        self.rcpt_to: List[str] = []

    def save(self, data: str) -> None:
        with open(self.store, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"mail_from": self.mail_from, "rcpt_to": self.rcpt_to, "data": data}) + "\n")


def _address(argument: str) -> str:
    """The address inside <...> of a MAIL FROM:/RCPT TO: argument (parameters dropped)."""
    start, end = argument.find("<"), argument.find(">")
    return argument[start + 1:end] if 0 <= start < end else argument.split(":", 1)[-1].strip()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, store: str) -> None:
    session = Session(store)

    async def reply(line: str) -> None:
        writer.write((line + "\r\n").encode())
        await writer.drain()

    await reply("220 hearth-test-smtp-sink ESMTP")
    while True:
        raw = await reader.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        verb = line[:4].upper()
        if verb in ("EHLO", "HELO"):
            await reply("250-hearth-test-smtp-sink" if verb == "EHLO" else "250 hearth-test-smtp-sink")
            if verb == "EHLO":
                await reply("250-8BITMIME")
                await reply("250 SIZE 52428800")
        elif verb == "MAIL":
            session.reset()
            session.mail_from = _address(line)
            await reply("250 OK")
        elif verb == "RCPT":
            session.rcpt_to.append(_address(line))
            await reply("250 OK")
        elif verb == "DATA":
            await reply("354 End data with <CR><LF>.<CR><LF>")
            lines: List[str] = []
            while True:
                data_line = (await reader.readline()).decode("utf-8", "replace")
                if data_line in (".\r\n", ".\n", ""):
                    break
                lines.append(data_line[1:] if data_line.startswith("..") else data_line)
            session.save("".join(lines))
            await reply("250 OK: stored")
        elif verb == "RSET":
            session.reset()
            await reply("250 OK")
        elif verb == "NOOP":
            await reply("250 OK")
        elif verb == "QUIT":
            await reply("221 Bye")
            break
        else:
            await reply("502 Command not implemented")
    writer.close()


async def main(port: int, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    store = os.path.join(directory, STORE_NAME)
    open(store, "a", encoding="utf-8").close()
    server = await asyncio.start_server(lambda r, w: _serve(r, w, store), "0.0.0.0", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", default="/tmp/mail")
    arguments = parser.parse_args()
    # PID 1 of a container: exit on SIGTERM instead of waiting for the engine's SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(main(arguments.port, arguments.dir))
