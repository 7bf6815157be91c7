# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From raw run records to the per-engine summary and the printed table."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from benchlib.report import engine_summary, mode_summary, render


def converge(seconds: float, changed: int = 0, restarted: Any = ()) -> Dict[str, Any]:
    return {"seconds": seconds, "tasks": 150, "changed": changed, "skipped": 20, "restarted": list(restarted)}


def run(scale: float, mitogen_error: bool = False, beyond: Any = ()) -> Dict[str, Any]:
    restarted = ["hearth-synapse.service", *beyond]
    return {
        "fresh_converge": converge(40 * scale, changed=30),
        "no_change_converge": dict(converge(20 * scale), to_floor=4.0 / scale),
        "floor": {"seconds": 5 * scale, "tasks": 2, "changed": 0, "skipped": 0, "module_calls": 7,
                  "ran_first": scale != 2.0},
        "one_setting_change": dict(converge(25 * scale, changed=1, restarted=restarted),
                                   expected_restarts=["hearth-synapse.service"], restarted_beyond=list(beyond)),
        "transport": {"defaults": converge(30 * scale), "recommended": converge(20 * scale),
                      "mitogen": {"error": "boom"} if mitogen_error else converge(10 * scale)},
        "stack_restart": {"seconds": 30 * scale, "all_healthy_after": 28 * scale, "summed_downtime": 50 * scale,
                          "downtime": {}},
        "reboot": {"ssh_after": 8 * scale, "all_healthy_after": 40 * scale, "summed_downtime": 200 * scale,
                   "downtime": {}},
        "unit_exposure": {"worst": 1.2 * scale, "best": 1.0, "units": {}},
    }


def wrk(rate: float, p50: float, p99: float) -> Dict[str, Any]:
    return {"requests_per_second": rate, "p50_ms": p50, "p99_ms": p99, "requests": int(rate * 10)}


DATA = {
    "runs": [run(1.0), run(2.0, mitogen_error=True, beyond=["hearth-corporal.service"]), run(1.5),
             {"fresh_converge": converge(1.0)}],
    "proxy": {"connections": 16, "seconds": 10,
              "rounds": {"direct": [wrk(2000, 4.0, 8.0), wrk(1800, 5.0, 9.0)],
                         "proxy": [wrk(1500, 5.0, 10.0), wrk(1300, 6.0, 12.0)]}},
}


def test_summary_takes_complete_runs_only_and_medians_each_figure() -> None:
    summary = engine_summary(DATA)
    assert summary["runs"] == 3
    assert summary["fresh_converge"]["seconds"]["median"] == 60.0
    assert summary["no_change_converge"]["changed"]["max"] == 0
    assert summary["no_change_converge"]["restarted_count"]["max"] == 0
    assert summary["one_setting_change"]["restarted"] == ["hearth-corporal.service", "hearth-synapse.service"]
    assert summary["reboot"]["all_healthy_after"] == {"median": 60.0, "min": 40.0, "max": 80.0, "n": 3,
                                                      "samples": [40.0, 80.0, 60.0]}
    assert summary["stack_restart"]["seconds"]["median"] == 45.0


def test_summary_puts_the_floor_beside_the_no_change_converge() -> None:
    summary = engine_summary(DATA)
    assert summary["floor"]["seconds"]["median"] == 7.5
    assert summary["floor"]["tasks"]["max"] == 2
    assert summary["floor"]["module_calls"] == 7
    # The median of the per-run ratios (4, 2, 2.667), not a ratio of medians.
    assert summary["no_change_converge"]["to_floor"]["median"] == 2.667
    assert summary["no_change_converge"]["to_floor"]["n"] == 3


def test_summary_names_every_service_restarted_beyond_the_changed_one() -> None:
    block = engine_summary(DATA)["one_setting_change"]
    assert block["expected_restarts"] == ["hearth-synapse.service"]
    assert block["restarted_beyond"] == ["hearth-corporal.service"]
    assert block["restarted_beyond_count"]["samples"] == [0, 1, 0]


def test_summary_keeps_a_failed_optional_transport_beside_the_timed_runs() -> None:
    transport = engine_summary(DATA)["transport"]
    assert transport["recommended"]["seconds"]["median"] == 30.0
    assert transport["mitogen"]["seconds"]["n"] == 2
    assert transport["mitogen"]["error"] == "boom"


