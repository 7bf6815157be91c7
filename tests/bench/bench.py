# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of hearth.matrix on the test bed: deploy, re-run, restart, reboot, proxy, core.

    scripts/bench [--engine docker,podman] [--runs 3] [--proxy-seconds 5] [--proxy-rounds 8]
    scripts/bench --runs 0          # only the proxy figure (5.)
    scripts/bench --modes podman_rootless,docker_rootless,podman_quadlet   # and the other engine modes


Every run starts a fresh bed target (images already loaded, as on a server that pulled
them) with the full stack (every component on) and measures, in order: a fresh converge, a
no-change converge, a one-setting change, the no-change converge under three transport
settings, a whole-stack restart and a reboot. Beside the no-change converge, in the same
run, it times a floor (tests/bench/floor.yml: the same facts and one trivial module call per
service) and reports the converge in floors. The proxy overhead (wrk) is measured once per
engine, on the last run's target after its other figures (with `--runs 0`, on a target of its
own), in rounds that measure both paths back to back, alternating which goes first; its
ratios are the median of each round's own ratio. The pure Python cost is measured once.
With --modes, each other engine mode gets a fresh target (podman_quadlet on Debian 13) with
a fresh and a no-change converge and the proxy overhead, printed side by side with the
rootful engines. Prints a table (median, min–max over the runs)
and writes the same figures, with the machine and versions, to .bench/latest.json.

Timings are never compared with a limit here (the goals are printed beside them);
correctness is: a no-change converge must report changed=0 and restart nothing, changing
synapse_max_upload_size must restart Synapse (any other service it restarts is reported as
"restarted beyond"), every unit must be healthy after a restart, wrk must see no failed
request. A failed check ends the benchmark with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path[:0] = [str(REPO_ROOT / "tests" / "bed"), str(REPO_ROOT / "tests" / "integration"), str(HERE)]

# pylint: disable=wrong-import-position
import bed  # noqa: E402
import core_bench  # noqa: E402
from benchlib.figures import GOALS  # noqa: E402
from benchlib.machine import controller_versions, host_machine  # noqa: E402
from benchlib.measure import one_run, proxy_run, transport_configs  # noqa: E402
from benchlib.modes import MODES, mode_run  # noqa: E402
from benchlib.report import engine_summary, mode_summary, render  # noqa: E402
from benchlib.stack import BenchFailure  # noqa: E402

OUTPUT = REPO_ROOT / ".bench" / "latest.json"


def log(message: str) -> None:
    print("bench: %s" % message, flush=True)


def core_cost(runs: int = 30) -> Dict[str, Any]:
    """6. topology + container argv + unit text of a synthetic 100-service stack (ms)."""
    stack = core_bench.synthetic_stack(100)
    core_bench.render_stack(stack)  # warm-up: imports, regex compilation
    return {"services": 100, "topology_ms": core_bench.measure(lambda: core_bench.compute_topology(stack), runs),
            "total_ms": core_bench.measure(lambda: core_bench.render_stack(stack), runs)}


def bench_engine(engine: str, options: argparse.Namespace, workroot: Path) -> Dict[str, Any]:
    workdir = workroot / engine
    workdir.mkdir()
    configs = transport_configs(workdir)
    runs: List[Dict[str, Any]] = []

    def measure_proxy(stack: Any = None) -> Dict[str, Any]:
        return proxy_run(engine, workdir, options.proxy_connections, options.proxy_seconds,
                         options.proxy_rounds, log, stack)

    for index in range(options.runs):
        # The proxy is measured on the last run's target once that run's figures are taken:
        # a converge there (corporal off) costs less than a target and a fresh converge.
        last = index == options.runs - 1 and options.proxy_rounds
        runs.append(one_run(engine, index, workdir, configs, log, then=measure_proxy if last else None))
    proxy = None
    if runs and "then" in runs[-1]:
        proxy = runs[-1].pop("then")
    elif options.proxy_rounds:
        proxy = measure_proxy()
    return {"runs": runs, "proxy": proxy, "versions": runs[-1]["versions"] if runs else {}}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="docker", help="docker, podman or both: docker,podman")
    parser.add_argument("--runs", type=int, default=3,
                        help="fresh targets per engine (default 3); 0 measures only the proxy (5.)")
    parser.add_argument("--proxy-seconds", type=int, default=5, help="wrk duration per round and path")
    parser.add_argument("--proxy-rounds", type=int, default=8,
                        help="rounds, each measuring both paths (default 8); 0 skips the proxy")
    parser.add_argument("--proxy-connections", type=int, default=16)
    parser.add_argument("--modes", default="",
                        help="also these engine modes (fresh, no-change, proxy): %s" % ",".join(MODES))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    options = parser.parse_args(argv)
    engines = [name for name in options.engine.split(",") if name]
    if not engines or any(name not in bed.ENGINES for name in engines) or options.runs < 0:
        parser.error("--engine takes docker, podman or docker,podman; --runs 0 or more")
    modes = [name for name in options.modes.split(",") if name]
    if any(name not in MODES for name in modes):
        parser.error("--modes takes a comma-separated list of %s" % ", ".join(MODES))
    if options.runs == 0 and not options.proxy_rounds:
        parser.error("--runs 0 and --proxy-rounds 0 leave nothing to measure")

    os.environ.setdefault("HEARTH_BED_OWNER_PID", str(os.getpid()))  # gc() collects a killed run's targets
    bed.gc()
    log("building (or reusing) the local images ...")
    bed.build_images()
    result: Dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "scripts/bench " + " ".join(argv),
        "machine": host_machine(),
        "versions": controller_versions(),
        "core": core_cost(),
        "goals": GOALS,
        "engines": {},
    }
    workroot = Path(tempfile.mkdtemp(prefix="hearth-bench-%s-" % uuid.uuid4().hex[:6]))
    status = 0
    try:
        for engine in engines:
            result["engines"][engine] = bench_engine(engine, options, workroot)
        for mode in modes:
            result.setdefault("modes", {})[mode] = mode_run(mode, workroot, options.proxy_connections,
                                                            options.proxy_seconds, options.proxy_rounds, log)
    except BenchFailure as error:
        log("FAILED check: %s" % error)
        result["failure"] = str(error)
        status = 1
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["summary"] = {engine: engine_summary(data) for engine, data in result["engines"].items()}
    result["mode_summary"] = {mode: mode_summary(data) for mode, data in result.get("modes", {}).items()}
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print()
    print(render(result))
    log("figures written to %s" % options.output)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
