# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit model: the text systemd gets for one container service."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError, container_spec_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.unit import (
    MANAGED_MARKER,
    HostPaths,
    UnitSpec,
    check_unit_names,
    create_line_argv,
    exec_line,
    render_unit,
    systemd_quote,
)

DOCKER = HostPaths(engine="/usr/bin/docker", sh="/bin/sh")
PODMAN = HostPaths(engine="/usr/bin/podman", sh="/usr/bin/sh")


def unit_spec(engine: str = "docker", container: Dict[str, Any] = None, **kwargs: Any) -> UnitSpec:
    raw = {"image": "localhost/hearth/synapse:test", "user": "991:991", "networks": ["hearth"]}
    raw.update(container or {})
    defaults: Dict[str, Any] = {
        "container": container_spec_from_dict("hearth-synapse", raw),
        "engine": engine,
        "paths": DOCKER if engine == "docker" else PODMAN,
        "engine_unit": "docker.service" if engine == "docker" else "",
    }
    defaults.update(kwargs)
    return UnitSpec(**defaults)


def directives(text: str, key: str) -> List[str]:
    """Values of every `key=` line (a unit may repeat ExecStartPre= and friends)."""
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def sections(text: str) -> List[str]:
    return [line for line in text.splitlines() if line.startswith("[")]


def test_unit_shape() -> None:
    text = render_unit(unit_spec(requires=("hearth-postgres.service",), wants=("hearth-mailer.service",)))
    assert text.startswith(MANAGED_MARKER + "\n")
    assert sections(text) == ["[Unit]", "[Service]", "[Install]"]
    assert directives(text, "SyslogIdentifier") == ["hearth-synapse"]
    assert directives(text, "DefaultDependencies") == ["no"]
    # What DefaultDependencies=no would drop is added back explicitly.
    assert directives(text, "Conflicts") == ["shutdown.target"]
    assert directives(text, "Before") == ["shutdown.target"]
    after = directives(text, "After")[0].split()
    assert after[:3] == ["sysinit.target", "basic.target", "network-online.target"]
    assert "docker.service" in after and "hearth-postgres.service" in after and "hearth-mailer.service" in after
    assert directives(text, "Requires") == ["docker.service hearth-postgres.service"]
    assert directives(text, "Wants") == ["network-online.target hearth-mailer.service"]
    assert directives(text, "Restart") == ["always"]
    assert directives(text, "RestartSec") == ["5"]
    assert directives(text, "WantedBy") == ["multi-user.target"]
    assert text.endswith("\n")


FAKE_ENGINE = """#!/bin/sh
echo "$*" >> "$0.calls"
if [ "$1" = create ] && [ -e "$0.taken" ]; then echo 'name in use' >&2; exit 125; fi
if [ "$1" = rm ]; then rm -f "$0.taken"; fi
exit 0
"""


@pytest.mark.parametrize("taken, expected", [
    (False, ["create --name=hearth-synapse"]),
    (True, ["create --name=hearth-synapse", "rm --force hearth-synapse", "create --name=hearth-synapse"]),
])
def test_create_line_replaces_only_a_leftover_container(tmp_path: Path, taken: bool, expected: List[str]) -> None:
    """One engine client per start after a clean stop; a leftover container of the same name
    (crash, older unit) is removed and the create retried, as the unit's own line runs it."""
    engine = tmp_path / "engine"
    engine.write_text(FAKE_ENGINE)
    engine.chmod(0o755)
    if taken:
        (tmp_path / "engine.taken").touch()
    spec = unit_spec(paths=HostPaths(engine=str(engine), sh="/bin/sh"))
    rendered = [line for line in render_unit(spec).splitlines() if line.startswith("ExecStartPre=")][0]
    argv = shlex.split(rendered[len("ExecStartPre="):].replace("$$", "$"))
    assert argv == create_line_argv(spec)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == ""
    calls = (tmp_path / "engine.calls").read_text().splitlines()
    assert [" ".join(call.split()[:2]) if call.startswith("create") else call for call in calls] == expected


def test_create_line_reports_a_failure_of_the_retry(tmp_path: Path) -> None:
    engine = tmp_path / "engine"
    engine.write_text("#!/bin/sh\necho \"no such image\" >&2\nexit 125\n")
    engine.chmod(0o755)
    argv = create_line_argv(unit_spec(paths=HostPaths(engine=str(engine), sh="/bin/sh")))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 125 and result.stderr == "no such image\n"