def test_proxy_ratio_is_the_median_of_each_rounds_own_ratio() -> None:
    data = {"runs": [], "proxy": {"connections": 16, "seconds": 10, "rounds": {
        "direct": [wrk(2000, 4.0, 8.0), wrk(1000, 8.0, 16.0), wrk(1500, 5.0, 10.0)],
        "proxy": [wrk(1800, 4.4, 8.0), wrk(950, 8.0, 20.0), wrk(1200, 6.0, 11.0)]}}}
    proxy = engine_summary(data)["proxy"]
    assert proxy["direct"]["requests_per_second"]["median"] == 1500.0
    ratio = proxy["ratio_proxy_to_direct"]
    # Rounds 0.9, 0.95, 0.8: their median, where the ratio of the medians would say 0.8.
    assert ratio["requests_per_second"]["median"] == 0.9
    assert ratio["requests_per_second"]["samples"] == [0.9, 0.95, 0.8]
    assert (ratio["p50_ms"]["median"], ratio["p99_ms"]["median"]) == (1.1, 1.1)


def test_proxy_ratio_needs_one_direct_round_per_proxy_round() -> None:
    data = {"runs": [], "proxy": {"connections": 16, "seconds": 10, "rounds": {
        "direct": [wrk(2000, 4.0, 8.0)], "proxy": [wrk(1800, 4.4, 8.0), wrk(950, 8.0, 20.0)]}}}
    with pytest.raises(ValueError, match="2 rounds and the direct path 1"):
        engine_summary(data)


def test_render_prints_one_row_per_figure_and_the_context() -> None:
    result = {
        "summary": {"docker": engine_summary(DATA), "podman": {"runs": 0}},
        "engines": {"docker": {"versions": {"synapse": "1.163.2"}}, "podman": {}},
        "core": {"services": 100, "topology_ms": [1.0, 2.0], "total_ms": [9.0, 10.0, 11.0]},
        "machine": {"cpu": "Example", "cores": 2, "memory_gib": 23.4, "kernel": "6.1", "load_average_at_start": [0.5]},
        "versions": {"ansible_core": "2.19.14"},
        "failure": "no-change converge restarted x",
    }
    text = render(result)
    lines = text.splitlines()
    assert "docker (3 runs)" in lines[0] and "podman (0 runs)" in lines[0]
    fresh = next(line for line in lines if line.startswith("1. fresh converge"))
    assert "60 (40–80)" in fresh and fresh.rstrip().endswith("-")
    assert any("ratio proxy/direct req/s" in line and "0.736 (0.722–0.75)" in line for line in lines)
    floor = next(line for line in lines if line.lstrip().startswith("floor ("))
    assert "7.5 (5–10)" in floor
    ratio = next(line for line in lines if "no-change / floor" in line)
    assert "goal ≤ 2" in ratio and "2.67 (2–4)" in ratio
    beyond = next(line for line in lines if "restarted beyond the changed service" in line)
    assert "hearth-corporal.service" in beyond and "hearth-synapse.service" not in beyond
    assert "topology + argv + units 10.0 (9.0–11.0) ms" in text
    assert "docker target: synapse: 1.163.2" in text
    assert lines[-1] == "FAILED: no-change converge restarted x"


def _rendered_docker(summary: Dict[str, Any]) -> List[str]:
    """The printed table's lines for one docker summary and nothing else measured."""
    result = {"summary": {"docker": summary}, "engines": {"docker": {}},
              "core": {"services": 100, "topology_ms": [1.0], "total_ms": [9.0]},
              "machine": {"cpu": "Example", "cores": 2, "memory_gib": 23.4, "kernel": "6.1", "load_average_at_start": [0.5]},
              "versions": {}}
    return render(result).splitlines()


def test_proxy_time_wait_is_summarised_and_printed_when_measured() -> None:
    data = {"runs": [], "proxy": {"connections": 16, "seconds": 10, "rounds": {
        "direct": [wrk(2000, 4.0, 8.0), wrk(1950, 4.0, 8.0)],
        "proxy": [dict(wrk(1900, 4.5, 9.0), time_wait_after={"upstreams": 3, "clients": 16}),
                  dict(wrk(1850, 4.6, 9.5), time_wait_after={"upstreams": 5, "clients": 30})]}}}
    summary = engine_summary(data)
    assert summary["proxy"]["proxy"]["time_wait_after"]["upstreams"]["median"] == 4
    assert summary["proxy"]["proxy"]["time_wait_after"]["clients"]["samples"] == [16, 30]
    assert "time_wait_after" not in engine_summary(DATA)["proxy"]["proxy"]
    lines = [line for line in _rendered_docker(summary) if "TIME_WAIT" in line]
    assert "towards upstreams" in lines[0] and "4 (3–5)" in lines[0]
    assert "from clients" in lines[1] and "23 (16–30)" in lines[1]


