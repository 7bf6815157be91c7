# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""benchlib.cpu: CPU time per request of each group of processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from benchlib import cpu

STAT_TAIL = "S 1 1 1 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 3 0 100 1000 10 1 1 1 1 1 1 0 0 0 0 0 0 0 17 0 0 0 0 0 0"


def _stat(pid: int, comm: str, utime: int, stime: int) -> str:
    return "%d (%s) %s" % (pid, comm, STAT_TAIL % (utime, stime))


def test_parse_stat_reads_comm_with_spaces_and_parentheses_and_sums_user_and_system() -> None:
    assert cpu.parse_stat(_stat(7, "a (b) c", 150, 50), 100) == ("a (b) c", 2.0)


@pytest.mark.parametrize("comm, cmdline, group", [
    ("python", "python -m synapse.app.homeserver --config-path /config/homeserver.yaml", "synapse"),
    ("python", "python /srv/standin.py", "rest"),
    ("nginx", "nginx: worker process", "nginx"),
    ("dockerd", "/usr/bin/dockerd -H fd://", "engine log path"),
    ("conmon", "/usr/bin/conmon --api-version 1", "engine log path"),
    ("containerd-shim", "/usr/bin/containerd-shim-runc-v2", "engine log path"),
    ("systemd-journal", "/lib/systemd/systemd-journald", "journald"),
    ("wrk", "wrk --latency", "rest"),     # counted as the benchmark's child (see snapshot)
    ("bash", "bash", "rest"),
])
def test_group_of(comm: str, cmdline: str, group: str) -> None:
    assert cpu.group_of(comm, cmdline) == group


def test_snapshot_reads_every_process_directory_and_skips_the_rest(tmp_path: Path) -> None:
    ticks = cpu.os.sysconf("SC_CLK_TCK")
    for pid, comm, cmdline, utime in ((11, "python", b"python\0-m\0synapse.app.homeserver\0", ticks * 3),
                                      (12, "nginx", b"nginx: worker process\0", ticks)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, comm, utime, 0))
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)
    (tmp_path / "13").mkdir()               # ended between listing and reading: no files
    (tmp_path / "self").mkdir()             # not a process id
    taken = cpu.snapshot(tmp_path)
    assert taken.pop(cpu.CHILDREN_PID)[0] == "wrk"
    assert taken == {11: ("synapse", 3.0), 12: ("nginx", 1.0)}


def test_snapshot_counts_a_child_that_ended_in_between_as_wrk(tmp_path: Path) -> None:
    before = cpu.snapshot(tmp_path)
    subprocess.run([sys.executable, "-c", "sum(range(3000000))"], check=True)
    after = cpu.snapshot(tmp_path)
    assert cpu.microseconds_per_request(before, after, 1)["wrk"] > 0


def test_per_request_counts_only_processes_that_lived_through_both_snapshots() -> None:
    before = {1: ("synapse", 10.0), 2: ("nginx", 1.0), 3: ("wrk", 0.5), 4: ("rest", 9.0)}
    after = {1: ("synapse", 11.0), 2: ("nginx", 1.2),
             4: ("journald", 9.5),          # pid reused by another process: not counted
             5: ("engine log path", 3.0)}   # started in between: its earlier time is unknown
    spent = cpu.microseconds_per_request(before, after, 2000)
    assert spent == {"synapse": 500.0, "nginx": 100.0, "engine log path": 0.0, "journald": 0.0,
                     "wrk": 0.0, "rest": 0.0}
    assert list(spent) == list(cpu.GROUP_ORDER)


def test_per_request_refuses_a_round_without_requests() -> None:
    with pytest.raises(ValueError):
        cpu.microseconds_per_request({}, {}, 0)
