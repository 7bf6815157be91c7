# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the core: topology + container argv + unit text for a 100-service stack.

Issue 2's bar: under 100 ms for the whole stack. This script prints the figures; it does
not assert on time (machines differ). Usage:

    python tests/bench/core_bench.py [--runs N] [--services N]
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO_ROOT = Path(__file__).resolve().parents[2]


def _make_collection_importable() -> None:
    """The repository root is the collection: expose it as ansible_collections.hearth.matrix."""
    if REPO_ROOT.parent.name == "hearth" and REPO_ROOT.parents[1].name == "ansible_collections":
        sys.path.insert(0, str(REPO_ROOT.parents[2]))
        return
    root = tempfile.mkdtemp(prefix="hearth-matrix-bench-")
    os.makedirs(os.path.join(root, "ansible_collections", "hearth"))
    os.symlink(str(REPO_ROOT), os.path.join(root, "ansible_collections", "hearth", "matrix"))
    atexit.register(shutil.rmtree, root, True)  # rmtree does not follow the symlink
    sys.path.insert(0, root)


_make_collection_importable()

# pylint: disable=wrong-import-position
from ansible_collections.hearth.matrix.plugins.module_utils.container import (  # noqa: E402
    container_spec_from_dict,
    create_argv,
)
from ansible_collections.hearth.matrix.plugins.module_utils.topology import COMPONENTS, compute_topology  # noqa: E402
from ansible_collections.hearth.matrix.plugins.module_utils.unit import HostPaths, UnitSpec, render_unit  # noqa: E402

PATHS = HostPaths(engine="/usr/bin/docker", sh="/bin/sh")


def synthetic_stack(services: int, seed: int = 100) -> Dict[str, Any]:
    """All components plus extra services with random (acyclic) dependencies, `services` in all."""
    rng = random.Random(seed)
    extra: List[Dict[str, Any]] = []
    for index in range(services - len(COMPONENTS)):
        earlier = ["extra-%d" % j for j in range(index)]
        extra.append({
            "name": "extra-%d" % index,
            "requires": ["hearth-synapse"] + rng.sample(earlier, k=min(len(earlier), rng.randint(0, 2))),
            "wants": rng.sample(earlier, k=min(len(earlier), rng.randint(0, 2))),
        })
    rng.shuffle(extra)
    return {
        "server_name": "example.org",
        "components": {name: True for name in COMPONENTS},
        "mailer": {"sender": "matrix@example.org"},
        "extra_services": extra,
    }


def container_for(name: str, index: int) -> Dict[str, Any]:
    """A realistic spec: mounts, tmpfs, a published port, env, labels, health check, limits."""
    return {
        "image": "localhost/hearth/%s:test" % name,
        "user": "991:991",
        "networks": ["hearth", "hearth-extra"],
        "tmpfs": ["/tmp", {"path": "/run", "size": "16m"}],
        "mounts": [
            {"source": "/opt/hearth-matrix/%s/config" % name, "target": "/config"},
            {"source": "/opt/hearth-matrix/%s/data" % name, "target": "/data", "read_only": False},
        ],
        "ports": [{"host_address": "127.0.0.1", "host_port": 20000 + index, "container_port": 8080}],
        "env_file": "/opt/hearth-matrix/%s/env" % name,
        "env": {"SERVICE": name, "HOME": "/data"},
        "labels": {"org.hearth.service": name},
        "healthcheck": {"command": ["sh", "-c", "test -e /data/ready && echo $HOSTNAME"]},
        "memory": "256m",
        "pids_limit": 128,
        "command": ["--config", "/config/%s.yaml" % name],
    }


def render_stack(stack: Dict[str, Any]) -> int:
    """One full pass; returns the number of bytes rendered (so nothing is optimised away)."""
    topology = compute_topology(stack)
    size = 0
    for index, name in enumerate(topology["start_order"]):
        service = topology["services"][name]
        spec = container_spec_from_dict(name, container_for(name, index))
        argv = create_argv(spec, "docker", PATHS.engine)
        unit = UnitSpec(
            container=spec, engine="docker", paths=PATHS, engine_unit="docker.service",
            requires=tuple(service["requires"]), wants=tuple(service["wants"]), after=tuple(service["after"]),
        )
        size += len(render_unit(unit)) + len(argv)
    return size


def measure(function: Callable[[], Any], runs: int) -> List[float]:
    timings = []
    for _run in range(runs):
        start = time.perf_counter()
        function()
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--services", type=int, default=100)
    options = parser.parse_args()

    stack = synthetic_stack(options.services)
    count = len(compute_topology(stack)["services"])
    render_stack(stack)  # warm-up: imports, regex compilation
    topology_ms = measure(lambda: compute_topology(stack), options.runs)
    total_ms = measure(lambda: render_stack(stack), options.runs)
    print("core_bench: %d services, %d runs, Python %s" % (count, options.runs, sys.version.split()[0]))
    print("core_bench: topology only           median %.1f ms  min %.1f ms" % (statistics.median(topology_ms), min(topology_ms)))
    print("core_bench: topology + argv + units median %.1f ms  min %.1f ms  max %.1f ms  (goal < 100 ms)"
          % (statistics.median(total_ms), min(total_ms), max(total_ms)))


if __name__ == "__main__":
    main()