def test_exposure_row_and_summary() -> None:
    summary = engine_summary(DATA)
    assert summary["unit_exposure"]["worst"]["median"] == 1.8 and summary["unit_exposure"]["best"]["max"] == 1.0
    table = render({"summary": {"docker": summary}, "engines": {"docker": {}},
                    "core": {"services": 100, "topology_ms": [1.0], "total_ms": [9.0]},
                    "machine": {"cpu": "Example", "cores": 2, "memory_gib": 23.4, "kernel": "6.1",
                                "load_average_at_start": [0.5]},
                    "versions": {}})
    line = next(line for line in table.splitlines() if line.startswith("8. systemd-analyze security exposure"))
    assert "1.8 (1.2–2.4)" in line


def test_modes_are_printed_beside_the_rootful_engines() -> None:
    mode_data = {"fresh_converge": converge(30.0, changed=40), "no_change_converge": converge(12.0),
                 "proxy": {"connections": 16, "seconds": 10,
                           "rounds": {"direct": [wrk(1000, 4.0, 10.0)], "proxy": [wrk(800, 5.0, 15.0)]}}}
    result = {
        "summary": {"docker": engine_summary(DATA)},
        "modes": {"podman_rootless": mode_data},
        "mode_summary": {"podman_rootless": mode_summary(mode_data)},
        "engines": {"docker": {}},
        "core": {"services": 100, "topology_ms": [1.0], "total_ms": [9.0]},
        "machine": {"cpu": "Example", "cores": 2, "memory_gib": 23.4, "kernel": "6.1", "load_average_at_start": [0.5]},
        "versions": {},
    }
    lines = render(result).splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Engine modes side by side"))
    header = lines[start + 1]
    assert "docker" in header and "podman_rootless" in header
    fresh = next(line for line in lines[start:] if line.startswith("fresh converge"))
    assert "60 (40–80)" in fresh and fresh.rstrip().endswith("30")
    ratio = next(line for line in lines[start:] if line.startswith("proxy/direct req/s"))
    assert "0.736 (0.722–0.75)" in ratio and ratio.rstrip().endswith("0.8")
    p99 = next(line for line in lines[start:] if line.startswith("proxy/direct p99"))
    assert p99.rstrip().endswith("1.5")


def test_a_mode_whose_proxy_measurement_failed_shows_the_error() -> None:
    mode_data = {"fresh_converge": converge(30.0, changed=40), "no_change_converge": converge(12.0),
                 "proxy": {"error": "direct: 2 failed requests under load"}}
    result = {
        "summary": {"docker": engine_summary(DATA)},
        "modes": {"docker_rootless": mode_data},
        "mode_summary": {"docker_rootless": mode_summary(mode_data)},
        "engines": {"docker": {}},
        "core": {"services": 100, "topology_ms": [1.0], "total_ms": [9.0]},
        "machine": {"cpu": "Example", "cores": 2, "memory_gib": 23.4, "kernel": "6.1", "load_average_at_start": [0.5]},
        "versions": {},
    }
    lines = render(result).splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Engine modes side by side"))
    ratio = next(line for line in lines[start:] if line.startswith("proxy/direct req/s"))
    assert ratio.rstrip().endswith("failed: direct: 2 failed requests under load")


def test_cpu_per_request_is_summarised_per_path_and_group_and_printed() -> None:
    def spent(synapse: float, nginx: float) -> Dict[str, float]:
        return {"synapse": synapse, "nginx": nginx, "engine log path": 30.0, "journald": 10.0, "wrk": 20.0, "rest": 5.0}

    data = {"runs": [], "proxy": {"connections": 16, "seconds": 10, "rounds": {
        "direct": [dict(wrk(2000, 4.0, 8.0), cpu_us_per_request=spent(400.0, 0.0)),
                   dict(wrk(2100, 4.0, 8.0), cpu_us_per_request=spent(420.0, 0.0))],
        "proxy": [dict(wrk(1800, 4.5, 9.0), cpu_us_per_request=spent(450.0, 70.0)),
                  dict(wrk(1700, 4.6, 9.5), cpu_us_per_request=spent(470.0, 90.0))]}}}
    summary = engine_summary(data)
    assert summary["proxy"]["direct"]["cpu_us_per_request"]["synapse"]["median"] == 410.0
    assert summary["proxy"]["proxy"]["cpu_us_per_request"]["nginx"]["samples"] == [70.0, 90.0]
    assert "cpu_us_per_request" not in engine_summary(DATA)["proxy"]["direct"]
    lines = _rendered_docker(summary)
    nginx = next(line for line in lines if "CPU µs per request, proxy: nginx" in line)
    assert "80 (70–90)" in nginx
    synapse = next(line for line in lines if "CPU µs per request, direct: synapse" in line)
    assert "410 (400–420)" in synapse
