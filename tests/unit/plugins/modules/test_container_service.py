# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_service: idempotent unit file, check mode, diff, removal, validation errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Dict, List
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import container_service
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

SYSTEMCTL = "/usr/bin/systemctl"


@pytest.fixture
def commands() -> List[List[str]]:
    """Commands the module runs (systemctl, engine), recorded instead of executed."""
    calls: List[List[str]] = []

    def fake_run_command(self: basic.AnsibleModule, args: List[str], check_rc: bool = False, **kwargs: Any):
        calls.append(list(args))
        return 0, "", ""

    with mock.patch.object(basic.AnsibleModule, "run_command", fake_run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: SYSTEMCTL):
        yield calls


def args_for(unit_dir: Path, **overrides: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {
        "name": "hearth-synapse",
        "engine": "docker",
        "engine_path": "/usr/bin/docker",
        "sh_path": "/bin/sh",
        "engine_unit": "docker.service",
        "unit_dir": str(unit_dir),
        "requires": ["hearth-postgres.service"],
        "wants": ["hearth-mailer.service"],
        "container": {
            "image": "localhost/hearth/synapse:test",
            "user": "991:991",
            "networks": ["hearth"],
            "tmpfs": ["/tmp"],
            "mounts": [{"source": "/opt/hearth-matrix/synapse/data", "target": "/data", "read_only": False}],
            "healthcheck": {"command": ["curl", "-fsS", "http://localhost:8008/health"]},
        },
    }
    args.update(overrides)
    return args


def unit_file(unit_dir: Path) -> Path:
    return unit_dir / "hearth-synapse.service"


def test_present_writes_the_unit(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, args_for(tmp_path))
    assert result["failed"] is False
    assert result["changed"] is True and result["restart_needed"] is True
    assert result["unit_path"] == str(unit_file(tmp_path))
    text = unit_file(tmp_path).read_text()
    assert "SyslogIdentifier=hearth-synapse" in text
    assert "Requires=docker.service hearth-postgres.service" in text
    assert "Wants=network-online.target hearth-mailer.service" in text
    assert stat.S_IMODE(unit_file(tmp_path).stat().st_mode) == 0o644
    assert result["argv"][:3] == ["/usr/bin/docker", "create", "--name=hearth-synapse"]
    assert "--cap-drop=ALL" in result["argv"]
    assert commands == []  # writing the unit runs nothing; the role reloads and starts
    assert [p.name for p in tmp_path.iterdir()] == ["hearth-synapse.service"]  # no temp files left


def test_second_run_changes_nothing(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path))
    before = unit_file(tmp_path).stat().st_mtime_ns
    result = run_module(container_service.main, args_for(tmp_path), diff=True)
    assert result["changed"] is False and result["restart_needed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]
    assert unit_file(tmp_path).stat().st_mtime_ns == before


def test_fingerprint_change_needs_restart(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path, fingerprint="config:aaa"))
    result = run_module(container_service.main, args_for(tmp_path, fingerprint="config:bbb"), diff=True)
    assert result["changed"] is True and result["restart_needed"] is True
    assert "# fingerprint: config:aaa" in result["diff"]["before"]
    assert "# fingerprint: config:bbb" in result["diff"]["after"]
    assert result["diff"]["before_header"] == str(unit_file(tmp_path))


def test_check_mode_writes_nothing(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, args_for(tmp_path), check_mode=True, diff=True)
    assert result["changed"] is True and result["restart_needed"] is True
    assert not unit_file(tmp_path).exists()
    assert result["diff"]["before"] == ""
    assert "ExecStart=/usr/bin/docker start --attach hearth-synapse" in result["diff"]["after"]


def test_check_mode_on_unchanged_unit(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path))
    result = run_module(container_service.main, args_for(tmp_path), check_mode=True)
    assert result["changed"] is False


def test_local_edits_are_overwritten(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path))
    unit_file(tmp_path).write_text(unit_file(tmp_path).read_text().replace("Restart=always", "Restart=no"))
    result = run_module(container_service.main, args_for(tmp_path))
    assert result["changed"] is True
    assert "Restart=always" in unit_file(tmp_path).read_text()


def test_podman_unit(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, args_for(tmp_path, engine="podman", engine_path="/usr/bin/podman", engine_unit=""))
    text = unit_file(tmp_path).read_text()
    assert "docker" not in text
    assert result["argv"][0] == "/usr/bin/podman"


