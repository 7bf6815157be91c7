# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The measurements of one run on one fresh target, in the order an operator meets them.

Timings are only recorded. What must hold whatever the timing (a no-change run changes and
restarts nothing, every unit is healthy again after a restart, no request fails under load)
is checked, and a failed check fails the benchmark.
"""

from __future__ import annotations

import atexit
import configparser
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import bed  # tests/bed
from harness import CA_ON_TARGET, REPO_ROOT, STACK_MATRIX_HOSTNAME, LoopbackNames, https_get

from . import cpu
from .figures import exposure, floor_first, restart_sets, round_order, to_floor
from .services import outage, restarted
from .stack import STACK_UNITS, BenchFailure, BenchStack, Converge
from .wrk import WrkResult, run_wrk, time_wait_sockets

RECOMMENDED_CONFIG = REPO_ROOT / "ansible.cfg"
# The one setting changed: Synapse's upload limit (only Synapse's config depends on it),
# so Synapse is the one service that has to restart.
CHANGED_SETTING = "synapse_max_upload_size"
AFFECTED_UNITS = ("hearth-synapse.service",)

Record = Dict[str, Any]
# Target names of this benchmark process: parallel or leftover runs never collide.
BENCH_ID = uuid.uuid4().hex[:6]


def fresh_ssh() -> Dict[str, Optional[str]]:
    """No SSH master left over from the previous run: every timed run opens its own."""
    path = tempfile.mkdtemp(prefix="hearth-bench-cp-")
    atexit.register(shutil.rmtree, path, True)  # the masters' sockets go with this process
    return {"ANSIBLE_SSH_CONTROL_PATH_DIR": path}


def converge_record(result: Converge) -> Record:
    return {"seconds": result.seconds, "tasks": result.tasks, "changed": result.changed,
            "skipped": result.skipped, "restarted": result.restarted}


def check_no_change(result: Converge, what: str) -> None:
    if result.changed or result.restarted:
        raise BenchFailure("%s: a no-change converge reported changed=%d and restarted %s"
                           % (what, result.changed, result.restarted or "nothing"))


def fresh_and_repeat(stack: BenchStack, run_index: int) -> Dict[str, Record]:
    """1. fresh converge, 2. no-change converge beside its floor, 3. one setting changed."""
    records: Dict[str, Record] = {}
    fresh = stack.converge(env=fresh_ssh())
    if fresh.changed == 0:
        raise BenchFailure("the fresh converge changed nothing: was the target not fresh?")
    records["fresh_converge"] = converge_record(fresh)
    records.update(no_change_and_floor(stack, run_index))
    value = "%dM" % (60 + run_index)
    changed = stack.converge({CHANGED_SETTING: value}, env=fresh_ssh())
    stack.extra[CHANGED_SETTING] = value  # later converges keep it: they must change nothing
    beyond, missing = restart_sets(changed.restarted, AFFECTED_UNITS)
    if missing:
        raise BenchFailure("changing %s did not restart %s: restarted %s"
                           % (CHANGED_SETTING, ", ".join(missing), changed.restarted or "nothing"))
    # More than the affected services restarting is shown (restarted_beyond), not failed on.
    records["one_setting_change"] = dict(converge_record(changed), expected_restarts=list(AFFECTED_UNITS),
                                         restarted_beyond=beyond)
    return records


def no_change_and_floor(stack: BenchStack, run_index: int) -> Dict[str, Record]:
    """2. the no-change converge and the floor playbook, back to back on the same target.

    Each with its own SSH master; which one goes first alternates between runs, so a warm
    or cold first run does not always favour the same side of the ratio.
    """
    first = floor_first(run_index)
    runners: Dict[str, Callable[..., Converge]] = {"floor": stack.floor, "converge": stack.converge}
    order = ("floor", "converge") if first else ("converge", "floor")
    results = {name: runners[name](env=fresh_ssh()) for name in order}
    check_no_change(results["converge"], "no-change converge")
    if results["floor"].changed:
        raise BenchFailure("the floor playbook changed something: it must only ping")
    converge = dict(converge_record(results["converge"]),
                    to_floor=to_floor(results["converge"].seconds, results["floor"].seconds))
    floor = dict(converge_record(results["floor"]), module_calls=len(STACK_UNITS), ran_first=first)
    del floor["restarted"]  # the floor touches no unit
    return {"no_change_converge": converge, "floor": floor}


def transport_configs(workdir: Path) -> Dict[str, Path]:
    """ansible defaults (an empty config), our ansible.cfg, and ours plus mitogen."""
    defaults = workdir / "defaults.cfg"
    defaults.write_text("# nothing set: ansible's defaults\n")
    configs = {"defaults": defaults, "recommended": RECOMMENDED_CONFIG}
    try:
        import ansible_mitogen  # pylint: disable=import-outside-toplevel  # optional
    except ImportError:
        return configs
    parser = configparser.ConfigParser()
    parser.read(RECOMMENDED_CONFIG)
    parser.set("defaults", "strategy_plugins", str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"))
    parser.set("defaults", "strategy", "mitogen_linear")
    mitogen = workdir / "mitogen.cfg"
    with mitogen.open("w") as handle:
        parser.write(handle)
    configs["mitogen"] = mitogen
    return configs


def transport(stack: BenchStack, configs: Dict[str, Path], run_index: int) -> Dict[str, Record]:
    """7. the same no-change converge under each transport setting, in a rotating order."""
    names = ["defaults", "recommended", "mitogen"]
    names = names[run_index % 3:] + names[:run_index % 3]
    records: Dict[str, Record] = {}
    for name in names:
        if name not in configs:
            records[name] = {"error": "mitogen is not installed (pip install -r requirements-dev.txt)"}
            continue
        env = dict(fresh_ssh(), ANSIBLE_CONFIG=str(configs[name]))
        try:
            result = stack.converge(env=env)
        except BenchFailure as error:
            if name != "mitogen":
                raise
            records[name] = {"error": str(error)[-2000:]}  # optional: report, do not fail
            continue
        check_no_change(result, "no-change converge with %s transport settings" % name)
        records[name] = converge_record(result)
    return records


def client_api_answers(stack: BenchStack, ca_file: Path) -> None:
    url = "https://%s:%d/_matrix/client/versions" % (STACK_MATRIX_HOSTNAME, stack.target.ports["443"])
    with LoopbackNames([STACK_MATRIX_HOSTNAME]):
        status, _headers, _body = https_get(url, ca_file)
    if status != 200:
        raise BenchFailure("client API through the proxy answered %d after the restart" % status)


def restarts(stack: BenchStack, ca_file: Path) -> Dict[str, Record]:
    """4. whole-stack restart (playbooks/restart.yml) and a reboot of the target."""
    records: Dict[str, Record] = {}
    before = stack.units()
    started = time.monotonic()
    run = stack.playbook("restart.yml", env=fresh_ssh())
    after = stack.wait_all_active()
    if restarted(before, after) != sorted(STACK_UNITS):
        raise BenchFailure("restart.yml did not restart every unit: %s" % restarted(before, after))
    down = outage(after, STACK_UNITS, since=started)
    client_api_answers(stack, ca_file)
    records["stack_restart"] = {"seconds": run.seconds, "all_healthy_after": down.all_healthy_after,
                                "summed_downtime": down.summed, "downtime": down.per_unit}

    started = time.monotonic()
    ssh_after = bed.restart(stack.target)
    after = stack.wait_all_active()
    # The old boot's record of each stop is gone with it: count from the reboot command.
    down = outage(after, STACK_UNITS, since=started, down_from=started)
    client_api_answers(stack, ca_file)
    records["reboot"] = {"ssh_after": ssh_after, "all_healthy_after": down.all_healthy_after,
                         "summed_downtime": down.summed, "downtime": down.per_unit}
    return records


def wrk_record(result: WrkResult) -> Record:
    return {"requests_per_second": result.requests_per_second, "p50_ms": result.latency_ms["50"],
            "p99_ms": result.latency_ms["99"], "requests": result.requests}


def proxy_overhead(stack: BenchStack, connections: int, seconds: int, rounds: int) -> Dict[str, List[Record]]:
    """5. GET /_matrix/client/versions straight to Synapse's container vs through the proxy.

    Both from the host to the target's address, through the same port publishing of the
    engine; the only difference is nginx_proxy with TLS. Synapse is published on the target's
    own address for this (a converge that changes only that). Each round measures both,
    in alternating order (round_order); round i of one path pairs with round i of the other.
    """
    address = stack.target.bridge_ip
    ports = [{"host_address": address, "host_port": 8008, "container_port": 8008}]
    stack.extra["synapse_container_ports"] = ports
    stack.converge(env=fresh_ssh())
    urls = {"direct": "http://%s:8008/_matrix/client/versions" % address,
            "proxy": "https://%s:443/_matrix/client/versions" % address}
    for url in urls.values():  # warm-up: TLS sessions, Synapse's first requests
        run_wrk(url, STACK_MATRIX_HOSTNAME, connections, 2)
    records: Dict[str, List[Record]] = {"direct": [], "proxy": []}
    for index in range(rounds):
        for name in round_order(index):
            url = urls[name]
            before = cpu.snapshot()
            result = run_wrk(url, STACK_MATRIX_HOSTNAME, connections, seconds)
            after = cpu.snapshot()
            if result.errors:
                raise BenchFailure("%s: %d failed requests under load" % (name, result.errors))
            records[name].append(wrk_record(result))
            records[name][-1]["cpu_us_per_request"] = cpu.microseconds_per_request(before, after, result.requests)
            if name == "proxy":
                records[name][-1]["time_wait_after"] = proxy_time_wait(stack)
    return records


def proxy_time_wait(stack: BenchStack) -> Dict[str, int]:
    """TIME_WAIT sockets in the proxy's network namespace (its /proc/net/tcp) right now,
    towards upstreams and from clients."""
    proc = bed.exec_in_target(stack.target, stack.as_user([stack.engine, "exec", "hearth-nginx-proxy", "cat", "/proc/net/tcp"]))
    return time_wait_sockets(proc.stdout.decode(errors="replace"))


def unit_exposure(stack: BenchStack) -> Dict[str, Any]:
    """`systemd-analyze security` of every unit of the stack: how much the unit's own
    processes (the engine client or runtime, not the container) may do."""
    units: Dict[str, float] = {}
    for unit in STACK_UNITS:
        proc = bed.exec_in_target(stack.target, ["systemd-analyze", "security", "--no-pager", unit], check=False)
        value = exposure(proc.stdout.decode(errors="replace"))
        if value is None:
            raise BenchFailure("systemd-analyze security %s printed no exposure: %s"
                               % (unit, (proc.stdout + proc.stderr).decode(errors="replace")[-300:]))
        units[unit] = value
    return {"worst": max(units.values()), "best": min(units.values()), "units": units}


def one_run(engine: str, run_index: int, workdir: Path, configs: Dict[str, Path],
            log: Callable[[str], None], then: Optional[Callable[[BenchStack], Any]] = None) -> Dict[str, Record]:
    """A fresh target; measurements 1-4 and 7 on it, then ``then(stack)`` (its result under
    "then"). Always removes the target."""
    target = bed.up("bench-%s-%s-%d" % (BENCH_ID, engine, run_index), engine, workdir / ("run%d" % run_index))
    stack = BenchStack(target=target, engine=engine)
    try:
        log("%s run %d: target %s up in %.0f s" % (engine, run_index + 1, target.name, sum(target.timings.values())))
        records = fresh_and_repeat(stack, run_index)
        records["unit_exposure"] = unit_exposure(stack)
        log("%s run %d: converges fresh %.1f s, no-change %.1f s (%d tasks, %.2f x the floor of %.1f s),"
            " one setting %.1f s restarting %s"
            % (engine, run_index + 1, records["fresh_converge"]["seconds"],
               records["no_change_converge"]["seconds"], records["no_change_converge"]["tasks"],
               records["no_change_converge"]["to_floor"], records["floor"]["seconds"],
               records["one_setting_change"]["seconds"], ", ".join(records["one_setting_change"]["restarted"])))
        records["transport"] = transport(stack, configs, run_index)
        log("%s run %d: transport %s" % (engine, run_index + 1, {
            name: round(record["seconds"], 1) if "seconds" in record else "error"
            for name, record in records["transport"].items()}))
        ca_file = workdir / ("ca-%d.crt" % run_index)
        ca_file.write_text(stack.read(CA_ON_TARGET))
        records.update(restarts(stack, ca_file))
        log("%s run %d: restart healthy after %.1f s, reboot healthy after %.1f s"
            % (engine, run_index + 1, records["stack_restart"]["all_healthy_after"],
               records["reboot"]["all_healthy_after"]))
        records["versions"] = target_versions(stack)
        if then is not None:
            records["then"] = then(stack)
        return records
    finally:
        bed.down(target)


def proxy_run(engine: str, workdir: Path, connections: int, seconds: int, rounds: int,
              log: Callable[[str], None], stack: Optional[BenchStack] = None) -> Dict[str, Any]:
    """Measurement 5: on ``stack`` (a run's target, once its own measurements are done), or
    on a fresh target of its own when there is none (``--runs 0``).

    With corporal off: the client API then goes from nginx straight to Synapse. With it on,
    requests would pass the gateway stand-in of the test bed (a small single-threaded Python
    proxy, not corporal), and its cost is nothing a user's server has.
    """
    corporal_off = {"hearth_corporal_enabled": False}
    target = None
    if stack is None:
        target = bed.up("bench-%s-%s-proxy" % (BENCH_ID, engine), engine, workdir / "proxy")
        stack = BenchStack(target=target, engine=engine, extra=corporal_off)
    else:
        stack = BenchStack(target=stack.target, engine=engine, extra=dict(stack.extra, **corporal_off))
    try:
        stack.converge(env=fresh_ssh())
        records = proxy_overhead(stack, connections, seconds, rounds)
        log("%s proxy: %s" % (engine, {name: [round(r["requests_per_second"]) for r in rows]
                                       for name, rows in records.items()}))
        return {"connections": connections, "seconds": seconds, "corporal": "off", "rounds": records}
    finally:
        if target is not None:
            bed.down(target)


def target_versions(stack: BenchStack) -> Dict[str, str]:
    engine = stack.engine

    def first_line(argv: List[str]) -> str:
        proc = bed.exec_in_target(stack.target, argv, check=False)
        lines = proc.stdout.decode(errors="replace").strip().splitlines()
        return lines[0].strip() if proc.returncode == 0 and lines else "unavailable"

    return {
        "engine": first_line([engine, "--version"]),
        "systemd": first_line(["systemctl", "--version"]),
        "synapse": first_line([engine, "exec", "hearth-synapse", "python3", "-c",
                               "import synapse; print(synapse.__version__)"]),
        "postgres": first_line([engine, "exec", "hearth-postgres", "postgres", "--version"]),
        "nginx": first_line([engine, "exec", "hearth-nginx-proxy", "sh", "-c", "nginx -v 2>&1"]),
    }
