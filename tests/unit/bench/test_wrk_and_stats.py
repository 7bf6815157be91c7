# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wrk's report, summaries, the table, and the machine description."""

from __future__ import annotations

import pytest

from benchlib.machine import cpu_model, memory_gib
from benchlib.stats import render_table, summarize
from benchlib.wrk import parse, time_wait_sockets, wrk_argv

REPORT = """Running 3s test @ https://10.88.0.196/_matrix/client/versions
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.06ms    1.10ms  12.23ms   73.32%
    Req/Sec     1.58k   145.30     1.87k    86.67%
  Latency Distribution
     50%    4.94ms
     75%  812.00us
     90%    1.02s
     99%    8.40ms
  4728 requests in 3.00s, 9.08MB read
Requests/sec:   1575.01
Transfer/sec:      3.03MB
"""


def test_parse_reads_rate_count_and_percentiles_in_milliseconds() -> None:
    result = parse(REPORT)
    assert result.requests == 4728
    assert result.requests_per_second == 1575.01
    assert result.latency_ms == {"50": 4.94, "75": 0.812, "90": 1020.0, "99": 8.4}
    assert result.errors == 0


def test_parse_counts_socket_errors_and_failed_responses() -> None:
    errors = "  Socket errors: connect 1, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 10\n"
    broken = REPORT.replace("Requests/sec:", errors + "Requests/sec:")
    assert parse(broken).errors == 16


def test_parse_refuses_a_report_without_latency_distribution() -> None:
    with pytest.raises(ValueError, match="--latency"):
        parse(REPORT.split("  Latency Distribution", 1)[0])


def test_wrk_argv_sends_the_host_header_with_fixed_load() -> None:
    argv = wrk_argv("https://10.0.0.2/x", "matrix.example.org", 16, 10)
    assert argv[0] == "wrk" and "--latency" in argv
    assert ["-c16", "-d10s"] == [arg for arg in argv if arg.startswith(("-c", "-d"))]
    assert argv[argv.index("-H") + 1] == "Host: matrix.example.org"
    assert argv[-1] == "https://10.0.0.2/x"


def test_summarize_gives_median_min_max_and_keeps_the_samples() -> None:
    summary = summarize([3.0, 1.0, 2.0, 10.0])
    assert (summary["median"], summary["min"], summary["max"], summary["n"]) == (2.5, 1.0, 10.0, 4)
    assert summary["samples"] == [3.0, 1.0, 2.0, 10.0]
    with pytest.raises(ValueError):
        summarize([])


def test_render_table_shows_ranges_lists_and_aligns_columns() -> None:
    table = render_table([["fresh", summarize([30.0, 20.0, 25.0])], ["restarted", ["a", "b"]],
                          ["none", []], ["single", summarize([0.5])]], ["figure", "docker"])
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "docker"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split(None, 1) == ["fresh", "25 (20–30)"]
    assert lines[3].endswith("a, b") and lines[4].endswith("none") and lines[5].endswith("0.5")
    assert len({line.index(line.split()[-1][0]) for line in lines[2:3]}) == 1


def test_machine_description_from_proc_files() -> None:
    assert cpu_model("processor : 0\nmodel name\t: Example CPU @ 2.0GHz\n") == "Example CPU @ 2.0GHz"
    assert memory_gib("MemTotal:       24575996 kB\n") == 23.4
    assert memory_gib("") == 0.0


PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   991        0 1 1 0000000000000000 100 0 0 10 0
   1: 0200590A:A1B2 0300590A:1F48 06 00000000:00000000 03:00000F1C 00000000     0        0 0 3 0000000000000000
   2: 0200590A:A1B4 0300590A:1F48 01 00000000:00000000 00:00000000 00000000   991        0 2 1 0000000000000000 20 4 30 10 -1
   3: 0200590A:A1B6 0300590A:1F48 06 00000000:00000000 03:00000F1C 00000000     0        0 0 3 0000000000000000
"""


def test_time_wait_sockets_counts_state_06_only_by_side() -> None:
    # Listening on 0x20FB (8443); two closed connections to an upstream's 0x1F48 (8008),
    # one from a client to the listening port, one still open.
    dump = PROC_NET_TCP + (
        "   4: 0200590A:20FB 0100590A:C350 06 00000000:00000000 03:00000F1C 00000000     0        0 0 3 0000000000000000\n")
    assert time_wait_sockets(dump) == {"upstreams": 2, "clients": 1}
    assert time_wait_sockets(PROC_NET_TCP.splitlines()[0]) == {"upstreams": 0, "clients": 0}