def test_absent_removes_unit_and_container(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path))
    text = unit_file(tmp_path).read_text()
    result = run_module(container_service.main, {"name": "hearth-synapse", "state": "absent", "unit_dir": str(tmp_path),
                                                 "engine_path": "/usr/bin/docker"}, diff=True)
    assert result["changed"] is True and result["restart_needed"] is False
    assert not unit_file(tmp_path).exists()
    assert commands == [
        [SYSTEMCTL, "disable", "--now", "hearth-synapse.service"],
        [SYSTEMCTL, "daemon-reload"],
        ["/usr/bin/docker", "rm", "--force", "hearth-synapse"],
    ]
    assert result["diff"] == {"before": text, "after": "", "before_header": str(unit_file(tmp_path)),
                              "after_header": str(unit_file(tmp_path))}


def test_absent_when_already_gone(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, {"name": "hearth-synapse", "state": "absent", "unit_dir": str(tmp_path)})
    assert result["changed"] is False
    assert commands == []


def test_absent_in_check_mode_touches_nothing(tmp_path: Path, commands: List[List[str]]) -> None:
    run_module(container_service.main, args_for(tmp_path))
    result = run_module(container_service.main, {"name": "hearth-synapse", "state": "absent", "unit_dir": str(tmp_path)},
                        check_mode=True)
    assert result["changed"] is True
    assert unit_file(tmp_path).exists()
    assert commands == []


def _with_container(**fields: Any) -> Dict[str, Any]:
    container = dict(args_for(Path("/"))["container"])
    container.update(fields)
    return {"container": container}


@pytest.mark.parametrize("overrides, field_name", [
    (_with_container(user="0"), "user"),
    (_with_container(user="root"), "user"),
    (_with_container(cap_add=["CAP_NET_RAW"]), "cap_add"),
    (_with_container(cap_add=["CAP_WARP"], root_reason="test"), "cap_add[0]"),
    (_with_container(mounts=[{"source": "relative", "target": "/data"}]), "mounts[0].source"),
    (_with_container(ports=[{"host_port": 8008, "container_port": 8008}]), "ports[0].host_address"),
    (_with_container(read_only="no"), "read_only"),
    (_with_container(privileged=True), "container"),
    ({"container": None}, "container"),
    ({"engine_path": None}, "engine_path"),
    ({"engine_path": "docker"}, "engine_path"),
    ({"sh_path": "sh"}, "sh_path"),
    ({"requires": ["hearth-postgres"]}, "requires[0]"),
    ({"after": ["bad unit.service"]}, "after[0]"),
    ({"engine_unit": "docker"}, "engine_unit[0]"),
    ({"restart_sec": -1}, "restart_sec"),
    ({"ready_timeout": 0}, "ready_timeout"),
    ({"fingerprint": "a\nb"}, "fingerprint"),
    ({"name": "bad name"}, "name"),
])
def test_bad_input_fails_naming_the_field(tmp_path: Path, commands: List[List[str]], overrides: Dict[str, Any], field_name: str) -> None:
    result = run_module(container_service.main, args_for(tmp_path, **overrides))
    assert result["failed"] is True, result
    assert result["field"] == field_name
    assert field_name in result["msg"]
    assert result["msg"].startswith("hearth-synapse: ") or field_name == "name"
    assert not unit_file(tmp_path).exists()


def test_missing_unit_dir_fails(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, args_for(tmp_path / "missing"))
    assert result["failed"] is True
    assert result["field"] == "unit_dir"


def test_bad_engine_choice_fails(tmp_path: Path, commands: List[List[str]]) -> None:
    result = run_module(container_service.main, args_for(tmp_path, engine="rkt"))
    assert result["failed"] is True
    assert "engine" in result["msg"]


def test_unit_text_matches_the_unit_model(tmp_path: Path, commands: List[List[str]]) -> None:
    from ansible_collections.hearth.matrix.plugins.module_utils.unit import render_unit

    run_module(container_service.main, args_for(tmp_path, restart_sec=7, ready_timeout=60, description="Synapse"))
    params = dict(container_service.ARGUMENT_SPEC)
    resolved = {key: spec.get("default") for key, spec in params.items()}
    resolved.update(args_for(tmp_path, restart_sec=7, ready_timeout=60, description="Synapse"))
    assert unit_file(tmp_path).read_text() == render_unit(container_service.build_unit_spec(resolved))
    assert os.path.isfile(str(unit_file(tmp_path)))
