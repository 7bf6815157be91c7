# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From the raw records of every run to median/min/max per figure, and the printed table."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from . import cpu
from .figures import GOALS
from .stats import render_table, summarize

Summary = Dict[str, Any]

# (measurement, figure, how it is shown): the rows of the table, in this order.
ROWS: Sequence[Tuple[str, str, str]] = (
    ("fresh_converge", "seconds", "1. fresh converge: wall s (goal ≤ %g)" % GOALS["fresh_converge_seconds"]),
    ("fresh_converge", "tasks", "   tasks run"),
    ("fresh_converge", "changed", "   tasks changed"),
    ("no_change_converge", "seconds", "2. no-change converge: wall s"),
    ("floor", "seconds", "   floor (facts + 1 ping per service): wall s"),
    ("no_change_converge", "to_floor", "   no-change / floor, same run (goal ≤ %g)" % GOALS["no_change_to_floor"]),
    ("no_change_converge", "tasks", "   tasks run (goal ≤ %g)" % GOALS["no_change_tasks"]),
    ("no_change_converge", "changed", "   tasks changed (must be 0)"),
    ("no_change_converge", "restarted", "   services restarted (must be 0)"),
    ("one_setting_change", "seconds", "3. one setting changed: wall s"),
    ("one_setting_change", "restarted", "   services restarted (must include Synapse)"),
    ("one_setting_change", "restarted_beyond", "   restarted beyond the changed service"),
    ("stack_restart", "seconds", "4. stack restart: playbook wall s"),
    ("stack_restart", "all_healthy_after", "   all healthy after s"),
    ("stack_restart", "summed_downtime",
     "   summed downtime s (goal ≤ %g)" % GOALS["stack_restart_summed_downtime_seconds"]),
    ("reboot", "ssh_after", "   reboot: SSH back after s"),
    ("reboot", "all_healthy_after", "   reboot: all healthy after s"),
    ("reboot", "summed_downtime", "   reboot: summed downtime s"),
    ("unit_exposure", "worst", "8. systemd-analyze security exposure, worst unit (0 best, 10 worst)"),
    ("unit_exposure", "best", "   best unit"),
)
TRANSPORTS = ("defaults", "recommended", "mitogen")


def _values(runs: List[Dict[str, Any]], measurement: str, figure: str) -> List[Any]:
    return [run[measurement][figure] for run in runs]


def _converge_like(runs: List[Dict[str, Any]], measurement: str) -> Summary:
    summary: Summary = {}
    for figure in ("seconds", "tasks", "changed", "skipped"):
        summary[figure] = summarize(_values(runs, measurement, figure))
    restarts = _values(runs, measurement, "restarted")
    summary["restarted_count"] = summarize([len(units) for units in restarts])
    # Which services: the union over the runs (the same set each time, normally).
    summary["restarted"] = sorted({unit for units in restarts for unit in units})
    return summary


def _floor_and_ratio(runs: List[Dict[str, Any]], summary: Summary) -> None:
    """The floor's own figures, and the no-change converge in floors (per run, then median)."""
    summary["floor"] = {figure: summarize(_values(runs, "floor", figure)) for figure in ("seconds", "tasks")}
    summary["floor"]["module_calls"] = runs[0]["floor"]["module_calls"]
    summary["no_change_converge"]["to_floor"] = summarize(_values(runs, "no_change_converge", "to_floor"))


def _restarted_beyond(runs: List[Dict[str, Any]], summary: Summary) -> None:
    """Services a one-setting change restarted although the setting is not theirs."""
    beyond = _values(runs, "one_setting_change", "restarted_beyond")
    block = summary["one_setting_change"]
    block["expected_restarts"] = runs[0]["one_setting_change"]["expected_restarts"]
    block["restarted_beyond"] = sorted({unit for units in beyond for unit in units})
    block["restarted_beyond_count"] = summarize([len(units) for units in beyond])


def _transport(runs: List[Dict[str, Any]]) -> Summary:
    summary: Summary = {}
    for name in TRANSPORTS:
        records = [run["transport"][name] for run in runs if name in run["transport"]]
        timed = [record for record in records if "seconds" in record]
        if timed:
            summary[name] = {"seconds": summarize([record["seconds"] for record in timed]),
                             "tasks": summarize([record["tasks"] for record in timed])}
        failed = [record["error"] for record in records if "error" in record]
        if failed:
            summary.setdefault(name, {})["error"] = failed[0]
    return summary


