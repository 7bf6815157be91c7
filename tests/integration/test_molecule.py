# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs every molecule scenario of the collection (molecule/<engine>/) end to end.

Each scenario brings up a test bed target, converges hearth.matrix.site over SSH, checks
idempotence, verifies and destroys the target. pytest-ansible's ``molecule_scenario``
fixture is parametrized with the scenarios tracked by git and runs
``python -m molecule test -s <name>``; molecule's output goes straight to this process's
stdout, so pytest shows it with a failing test (or live with ``-s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest
from pytest_ansible.molecule import MoleculeScenario
from pytest_ansible.plugin import scenarios as discovered_scenarios

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tracked_scenarios() -> List[str]:
    listing = subprocess.run(
        ["git", "ls-files", "molecule/*/molecule.yml"],
        cwd=str(REPO_ROOT), check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    return sorted(Path(line).parent.name for line in listing.splitlines())


def _add_scenarios_outside_rootdir() -> None:
    """pytest-ansible lists scenarios with git ls-files from pytest's rootdir, and
    tests/integration/pytest.ini makes that directory the rootdir, below which there are
    none. The fixture is parametrized from this list after the module is imported, so the
    repository's scenarios are added here, with the repository root as their directory."""
    known = {scenario.name for scenario in discovered_scenarios}
    for name in _tracked_scenarios():
        if name not in known:
            discovered_scenarios.append(
                MoleculeScenario(name=name, parent_directory=REPO_ROOT, test_id=name))


_add_scenarios_outside_rootdir()


def test_every_scenario_is_collected() -> None:
    """Guards against a silent skip: an empty parameter set would only show up as a
    skipped test."""
    tracked = _tracked_scenarios()
    assert tracked, "no molecule/*/molecule.yml tracked by git"
    assert sorted(scenario.name for scenario in discovered_scenarios) == tracked


def test_molecule_scenario(molecule_scenario: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scenario pytest-ansible found itself has its project directory relative to the
    # rootdir; molecule needs the venv's ansible-* commands on PATH.
    monkeypatch.chdir(REPO_ROOT)
    venv_bin = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", venv_bin + os.pathsep + os.environ.get("PATH", ""))
    started = time.monotonic()
    result = molecule_scenario.test()
    seconds = time.monotonic() - started
    print("molecule test -s %s: rc=%d in %.0fs" % (molecule_scenario.name, result.returncode, seconds))
    assert result.returncode == 0, (
        "`molecule test -s %s` failed with rc=%d; its output is in the captured stdout"
        % (molecule_scenario.name, result.returncode)
    )
