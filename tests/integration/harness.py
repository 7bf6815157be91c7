# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the integration tests: run playbooks, read recaps, talk to the target."""

from __future__ import annotations

import atexit
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO_ROOT / "playbooks"
# The stack the tests and scripts/sandbox deploy on a bed target: the short vars file a user
# writes, plus what a closed test network needs (no remote key servers, local images).
STACK_SERVER_NAME = "hearth.test"
STACK_MATRIX_HOSTNAME = "matrix." + STACK_SERVER_NAME
# The CA the proxy generates when no certificate is given (clients must trust it).
CA_ON_TARGET = "/opt/hearth-matrix/nginx-proxy/tls/ca.crt"
SANDBOX_STACK_VARS: Dict[str, Any] = {
    # The bed's inventory lists its target under "all" (the playbooks default to the
    # matrix_servers group of a real inventory).
    "hearth_hosts": "all",
    "hearth_server_name": STACK_SERVER_NAME,
    "hearth_matrix_hostname": STACK_MATRIX_HOSTNAME,
    "hearth_synapse_trusted_key_servers": [],
    "hearth_images": {
        "postgres": "localhost/hearth/postgres:test",
        "synapse": "localhost/hearth/synapse:test",
        "nginx_proxy": "localhost/hearth/nginx:test",
    },
}
# Every component on (issue 5's stack), with what a closed test network needs: corporal's
# image cannot be built here, so its role runs the clearly named gateway stand-in
# (tests/bed/images/gateway-standin: forwards and records, enforces no policy); Element's
# web bundle neither, so the element role serves its placeholder page.
STANDIN_IMAGE = "localhost/hearth/gateway-standin:test"
# Named when the identity role is off; never contacted (the test network has no internet).
PUBLIC_IDENTITY = "https://identity.example.test"
# Generous login limits (Synapse's default lets 5 logins burst per address, and the tests
# log in far more often than a person would).
_RATE = {"per_second": 50, "burst_count": 500}
FULL_STACK_VARS: Dict[str, Any] = {
    "hearth_images": dict(SANDBOX_STACK_VARS["hearth_images"], **{
        "mailer": "localhost/hearth/exim:test",
        "identity": "localhost/hearth/sydent:test",
        "element": "localhost/hearth/nginx:test",
        "corporal": STANDIN_IMAGE,
    }),
    "hearth_public_identity_server": PUBLIC_IDENTITY,
    "mailer_exim_binary": "exim",
    "mailer_queue_interval": "1m",
    "element_placeholder": True,
    # The stand-in (not corporal) started through the corporal role's own variables.
    "corporal_container_entrypoint": "python3",
    "corporal_container_command": ["/opt/gateway-standin/gateway_standin.py", "--config", "/config/config.json",
                                   "--record", "/var/matrix-corporal/standin-requests.log"],
    "corporal_healthcheck_command": [
        "python3", "-c",
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:41080/_hearth_standin/health', timeout=4)",
    ],
    "synapse_extra_config": {"rc_login": {"address": _RATE, "account": _RATE, "failed_attempts": _RATE}},
}
# A throw-away SMTP sink (smtp_sink.py) standing in for the world's mail servers: the real
# Exim relays every message to it, in a container on the stack network of the target (Exim
# reaches it by name); the tests and scripts/sandbox read what arrived with `<engine> exec`.
SMTP_SINK_NAME = "hearth-test-smtp-sink"
SMTP_SINK_PORT = 2525
SMTP_SINK_SCRIPT = Path(__file__).with_name("smtp_sink.py")
SMTP_SINK_DIR_ON_TARGET = "/opt/hearth-test"
SMTP_SINK_STORE = "/tmp/mail/messages.jsonl"
SMTP_SINK_VARS: Dict[str, Any] = {
    "mailer_smarthost_host": SMTP_SINK_NAME,
    "mailer_smarthost_port": SMTP_SINK_PORT,
    "mailer_smarthost_security": "none",
}


def smtp_sink_run_args(network: str = "hearth") -> List[str]:
    """`<engine> run` arguments that start the sink, hardened like the stack's containers,
    from the stand-in image (it has python3); smtp_sink.py must be in SMTP_SINK_DIR_ON_TARGET."""
    return ["run", "-d", "--name", SMTP_SINK_NAME, "--network", network, "--user", "991:991", "--cap-drop=ALL",
            "--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/tmp",
            "-v", "%s:/sink:ro" % SMTP_SINK_DIR_ON_TARGET, "--entrypoint", "python3", STANDIN_IMAGE,
            "/sink/smtp_sink.py", "--port", str(SMTP_SINK_PORT), "--dir", str(Path(SMTP_SINK_STORE).parent)]


_RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)(?:\s+skipped=(?P<skipped>\d+))?"
)


