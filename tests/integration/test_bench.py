# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark command keeps working: one short run of tests/bench/bench.py on the bed.

Nothing here looks at a timing. What is checked is what the benchmark itself must hold
(it exits non-zero when a no-change converge changes or restarts anything, a unit is not
healthy after a restart, or a request fails under load) and that it reports every figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

from conftest import ENGINES
from harness import REPO_ROOT

BENCH = REPO_ROOT / "tests" / "bench" / "bench.py"


def test_a_short_benchmark_run_reports_every_figure(tmp_path: Path, bed_images: Dict[str, Any]) -> None:
    engine = ENGINES[0]
    output = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--engine", engine, "--runs", "1", "--proxy-rounds", "1",
         "--proxy-seconds", "2", "--output", str(output)],
        cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]
    result = json.loads(output.read_text())
    assert "failure" not in result
    summary = result["summary"][engine]
    assert summary["runs"] == 1
    assert summary["fresh_converge"]["changed"]["min"] > 0
    assert summary["no_change_converge"]["changed"]["max"] == 0
    assert summary["no_change_converge"]["restarted"] == []
    # The floor is measured beside the no-change converge: facts plus one call per service.
    assert summary["floor"]["seconds"]["n"] == 1 and summary["floor"]["seconds"]["min"] > 0
    assert summary["floor"]["module_calls"] == 7
    assert summary["floor"]["tasks"]["max"] == 2  # Gathering Facts + the looped ping
    assert summary["no_change_converge"]["to_floor"]["n"] == 1
    assert summary["no_change_converge"]["tasks"]["min"] > 0
    run = result["engines"][engine]["runs"][0]
    assert run["no_change_converge"]["to_floor"] == round(
        run["no_change_converge"]["seconds"] / run["floor"]["seconds"], 3)
    # Synapse restarts; whatever else restarts is named, and only that.
    change = summary["one_setting_change"]
    assert "hearth-synapse.service" in change["restarted"]
    assert change["restarted_beyond"] == sorted(set(change["restarted"]) - {"hearth-synapse.service"})
    assert change["restarted_beyond_count"]["samples"] == [len(change["restarted_beyond"])]
    for measurement in ("stack_restart", "reboot"):
        assert summary[measurement]["all_healthy_after"]["n"] == 1
        assert summary[measurement]["summed_downtime"]["min"] > 0
    for transport in ("defaults", "recommended"):
        assert summary["transport"][transport]["seconds"]["n"] == 1, summary["transport"]
    # mitogen is optional: timed, or its failure reported (never silently missing).
    assert {"seconds", "error"} & set(summary["transport"]["mitogen"]), summary["transport"]
    for path in ("direct", "proxy"):
        assert summary["proxy"][path]["requests_per_second"]["min"] > 0
    exposure = summary["unit_exposure"]["worst"]
    assert exposure["n"] == 1 and 0 <= exposure["max"] <= 10
    if engine == "docker":
        # The docker units run only a client of dockerd, sandboxed (unit.py).
        assert exposure["max"] <= 2.0, run["unit_exposure"]
    assert result["core"]["services"] == 100 and len(result["core"]["total_ms"]) == 30
    assert result["engines"][engine]["versions"]["synapse"][0].isdigit()
    # The printed table carries the same figures.
    assert "no-change converge" in proc.stdout and "ratio proxy/direct" in proc.stdout
    assert "no-change / floor" in proc.stdout and "restarted beyond the changed service" in proc.stdout
    assert result["goals"]["no_change_to_floor"] == 2.0
