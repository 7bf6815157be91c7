# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs every molecule scenario of the collection (molecule/<engine>/) end to end.

Each scenario brings up a test bed target, converges hearth.matrix.site over SSH, checks
idempotence, verifies and destroys the target. pytest-ansible finds the scenarios (git
ls-files **/molecule/*/molecule.yml from the rootdir) and its ``molecule_scenario`` fixture
runs ``python -m molecule test -s <name>``; molecule's output goes straight to this
process's stdout, so pytest shows it with a failing test (or live with ``-s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tracked_scenarios() -> List[str]:
    listing = subprocess.run(
        ["git", "ls-files", "molecule/*/molecule.yml"],
        cwd=str(REPO_ROOT), check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    return sorted(Path(line).parent.name for line in listing.splitlines())


def test_every_scenario_is_collected() -> None:
    """Guards against a silent skip: pytest-ansible looks for scenarios below the rootdir,
    and an empty parameter set would only show up as a skipped test."""
    # The list the molecule_scenario fixture is parametrized from (filled at configure time).
    from pytest_ansible.plugin import scenarios  # pylint: disable=import-outside-toplevel

    assert sorted(scenario.name for scenario in scenarios) == _tracked_scenarios(), (
        "pytest-ansible did not find every molecule scenario; run pytest with the "
        "repository root as rootdir (e.g. `python -m pytest --rootdir=. tests/integration`)"
    )


def test_molecule_scenario(molecule_scenario: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest-ansible records the scenario's project directory relative to the rootdir and
    # molecule needs the venv's ansible-* commands on PATH.
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