_COLLECTIONS_ROOT: Optional[Path] = None


def collections_path() -> str:
    """A per-process ANSIBLE_COLLECTIONS_PATH where hearth.matrix resolves to this checkout.

    Per process, so two checkouts tested at the same time never see each other's roles.
    """
    global _COLLECTIONS_ROOT  # pylint: disable=global-statement
    if _COLLECTIONS_ROOT is None:
        root = Path(tempfile.mkdtemp(prefix="hearth-collections-"))
        link = root / "ansible_collections" / "hearth" / "matrix"
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO_ROOT)
        atexit.register(shutil.rmtree, str(root), True)
        _COLLECTIONS_ROOT = root
    return str(_COLLECTIONS_ROOT)


def ansible_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
        # The recommended transport settings (pipelining, a long ControlPersist) from the
        # repository's ansible.cfg, as a user running from a checkout gets them.
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "PYTHONUNBUFFERED": "1",
    })
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class PlaybookRun:
    rc: int
    output: str
    recap: Dict[str, Dict[str, int]]
    seconds: float

    @property
    def changed(self) -> int:
        return sum(host["changed"] for host in self.recap.values())

    @property
    def failed(self) -> int:
        return sum(host["failed"] + host["unreachable"] for host in self.recap.values())

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def failure_messages(output: str) -> List[str]:
    """The ``msg`` of failed results (YAML callback): single-line and block forms."""
    messages: List[str] = []
    lines = output.splitlines()
    in_failure = False
    for index, line in enumerate(lines):
        if line.startswith(("fatal:", "failed:", "ERROR!", "[ERROR]")):
            in_failure = True
            if line.startswith(("ERROR!", "[ERROR]")):
                messages.append(line)
            elif "=> {" in line:
                try:
                    messages.append(str(json.loads(line.split("=> ", 1)[1]).get("msg", "")))
                except ValueError:
                    messages.append(line)
            continue
        stripped = line.lstrip()
        if not in_failure or not stripped.startswith("msg:"):
            continue
        indent = len(line) - len(stripped)
        block = [stripped[len("msg:"):].strip()]
        for follow in lines[index + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            block.append(follow.strip())
        messages.append(" ".join(part for part in block if part not in ("|-", "|", ">-")))
    return messages


def parse_recap(output: str) -> Dict[str, Dict[str, int]]:
    recap: Dict[str, Dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        match = _RECAP_RE.match(line.strip()) if in_recap else None
        if match:
            recap[match.group("host")] = {k: int(v or 0) for k, v in match.groupdict().items() if k != "host"}
    return recap


def run_playbook(inventory: Path, playbook: Path, extra_vars: Optional[Mapping[str, Any]] = None,
                 args: Optional[List[str]] = None, timeout: int = 1500,
                 env: Optional[Mapping[str, Optional[str]]] = None) -> PlaybookRun:
    """Run ansible-playbook against a bed target; never raises on a failed play.

    env: changes to ansible_env(); a None value removes the variable.
    """
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(dict(extra_vars or {}), handle)
        vars_file = handle.name
    command += ["-e", "@" + vars_file] + list(args or [])
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=_changed_env(ansible_env(), env or {}), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    finally:
        os.unlink(vars_file)
    return PlaybookRun(rc=proc.returncode, output=proc.stdout, recap=parse_recap(proc.stdout),
                       seconds=time.monotonic() - started)


def _changed_env(base: Dict[str, str], changes: Mapping[str, Optional[str]]) -> Dict[str, str]:
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 1.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as error:  # pylint: disable=broad-except  # keep polling; report the last one
            last_error = error
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last error: %r)" % (timeout, what, last_error))


class LoopbackNames:
    """Resolve the stack's public host names to 127.0.0.1 inside this test process only.

    The target's 443/8448 are published on random loopback ports; certificates carry the
    real names, so TLS is verified by name against the generated CA, never bypassed.
    """

    def __init__(self, names: List[str]) -> None:
        self.names = set(names)
        self._original = socket.getaddrinfo

    def __enter__(self) -> "LoopbackNames":
        original = self._original
        names = self.names

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, bytes):
                host = host.decode()
            return original("127.0.0.1" if host in names else host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        socket.getaddrinfo = self._original  # type: ignore[assignment]


def ssl_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = True
    return context


def https_get(url: str, ca_file: Path, timeout: float = 10) -> "tuple[int, Dict[str, str], bytes]":
    request = urllib.request.Request(url, headers={"User-Agent": "hearth-tests"})
    try:
        with urllib.request.urlopen(request, context=ssl_context(ca_file), timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def http_get_no_redirect(url: str, timeout: float = 10) -> "tuple[int, Dict[str, str]]":
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D401
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def quote(argv: List[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def iter_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.strip()
        if line:
            yield line