def _proxy(proxy: Dict[str, Any]) -> Summary:
    summary: Summary = {"connections": proxy["connections"], "seconds": proxy["seconds"]}
    for path, rounds in proxy["rounds"].items():
        summary[path] = {figure: summarize([record[figure] for record in rounds])
                         for figure in ("requests_per_second", "p50_ms", "p99_ms")}
        spent = [record["cpu_us_per_request"] for record in rounds if "cpu_us_per_request" in record]
        if spent:
            summary[path]["cpu_us_per_request"] = {
                group: summarize([record[group] for record in spent]) for group in cpu.GROUP_ORDER}
    waits = [record["time_wait_after"] for record in proxy["rounds"]["proxy"] if "time_wait_after" in record]
    if waits:
        summary["proxy"]["time_wait_after"] = {side: summarize([wait[side] for wait in waits])
                                               for side in ("upstreams", "clients")}
    summary["ratio_proxy_to_direct"] = {
        figure: summarize(paired_ratios(proxy["rounds"]["proxy"], proxy["rounds"]["direct"], figure))
        for figure in ("requests_per_second", "p50_ms", "p99_ms")}
    return summary


def paired_ratios(proxy: List[Dict[str, Any]], direct: List[Dict[str, Any]], figure: str) -> List[float]:
    """proxy ÷ direct of each round, from the two measurements of that round.

    The figure is the median of these, not the ratio of the two paths' medians: the
    machine's speed drifts between rounds by more than the proxy costs, and a round's two
    measurements, taken back to back, share most of that drift.
    """
    if len(proxy) != len(direct) or not proxy:
        raise ValueError("the proxy has %d rounds and the direct path %d: no pairs" % (len(proxy), len(direct)))
    return [p[figure] / d[figure] for p, d in zip(proxy, direct)]


def engine_summary(data: Dict[str, Any]) -> Summary:
    """median/min/max over the runs of one engine (complete runs only)."""
    runs = [run for run in data.get("runs", []) if "reboot" in run]
    summary: Summary = {"runs": len(runs)}
    if runs:
        for measurement in ("fresh_converge", "no_change_converge", "one_setting_change"):
            summary[measurement] = _converge_like(runs, measurement)
        _floor_and_ratio(runs, summary)
        _restarted_beyond(runs, summary)
        for measurement in ("stack_restart", "reboot"):
            figures = [figure for figure in ("seconds", "ssh_after", "all_healthy_after", "summed_downtime")
                       if figure in runs[0][measurement]]
            summary[measurement] = {figure: summarize(_values(runs, measurement, figure)) for figure in figures}
        summary["transport"] = _transport(runs)
        if all("unit_exposure" in run for run in runs):
            summary["unit_exposure"] = {figure: summarize(_values(runs, "unit_exposure", figure))
                                        for figure in ("worst", "best")}
    if data.get("proxy"):
        summary["proxy"] = _proxy(data["proxy"])
    return summary


def _row_value(summary: Summary, measurement: str, figure: str) -> Any:
    block = summary.get(measurement)
    if not block:
        return "-"
    if figure == "restarted" and measurement == "no_change_converge":
        return block["restarted_count"]
    return block[figure]


def mode_summary(data: Dict[str, Any]) -> Summary:
    """One run of an engine mode (benchlib/modes.py): its converges and proxy figures."""
    summary: Summary = {}
    for measurement in ("fresh_converge", "no_change_converge"):
        if measurement in data:
            summary[measurement] = {figure: summarize([data[measurement][figure]])
                                    for figure in ("seconds", "tasks", "changed")}
    if data.get("proxy", {}).get("error"):
        summary["proxy_error"] = data["proxy"]["error"]
    elif data.get("proxy"):
        summary["proxy"] = _proxy(data["proxy"])
    return summary


