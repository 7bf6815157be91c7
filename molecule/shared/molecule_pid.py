#!/usr/bin/env python3
"""Print the pid of the nearest `molecule` process above this one (nothing if none).

create.yml hands it to `bed.py up --owner-pid`: when molecule is killed before its destroy
step, `bed.py gc` (run by the next create and by the pytest fixtures) sees the owner gone
and removes the target instead of waiting for the age limit.
"""
from __future__ import annotations

import os
from pathlib import Path


def parent_pid(pid: int) -> int:
    # Field 4 of /proc/<pid>/stat, read after the last ')' because the command name
    # in field 2 may itself contain spaces or parentheses.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def is_molecule(pid: int) -> bool:
    """True for `molecule ...` and `python -m molecule ...` command lines."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return any(os.path.basename(arg.decode(errors="replace")) == "molecule" for arg in argv[:3])


def molecule_pid() -> int | None:
    pid = os.getppid()
    while pid > 1:
        try:
            if is_molecule(pid):
                return pid
            pid = parent_pid(pid)
        except OSError:
            return None
    return None


if __name__ == "__main__":
    found = molecule_pid()
    print(found if found is not None else "")