def test_exec_lines_sequence_and_absolute_paths() -> None:
    text = render_unit(unit_spec(container={"networks": ["hearth", "hearth-federation", "hearth-mail"], "stop_timeout": 45}))
    pre = directives(text, "ExecStartPre")
    create = shlex.split(pre[0].replace("$$", "$"))
    assert create[:2] == ["/bin/sh", "-c"] and create[3:6] == ["/usr/bin/docker", "create", "--name=hearth-synapse"]
    assert pre[1:] == ["/usr/bin/docker network connect hearth-federation hearth-synapse",
                       "/usr/bin/docker network connect hearth-mail hearth-synapse"]
    assert directives(text, "ExecStart") == ["/usr/bin/docker start --attach hearth-synapse"]
    assert directives(text, "ExecStop") == ["/usr/bin/docker stop --time=45 hearth-synapse"]
    assert directives(text, "ExecStopPost") == ["-/usr/bin/docker rm --force hearth-synapse"]
    assert directives(text, "TimeoutStopSec") == ["75"]
    # systemd < v239 has no PATH lookup: every command starts with an absolute path.
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost"):
        for value in directives(text, key):
            assert value.lstrip("-").startswith("/"), (key, value)


def test_rootless_docker_unit_talks_to_the_users_dockerd() -> None:
    """A user unit: the user's docker.service, its socket under %t, no root-only sandbox, and
    the readiness wait through the engine (the stack network is in the user's namespace)."""
    spec = unit_spec("docker_rootless", {"address": "10.89.91.10",
                                         "healthcheck": {"command": ["true"], "probe": {"kind": "tcp", "port": 8008}}},
                     paths=DOCKER, scope="user", engine_unit="docker.service")
    text = render_unit(spec)
    assert directives(text, "Environment") == ["DOCKER_HOST=unix://%t/docker.sock"]
    assert directives(text, "Requires") == ["docker.service"] and "PrivateNetwork=yes" not in text
    assert directives(text, "PrivateUsers") == ["yes"] and directives(text, "ProtectSystem") == ["strict"]
    assert directives(text, "WantedBy") == ["default.target"]
    assert "/usr/bin/docker exec hearth-synapse true" in directives(text, "ExecStartPost")[0]


def test_podman_unit_has_no_engine_daemon_dependency() -> None:
    text = render_unit(unit_spec("podman"))
    assert "docker" not in text
    assert directives(text, "Requires") == []
    assert directives(text, "ExecStart") == ["/usr/bin/podman start --attach hearth-synapse"]
    assert " /usr/bin/podman create --name=hearth-synapse " in directives(text, "ExecStartPre")[0]


def test_readiness_wait_uses_health_command() -> None:
    text = render_unit(unit_spec(container={"healthcheck": {"command": ["pg_isready", "-U", "synapse"]}}, ready_timeout=30))
    (post,) = directives(text, "ExecStartPost")
    assert post.startswith('/bin/sh -c "')
    # `$` is doubled for systemd, which turns `$$` back into `$` before sh sees it.
    # 10 probes 0.2 s apart, then 1 s apart: 2 s + 28 s of sleeps = the 30 s asked for.
    assert "$$((i+1))" in post and "[ $$i -ge 38 ]" in post and "not ready after 30s" in post
    assert "if [ $$i -lt 10 ]; then sleep 0.2; else sleep 1; fi" in post
    assert "/usr/bin/docker exec hearth-synapse pg_isready -U synapse" in post
    assert directives(text, "TimeoutStartSec") == ["210"]


def test_no_readiness_wait_without_healthcheck() -> None:
    assert directives(render_unit(unit_spec()), "ExecStartPost") == []


def test_reload_on_ready_signals_after_the_readiness_wait() -> None:
    health = {"healthcheck": {"command": ["healthcheck"]}}
    text = render_unit(unit_spec(container=health, reload_on_ready=("hearth-nginx-proxy", "other-proxy", "hearth-nginx-proxy")))
    post = directives(text, "ExecStartPost")
    assert len(post) == 3
    assert post[0].startswith('/bin/sh -c "')  # the readiness wait comes first
    # "-": a proxy that is not running must not fail this service's start.
    assert post[1:] == ["-/usr/bin/docker kill --signal=HUP hearth-nginx-proxy",
                        "-/usr/bin/docker kill --signal=HUP other-proxy"]


def test_reload_on_ready_without_health_check_waits_until_the_container_runs() -> None:
    text = render_unit(unit_spec(engine="podman", reload_on_ready=("hearth-nginx-proxy",)))
    post = directives(text, "ExecStartPost")
    assert len(post) == 1 and post[0].startswith("-%s -c " % PODMAN.sh)
    assert "inspect --format" in post[0] and "State.Running" in post[0]
    assert post[0].endswith('exec /usr/bin/podman kill --signal=HUP hearth-nginx-proxy"')


