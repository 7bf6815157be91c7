# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""component with quadlet: Quadlet files instead of units, podman and systemd scripted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import component as component_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.test_component import (
    IMAGE_ID,
    SYSTEMCTL,
    FakeSystem,
    service,
)

PODMAN = "/usr/bin/podman"


class PodmanSystem(FakeSystem):
    """FakeSystem with podman of a given version instead of docker."""

    def __init__(self, version: str = "5.4.2") -> None:
        super().__init__({"podman": PODMAN, "systemctl": SYSTEMCTL, "sh": "/bin/sh"})
        self.version = version

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        argv = [str(arg) for arg in args]
        if argv[:2] == [PODMAN, "version"]:
            self.calls.append(argv)
            return 0, self.version + "\n", ""
        if argv[:3] == [PODMAN, "image", "inspect"]:
            self.calls.append(argv)
            return 0, IMAGE_ID + "\n", ""
        return super().run_command(module, args, **kwargs)

    def run_quadlet(self, components: List[Dict[str, Any]], unit_dir: Path, quadlet_dir: Path,
                    check_mode: bool = False) -> Dict[str, Any]:
        self.calls = []

        def get_bin_path(module: basic.AnsibleModule, arg: str, *args: Any, **kwargs: Any) -> Optional[str]:
            return self.binaries.get(arg)

        def run_command(module: basic.AnsibleModule, *args: Any, **kwargs: Any) -> Tuple[int, str, str]:
            return self.run_command(module, *args, **kwargs)

        with mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
                mock.patch.object(basic.AnsibleModule, "run_command", run_command):
            return run_module(component_module.main, {
                "components": copy.deepcopy(components), "unit_dir": str(unit_dir), "quadlet_dir": str(quadlet_dir),
                "pending_dir": str(unit_dir.parent / "pending")}, check_mode=check_mode)


@pytest.fixture
def dirs(tmp_path: Path) -> Tuple[Path, Path]:
    unit_dir, quadlet_dir = tmp_path / "systemd", tmp_path / "containers-systemd"
    unit_dir.mkdir()
    quadlet_dir.mkdir()
    return unit_dir, quadlet_dir


def quadlet_service(root: Path, **extra: Any) -> Dict[str, Any]:
    return service(root, engine="podman", quadlet=True, instance="synapse@%s" % root, **extra)


def changing(system: FakeSystem) -> List[List[str]]:
    return [argv[1:] for argv in system.systemctl_calls()]


def test_fresh_quadlet_service_is_a_container_file_started_not_enabled(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    result = system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    assert result["changed"] and result["started"] == ["hearth-synapse"]
    text = (quadlet_dir / "hearth-synapse.container").read_text()
    assert "ContainerName=hearth-synapse" in text and "DropCapability=all" in text
    assert not list(unit_dir.iterdir())
    # A generated unit is never `systemctl enable`d: the generator applies [Install].
    assert changing(system) == [["daemon-reload"], ["restart", "hearth-synapse.service"]]

    system.running("hearth-synapse")
    system.units["hearth-synapse"]["UnitFileState"] = "generated"
    again = system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    assert not again["changed"] and changing(system) == []


def test_changed_config_restarts_only_that_service(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    system.running("hearth-synapse")
    result = system.run_quadlet([quadlet_service(tmp_path / "srv", files=[])], unit_dir, quadlet_dir)
    assert result["restarted"] == ["hearth-synapse"]


@pytest.mark.parametrize("version", ["4.3.1", "garbage"])
def test_old_podman_is_refused_before_any_change(tmp_path: Path, dirs: Tuple[Path, Path], version: str) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem(version)
    result = system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    assert result["failed"] and result["msg"].startswith("hearth_podman_quadlet: needs podman >= 4.4")
    assert "\n" not in result["msg"]
    assert not (tmp_path / "srv").exists() and not list(quadlet_dir.iterdir()) and changing(system) == []


def test_quadlet_with_docker_is_refused(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    result = PodmanSystem().run_quadlet([service(tmp_path / "srv", quadlet=True)], unit_dir, quadlet_dir)
    assert result["failed"] and "quadlet" in result["msg"]


def test_switching_format_stops_and_removes_the_other_file(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    generated = service(tmp_path / "srv", engine="podman")
    system.run_quadlet([generated], unit_dir, quadlet_dir)
    assert (unit_dir / "hearth-synapse.service").exists()
    system.running("hearth-synapse")

    result = system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    assert result["restarted"] == ["hearth-synapse"]
    assert not (unit_dir / "hearth-synapse.service").exists() and (quadlet_dir / "hearth-synapse.container").exists()
    calls = changing(system)
    assert calls.index(["stop", "hearth-synapse.service"]) < calls.index(["daemon-reload"])
    assert ["disable", "hearth-synapse.service"] in calls

    back = system.run_quadlet([generated], unit_dir, quadlet_dir)
    assert back["restarted"] == ["hearth-synapse"]
    assert (unit_dir / "hearth-synapse.service").exists() and not (quadlet_dir / "hearth-synapse.container").exists()


def test_absent_removes_the_file_and_container_not_data(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    result = system.run_quadlet([{"name": "hearth-synapse", "state": "absent", "engine": "podman", "quadlet": True}],
                                unit_dir, quadlet_dir)
    assert result["changed"] and not (quadlet_dir / "hearth-synapse.container").exists()
    assert (tmp_path / "srv" / "hearth-synapse" / "config" / "homeserver.yaml").exists()
    assert [PODMAN, "rm", "--force", "hearth-synapse"] in system.calls
    assert ["stop", "hearth-synapse.service"] in changing(system)


def test_renamed_service_removes_the_old_quadlet_file(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir)
    renamed = quadlet_service(tmp_path / "srv", name="hearth-homeserver")
    system.run_quadlet([renamed], unit_dir, quadlet_dir)
    assert sorted(p.name for p in quadlet_dir.iterdir()) == ["hearth-homeserver.container"]


def test_network_files_follow_the_variable(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    common = {"name": "hearth-common", "engine": "podman", "quadlet": True,
              "networks": ["hearth"]}
    first = system.run_quadlet([common], unit_dir, quadlet_dir)
    assert first.get("changed"), first
    assert "NetworkName=hearth" in (quadlet_dir / "hearth.network").read_text()
    assert ["daemon-reload"] in changing(system)
    assert not system.run_quadlet([common], unit_dir, quadlet_dir)["changed"]
    system.run_quadlet([dict(common, quadlet=False)], unit_dir, quadlet_dir)
    assert not (quadlet_dir / "hearth.network").exists()


def test_check_mode_writes_nothing(tmp_path: Path, dirs: Tuple[Path, Path]) -> None:
    unit_dir, quadlet_dir = dirs
    system = PodmanSystem()
    result = system.run_quadlet([quadlet_service(tmp_path / "srv")], unit_dir, quadlet_dir, check_mode=True)
    assert result["changed"] and not list(quadlet_dir.iterdir()) and changing(system) == []
