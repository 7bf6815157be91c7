"""Print the pid of the `molecule test` process above this one, or nothing.

create.yml hands it to `bed.py up --owner-pid`: when `molecule test` is killed before its
own destroy step, `bed.py gc` (run by the next create and by the pytest fixtures) sees the
owner gone and removes the target instead of waiting for the age limit.

Only `molecule test` owns the target for its whole life. After a step-by-step
`molecule create` the process ends while the target is still wanted by the following
`molecule converge`/`verify`, so then nothing is printed and gc goes by age alone.
"""
from __future__ import annotations

import os
from pathlib import Path


def parent_pid(pid: int) -> int:
    # Field 4 of /proc/<pid>/stat, read after the last ')' because the command name
    # in field 2 may itself contain spaces or parentheses.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def molecule_arguments(pid: int) -> list[str] | None:
    """The arguments after `molecule` for `molecule ...` or `python -m molecule ...`."""
    argv = [arg.decode(errors="replace")
            for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    for index, arg in enumerate(argv[:3]):
        if os.path.basename(arg) == "molecule":
            return argv[index + 1:]
    return None


def owner_pid() -> int | None:
    pid = os.getppid()
    while pid > 1:
        try:
            arguments = molecule_arguments(pid)
            if arguments is not None:
                return pid if "test" in arguments else None
            pid = parent_pid(pid)
        except OSError:
            return None
    return None


if __name__ == "__main__":
    found = owner_pid()
    print(found if found is not None else "")
