"""TEST STAND-IN for matrix-corporal's HTTP gateway (NOT corporal; enforces no policy).

Reads corporal's rendered config.json (HttpGateway.ListenAddress, Matrix.HomeserverApiEndpoint),
forwards every request unchanged to the homeserver and appends "METHOD path" to a record
file, so tests can show that the proxy's client-API route really passes through the
gateway's address. GET /_hearth_standin/health answers locally (container health check).
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Tuple

# Headers that belong to one hop only (RFC 9110 section 7.6.1): never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}
HEALTH_PATH = "/_hearth_standin/health"


def read_config(path: str) -> Tuple[str, int, str]:
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    host, _separator, port = config["HttpGateway"]["ListenAddress"].rpartition(":")
    return host or "0.0.0.0", int(port), config["Matrix"]["HomeserverApiEndpoint"]


def make_handler(upstream: str, record_path: str) -> type:
    target = urllib.parse.urlsplit(upstream)
    record_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            with record_lock, open(record_path, "a", encoding="utf-8") as record:
                record.write("%s %s\n" % (self.command, self.path))

        def _forward(self) -> None:
            if self.path == HEALTH_PATH:
                self._reply(200, b'{"standin": "gateway", "corporal": false}')
                return
            self._record()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=120)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError as error:
                self._reply(502, json.dumps({"errcode": "M_UNKNOWN", "error": "stand-in: %s" % error}).encode())
            finally:
                connection.close()

        def _reply(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # keep stderr quiet
            return

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="corporal's config.json")
    parser.add_argument("--record", required=True, help="file that receives one 'METHOD path' line per request")
    args = parser.parse_args()
    host, port, upstream = read_config(args.config)
    server = ThreadingHTTPServer((host, port), make_handler(upstream, args.record))
    server.daemon_threads = True
    # PID 1 of a container gets no default SIGTERM action: without this, every stop waits
    # for the engine's timeout and ends in SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("gateway stand-in (not corporal) on %s:%d -> %s" % (host, port, upstream), file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
