# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small HTTP/JSON and mail helpers for test_full_stack.py (stdlib only)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from harness import ssl_context


def https_json(method: str, url: str, ca_file: Path, body: Optional[Dict[str, Any]] = None,
               access_token: str = "", timeout: float = 20) -> Tuple[int, Dict[str, Any]]:
    """One JSON request over verified TLS; returns (status, decoded body or {})."""
    headers = {"User-Agent": "hearth-tests", "Content-Type": "application/json"}
    if access_token:
        headers["Authorization"] = "Bearer " + access_token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=ssl_context(ca_file), timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError:
        decoded = {"_raw": raw.decode("utf-8", "replace")}
    return status, decoded


def password_login(base_url: str, ca_file: Path, user: str, password: str) -> str:
    status, body = https_json("POST", base_url + "/_matrix/client/v3/login", ca_file, {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password,
    })
    assert status == 200, "password login failed: %s %s" % (status, body)
    return str(body["access_token"])


def shared_secret_token(secret: str, user_id: str) -> str:
    """What shared-secret-authenticator expects: hex HMAC-SHA512 of the full user id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha512).hexdigest()


def shared_secret_login(base_url: str, ca_file: Path, user_id: str, token: str) -> Tuple[int, Dict[str, Any]]:
    return https_json("POST", base_url + "/_matrix/client/v3/login", ca_file, {
        "type": "com.devture.shared_secret_auth",
        "identifier": {"type": "m.id.user", "user": user_id},
        "token": token,
    })


def message_texts(raw_message: str) -> List[str]:
    """Decoded text of every text/* part of one stored RFC 5322 message."""
    message = email.message_from_string(raw_message, policy=email.policy.default)
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            texts.append(str(part.get_content()))
    return texts


def header(raw_message: str, name: str) -> str:
    message = email.message_from_string(raw_message, policy=email.policy.default)
    return str(message.get(name, ""))
