# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the figures came from: the host machine and the versions of what was measured."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List


def _first_line(argv: List[str]) -> str:
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return "unavailable (%s)" % error
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if lines else "unavailable (exit %d)" % proc.returncode


def cpu_model(cpuinfo: str) -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def memory_gib(meminfo: str) -> float:
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else 0.0


def host_machine() -> Dict[str, object]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    return {
        "cpu": cpu_model(read("/proc/cpuinfo")),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(read("/proc/meminfo")),
        "kernel": platform.release(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def controller_versions() -> Dict[str, str]:
    from ansible import release  # pylint: disable=import-outside-toplevel  # only in the venv
    versions = {
        "python": sys.version.split()[0],
        "ansible_core": release.__version__,
        "wrk": _first_line(["wrk", "-v"]),
        "host_podman": _first_line(["podman", "--version"]),
    }
    try:
        import mitogen  # pylint: disable=import-outside-toplevel
        versions["mitogen"] = ".".join(str(part) for part in mitogen.__version__)
    except ImportError:
        versions["mitogen"] = "not installed"
    return versions
