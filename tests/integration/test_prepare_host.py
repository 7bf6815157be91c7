# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/bed/prepare-host works on a fresh Debian 12 machine, proven without one.

tests/bed/check-prepare-host runs prepare-host in a throwaway container of the bed's base
image (debootstrap minbase: none of the packages present): the first run installs and all
its command checks pass, the second installs and changes nothing, a third with one command
broken fails with one line naming the command and its package. A CI machine that already
has the packages would hide a missing install step; this does not. About 30-60 s.

The container reaches the Debian mirror of the base image (as `bed.py build` does).
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any, Dict

from harness import REPO_ROOT

CHECK = REPO_ROOT / "tests" / "bed" / "check-prepare-host"


def test_prepare_host_on_a_fresh_debian(bed_images: Dict[str, Any]) -> None:
    name = "hearth-check-prepare-host-" + uuid.uuid4().hex[:10]
    try:
        proc = subprocess.run([str(CHECK), "--name", name], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    finally:
        # The script removes its container; this covers a script killed by the timeout.
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "check-prepare-host: PASS" in proc.stdout
    second = proc.stdout.split("=== second run", 1)[1].split("=== third run", 1)[0]
    assert "nothing to install" in second and "FAILED" not in second, second