def render_modes(summaries: Dict[str, Summary]) -> str:
    """Every engine mode of the run side by side: converges and the proxy overhead."""
    header = ["mode"] + list(summaries)
    rows: List[List[Any]] = []
    for measurement, figure, label in (("fresh_converge", "seconds", "fresh converge: wall s"),
                                       ("no_change_converge", "seconds", "no-change converge: wall s"),
                                       ("no_change_converge", "tasks", "   tasks run"),
                                       ("no_change_converge", "changed", "   tasks changed (must be 0)")):
        rows.append([label] + [summaries[name].get(measurement, {}).get(figure, "-") for name in summaries])
    for figure, label in (("requests_per_second", "req/s"), ("p99_ms", "p99")):
        rows.append(["proxy/direct %s" % label]
                    + [summaries[name]["proxy"]["ratio_proxy_to_direct"][figure] if "proxy" in summaries[name]
                       else "failed: %s" % summaries[name]["proxy_error"] if "proxy_error" in summaries[name] else "-"
                       for name in summaries])
    return render_table(rows, header)


def render(result: Dict[str, Any]) -> str:
    summaries: Dict[str, Summary] = result["summary"]
    engines = list(summaries)
    header = ["figure (median, min–max)"] + ["%s (%d runs)" % (name, summaries[name]["runs"]) for name in engines]
    rows: List[List[Any]] = []
    for measurement, figure, label in ROWS:
        rows.append([label] + [_row_value(summaries[name], measurement, figure) for name in engines])
    for name in TRANSPORTS:
        cells = []
        for engine in engines:
            block = summaries[engine].get("transport", {}).get(name, {})
            cells.append(block.get("seconds", "failed: see JSON" if "error" in block else "-"))
        rows.append(["7. no-change, %s ansible.cfg: wall s" % name if name != "mitogen"
                     else "7. no-change, recommended + mitogen: wall s"] + cells)
    for path in ("direct", "proxy"):
        for figure, label in (("requests_per_second", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms")):
            rows.append(["5. %s %s" % ("Synapse direct" if path == "direct" else "via nginx_proxy TLS", label)]
                        + [summaries[engine]["proxy"][path][figure] if "proxy" in summaries[engine] else "-"
                           for engine in engines])
    for figure, label in (("requests_per_second", "req/s"), ("p50_ms", "p50"), ("p99_ms", "p99")):
        rows.append(["   ratio proxy/direct %s" % label]
                    + [summaries[engine]["proxy"]["ratio_proxy_to_direct"][figure] if "proxy" in summaries[engine]
                       else "-" for engine in engines])
    for path in ("direct", "proxy"):
        for group in cpu.GROUP_ORDER:
            rows.append(["   CPU µs per request, %s: %s" % (path, group)]
                        + [summaries[engine].get("proxy", {}).get(path, {}).get("cpu_us_per_request", {}).get(group, "-")
                           for engine in engines])
    for side, label in (("upstreams", "towards upstreams"), ("clients", "from clients")):
        rows.append(["   proxy's TIME_WAIT sockets after a round, %s" % label]
                    + [summaries[engine].get("proxy", {}).get("proxy", {}).get("time_wait_after", {}).get(side, "-")
                       for engine in engines])
    core = result["core"]
    lines = [render_table(rows, header), "",
             "6. pure Python, %d-service stack: topology %s ms, topology + argv + units %s ms (median, min–max)"
             % (core["services"], _range(summarize(core["topology_ms"])), _range(summarize(core["total_ms"]))),
             "machine: %(cpu)s, %(cores)s cores, %(memory_gib)s GiB, kernel %(kernel)s, load at start %(load_average_at_start)s"
             % result["machine"],
             "controller: " + ", ".join("%s %s" % item for item in sorted(result["versions"].items()))]
    for engine in engines:
        versions = result["engines"][engine].get("versions", {})
        lines.append("%s target: %s" % (engine, ", ".join("%s: %s" % item for item in sorted(versions.items()))))
    if result.get("modes"):
        per_mode = {name: summaries[name] for name in engines}
        per_mode.update(result.get("mode_summary", {}))
        lines += ["", "Engine modes side by side (the rootful engines' medians; one run each for the others):",
                  render_modes(per_mode)]
    if result.get("failure"):
        lines.append("FAILED: " + result["failure"])
    return "\n".join(lines)


def _range(summary: Summary) -> str:
    return "%.1f (%.1f–%.1f)" % (summary["median"], summary["min"], summary["max"])
