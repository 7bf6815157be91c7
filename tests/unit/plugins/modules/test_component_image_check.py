# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""component with image_check: a new image is probed first and refused before anything changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.test_component import DOCKER, FakeSystem, files_under, service

NEW_ID = "sha256:" + "f" * 64
CHECK = {"kind": "synapse_schema", "variable": "synapse_image", "config": "/config/homeserver.yaml"}


class ProbedSystem(FakeSystem):
    """FakeSystem whose `docker run` (the probe) answers with ``probe``."""

    def __init__(self) -> None:
        super().__init__()
        self.probe: Dict[str, Any] = {"version": "1.163.2", "schema_version": 94, "db_version": 94, "db_compat_version": 84}

    def run_command(self, module: basic.AnsibleModule, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        argv = [str(arg) for arg in args]
        if argv[:2] == [DOCKER, "run"]:
            self.calls.append(argv)
            return 0, json.dumps(self.probe) + "\n", ""
        if argv[:2] == [DOCKER, "exec"]:
            self.calls.append(argv)
            return 0, "1.170.0\n", ""
        return super().run_command(module, args, **kwargs)

    def probes(self) -> List[List[str]]:
        return [argv for argv in self.calls if argv[:2] == [DOCKER, "run"]]


@pytest.fixture
def system() -> ProbedSystem:
    return ProbedSystem()


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    path = tmp_path / "systemd"
    path.mkdir()
    return path


def deployed(system: ProbedSystem, tmp_path: Path, unit_dir: Path) -> List[Dict[str, Any]]:
    components = [service(tmp_path, image_check=CHECK)]
    assert system.run(components, unit_dir)["changed"]
    assert system.probes() == []          # fresh install: nothing to protect, no probe
    system.running("hearth-synapse")
    return components


def test_same_image_is_not_probed(system: ProbedSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = deployed(system, tmp_path, unit_dir)
    result = system.run(components, unit_dir)
    assert not result["changed"] and system.probes() == []


def test_new_image_accepted_by_the_probe_is_converged(system: ProbedSystem, tmp_path: Path, unit_dir: Path) -> None:
    components = deployed(system, tmp_path, unit_dir)
    system.image_id = NEW_ID
    result = system.run(components, unit_dir)
    assert result["restarted"] == ["hearth-synapse"]
    [probe] = system.probes()
    assert NEW_ID in probe and "--rm" in probe
    assert "image=%s" % NEW_ID[:19] in (unit_dir / "hearth-synapse.service").read_text()


@pytest.mark.parametrize("check_mode", [False, True])
def test_too_old_image_is_refused_before_anything_changes(system: ProbedSystem, tmp_path: Path, unit_dir: Path,
                                                          check_mode: bool) -> None:
    components = deployed(system, tmp_path, unit_dir)
    unit_before = (unit_dir / "hearth-synapse.service").read_text()
    listing = files_under(tmp_path)
    system.image_id = NEW_ID
    system.probe.update(version="1.150.0", schema_version=90, db_compat_version=94)
    # The config changes too: it must not be written either.
    components[0]["files"][0]["content"] = "server_name: example.org\nchanged: true\n"
    result = system.run(components, unit_dir, check_mode=check_mode)
    assert result["failed"] and result["field"] == "synapse_image"
    assert result["msg"].startswith("synapse_image: %s has Synapse 1.150.0 (database schema 90 at most)" % components[0]["container"]["image"])
    assert "running Synapse 1.170.0" in result["msg"] and "\n" not in result["msg"]
    assert (unit_dir / "hearth-synapse.service").read_text() == unit_before
    assert (tmp_path / "hearth-synapse" / "config" / "homeserver.yaml").read_text() == "server_name: example.org\n"
    assert files_under(tmp_path) == listing
    assert system.systemctl_calls() == []