def test_no_reload_by_default() -> None:
    assert "--signal=HUP" not in render_unit(unit_spec(container={"healthcheck": {"command": ["healthcheck"]}}))


def test_fingerprint_and_description() -> None:
    text = render_unit(unit_spec(fingerprint="sha1:abc image:sha256:def", description="Matrix homeserver"))
    assert "# fingerprint: sha1:abc image:sha256:def" in text.splitlines()
    assert directives(text, "Description") == ["Matrix homeserver"]
    assert directives(render_unit(unit_spec()), "Description") == ["hearth-synapse"]
    assert render_unit(unit_spec(fingerprint="a")) != render_unit(unit_spec(fingerprint="b"))


def test_rendering_is_deterministic() -> None:
    assert render_unit(unit_spec()) == render_unit(unit_spec())


def test_duplicate_dependencies_listed_once() -> None:
    text = render_unit(unit_spec(requires=("hearth-postgres.service",), after=("hearth-postgres.service", "docker.service")))
    after = directives(text, "After")[0].split()
    assert after.count("hearth-postgres.service") == 1 and after.count("docker.service") == 1


@pytest.mark.parametrize("paths, field_name", [
    (HostPaths(engine="docker", sh="/bin/sh"), "engine_path"),
    (HostPaths(engine="/usr/bin/docker", sh="sh"), "sh_path"),
    (HostPaths(engine="", sh="/bin/sh"), "engine_path"),
])
def test_relative_command_paths_are_rejected(paths: HostPaths, field_name: str) -> None:
    with pytest.raises(SpecError) as info:
        render_unit(unit_spec(paths=paths))
    assert info.value.field == field_name


# --- quoting for Exec lines -------------------------------------------------------------------

@pytest.mark.parametrize("arg, quoted", [
    ("plain", "plain"),
    ("--name=hearth-synapse", "--name=hearth-synapse"),
    ("$HOME", '"$$HOME"'),
    ("100%", "100%%"),
    ("%h/$USER", '"%%h/$$USER"'),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("", '""'),
    (";", '";"'),
    ("line\nbreak", '"line\\nbreak"'),
])
def test_systemd_quote(arg: str, quoted: str) -> None:
    assert systemd_quote(arg) == quoted


def _systemd_unquote_line(line: str) -> List[str]:
    """Undo systemd's escaping for the subset systemd_quote produces (test oracle)."""
    words = shlex.split(line.replace("\\n", "\n"), posix=True)
    return [word.replace("%%", "%").replace("$$", "$") for word in words]


def test_exec_line_round_trips_awkward_arguments() -> None:
    argv = ["/usr/bin/docker", "create", "--env=GREETING=hello world", "--label=a=$x", "--health-cmd=test -f '%s'", "it's"]
    assert _systemd_unquote_line(exec_line(argv)) == argv


def test_newline_in_an_argument_cannot_break_the_unit() -> None:
    text = render_unit(unit_spec(container={"command": ["sh", "-c", "echo a\nExecStartPre=/bin/evil"]}))
    assert not any(line.startswith("ExecStartPre=/bin/evil") for line in text.splitlines())
    assert all("=" in line or line.startswith(("#", "[")) or not line for line in text.splitlines())


@pytest.mark.parametrize("names, ok", [
    (["hearth-postgres.service", "network-online.target", "getty@tty1.service"], True),
    (["hearth-postgres"], False),
    (["a b.service"], False),
    ([42], False),
])
def test_check_unit_names(names: List[Any], ok: bool) -> None:
    if ok:
        assert check_unit_names("requires", names) == tuple(names)
    else:
        with pytest.raises(SpecError) as info:
            check_unit_names("requires", names)
        assert info.value.field == "requires[0]"


def test_readiness_wait_stops_when_the_main_process_is_gone() -> None:
    """A container that dies during start must fail the unit now, not after ready_timeout."""
    from ansible_collections.hearth.matrix.plugins.module_utils.container import container_spec_from_dict
    from ansible_collections.hearth.matrix.plugins.module_utils.unit import HostPaths, UnitSpec, render_unit

    container = container_spec_from_dict("hearth-db", {
        "image": "localhost/db:1", "user": "991:991", "healthcheck": {"command": ["pg_isready"]}})
    text = render_unit(UnitSpec(container=container, engine="docker", paths=HostPaths("/usr/bin/docker", "/bin/sh")))
    post = [line for line in text.splitlines() if line.startswith("ExecStartPost=")]
    assert len(post) == 1
    assert 'kill -0 \\"$$MAINPID\\"' in post[0]
