# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ordering proof (issue 2 §3): our units form no ordering cycle with Docker 20.10.0's unit.

Docker 20.10.0 shipped ``docker.service`` with ``After=... multi-user.target``. A naive unit
(``WantedBy=multi-user.target``, ``Requires=``/``After=docker.service``, default
dependencies) then closes a cycle: multi-user.target starts after the unit (implicit, from
WantedBy=), the unit after docker.service, docker.service after multi-user.target. systemd
breaks it by deleting the unit's start job, so the service does not come up at boot.

Each case is written to a temporary unit directory (rendered units, that docker.service,
minimal copies of the system targets, `systemctl enable` symlinks) and checked twice:
by tests/unit/systemd_graph.py, and by `systemd-analyze verify multi-user.target` with
SYSTEMD_UNIT_PATH pointing only at that directory (works offline, PID 1 need not be systemd).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.container import container_spec_from_dict
from ansible_collections.hearth.matrix.plugins.module_utils.topology import COMPONENTS, compute_topology
from ansible_collections.hearth.matrix.plugins.module_utils.unit import HostPaths, UnitSpec, render_unit
from ansible_collections.hearth.matrix.tests.unit.systemd_graph import (
    build_graph,
    describe,
    load_unit_dir,
    parse_unit,
)

# The ordering-relevant lines of systemd 252's targets (Debian 12); dependencies on units
# this fixture does not ship (local-fs.target, sockets.target ...) are left out so that
# `systemd-analyze verify` reports nothing but what the units under test cause.
SYSTEM_TARGETS = {
    "sysinit.target": "[Unit]\nDescription=System Initialization\n",
    "basic.target": "[Unit]\nDescription=Basic System\nRequires=sysinit.target\nAfter=sysinit.target\n",
    "multi-user.target": "[Unit]\nDescription=Multi-User System\nRequires=basic.target\nAfter=basic.target\n",
    "network.target": "[Unit]\nDescription=Network\n",
    "network-online.target": "[Unit]\nDescription=Network is Online\nAfter=network.target\n",
    "shutdown.target": "[Unit]\nDescription=System Shutdown\nDefaultDependencies=no\nRefuseManualStart=yes\n",
}

# docker.service as Docker 20.10.0 shipped it, as far as ordering goes (its Requires= on
# docker.socket/containerd.service is left out: neither unit is part of the fixture).
DOCKER_20_10_0 = """[Unit]
Description=Docker Application Container Engine
After=network-online.target firewalld.service containerd.service multi-user.target
Wants=network-online.target

[Service]
Type=notify
ExecStart={bin}/dockerd -H fd://

[Install]
WantedBy=multi-user.target
"""

# Today's docker.service (Debian's docker.io): no After=multi-user.target. Control case.
DOCKER_CURRENT = DOCKER_20_10_0.replace(" multi-user.target\n", "\n", 1)

NAIVE_UNIT = """[Unit]
Description=naive container unit
Requires=docker.service
After=docker.service

[Service]
ExecStart={bin}/docker start --attach naive

[Install]
WantedBy=multi-user.target
"""

# MDAD's first workaround: no cycle, but also no shutdown ordering.
DEFAULT_DEPENDENCIES_NO_ONLY = NAIVE_UNIT.replace("[Unit]\n", "[Unit]\nDefaultDependencies=no\n", 1)

THREE_SERVICES = {"postgres": True, "synapse": True, "nginx_proxy": True}
ALL_COMPONENTS = {name: True for name in COMPONENTS}


def _fake_binaries(root: Path) -> Path:
    """Executables for the Exec lines: `systemd-analyze verify` checks that they exist."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("docker", "podman", "dockerd", "sh", "python3"):
        path = bin_dir / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


def render_stack(components: Dict[str, bool], engine: str, bin_dir: Path) -> Dict[str, str]:
    """Unit texts for every service of a stack, wired as the topology says."""
    topology = compute_topology({"server_name": "example.org", "components": components})
    paths = HostPaths(engine=str(bin_dir / engine), sh=str(bin_dir / "sh"), python=str(bin_dir / "python3"))
    units = {}
    for index, name in enumerate(topology["start_order"]):
        service = topology["services"][name]
        container = container_spec_from_dict(name, {
            "image": "localhost/hearth/%s:test" % service["component"],
            "user": "991:991",
            "networks": service["networks"],
            "address": "10.89.91.%d" % (138 + index),
            # The host-side readiness probe: its program must survive systemd's parsing.
            "healthcheck": {"command": ["true"], "probe": {"kind": "http", "port": 8008, "path": "/health"}},
        })
        spec = UnitSpec(
            container=container,
            engine=engine,
            paths=paths,
            engine_unit="docker.service" if engine == "docker" else "",
            requires=tuple(service["requires"]),
            wants=tuple(service["wants"]),
            after=tuple(service["after"]),
        )
        units[name + ".service"] = render_unit(spec)
    return units


def write_unit_dir(root: Path, units: Dict[str, str], docker_unit: str = DOCKER_20_10_0) -> Path:
    """System targets + docker.service + units, enabled as `systemctl enable` would."""
    bin_dir = root / "bin"
    unit_dir = root / "units"
    unit_dir.mkdir()
    everything = dict(SYSTEM_TARGETS)
    everything["docker.service"] = docker_unit
    everything.update(units)
    for name, text in everything.items():
        (unit_dir / name).write_text(text.format(bin=bin_dir) if "{bin}" in text else text)
    for name, text in everything.items():
        for target in parse_unit(name, text).values("Install", "WantedBy"):
            wants = unit_dir / (target + ".wants")
            wants.mkdir(exist_ok=True)
            (wants / name).symlink_to(Path("..") / name)
    return unit_dir


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return _fake_binaries(tmp_path)


def _graph(unit_dir: Path):
    # The .wants/ symlinks already encode enablement; [Install] is not applied a second time.
    return build_graph(load_unit_dir(str(unit_dir)), enabled=False)


# --- (a) our own graph checker ----------------------------------------------------------------

@pytest.mark.parametrize("components", [THREE_SERVICES, ALL_COMPONENTS], ids=["3-services", "all-components"])
@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_graph_our_units_have_no_cycle(tmp_path: Path, bin_dir: Path, components: Dict[str, bool], engine: str) -> None:
    units = render_stack(components, engine, bin_dir)
    unit_dir = write_unit_dir(tmp_path, units)
    graph = _graph(unit_dir)
    cycle = graph.find_cycle()
    assert cycle is None, describe(cycle)
    # The setup is the one that bites: enabled in multi-user.target, after docker.service,
    # which itself starts after multi-user.target.
    assert graph.starts_before("multi-user.target", "docker.service")
    for name in units:
        assert name in graph.pulls["multi-user.target"]
        if engine == "docker":
            assert graph.starts_before("docker.service", name)
            assert "docker.service" in graph.pulls[name]
        # Boot ordering DefaultDependencies=no would drop is still there.
        assert graph.starts_before("sysinit.target", name) and graph.starts_before("basic.target", name)
        assert not graph.starts_before(name, "multi-user.target")


def test_graph_topology_order_reaches_systemd(tmp_path: Path, bin_dir: Path) -> None:
    graph = _graph(write_unit_dir(tmp_path, render_stack(ALL_COMPONENTS, "docker", bin_dir)))
    assert graph.starts_before("hearth-postgres.service", "hearth-synapse.service")
    assert graph.starts_before("hearth-mailer.service", "hearth-synapse.service")
    # The gateways wait for no upstream (the fixed addresses are in their /etc/hosts).
    assert not graph.starts_before("hearth-synapse.service", "hearth-corporal.service")
    assert not graph.starts_before("hearth-synapse.service", "hearth-nginx-proxy.service")
    assert not graph.starts_before("hearth-corporal.service", "hearth-nginx-proxy.service")
    synapse = parse_unit("hearth-synapse.service", (tmp_path / "units" / "hearth-synapse.service").read_text())
    assert "hearth-postgres.service" in synapse.values("Unit", "Requires")
    assert "hearth-mailer.service" in synapse.values("Unit", "Wants")
    assert "hearth-mailer.service" not in synapse.values("Unit", "Requires")


def test_graph_naive_unit_has_the_cycle(tmp_path: Path, bin_dir: Path) -> None:
    graph = _graph(write_unit_dir(tmp_path, {"naive.service": NAIVE_UNIT}))
    cycle = graph.find_cycle()
    assert cycle is not None
    assert set(cycle) == {"multi-user.target", "docker.service", "naive.service"}, describe(cycle)


def test_graph_naive_unit_is_fine_with_todays_docker_unit(tmp_path: Path, bin_dir: Path) -> None:
    # Control: the cycle comes from docker.service's After=multi-user.target, nothing else.
    graph = _graph(write_unit_dir(tmp_path, {"naive.service": NAIVE_UNIT}, docker_unit=DOCKER_CURRENT))
    assert graph.find_cycle() is None


def test_graph_and_install_sections_agree(tmp_path: Path, bin_dir: Path) -> None:
    # Applying [Install] directly finds the same cycle as the enablement symlinks.
    units = load_unit_dir(str(write_unit_dir(tmp_path, {"naive.service": NAIVE_UNIT})))
    for unit in units.values():
        unit.extra_pulls.clear()
    assert build_graph(units, enabled=True).find_cycle() is not None
    assert build_graph(units, enabled=False).find_cycle() is None


# --- shutdown ordering ------------------------------------------------------------------------

def test_our_units_keep_clean_shutdown(tmp_path: Path, bin_dir: Path) -> None:
    units = render_stack(THREE_SERVICES, "docker", bin_dir)
    graph = _graph(write_unit_dir(tmp_path, units))
    for name, text in units.items():
        parsed = parse_unit(name, text)
        assert parsed.values("Unit", "DefaultDependencies") == ["no"]
        assert parsed.values("Unit", "Conflicts") == ["shutdown.target"]
        assert "shutdown.target" in parsed.values("Unit", "Before")
        # Stopped when shutdown.target starts, and stopped before it is reached.
        assert "shutdown.target" in graph.conflicts[name]
        assert graph.starts_before(name, "shutdown.target")


def test_default_dependencies_no_alone_drops_shutdown_ordering(tmp_path: Path, bin_dir: Path) -> None:
    graph = _graph(write_unit_dir(tmp_path, {"mdad.service": DEFAULT_DEPENDENCIES_NO_ONLY}))
    assert graph.find_cycle() is None
    assert "shutdown.target" not in graph.conflicts["mdad.service"]
    assert not graph.starts_before("mdad.service", "shutdown.target")


# --- the checker itself -------------------------------------------------------------------------

def test_checker_parsing_rules() -> None:
    unit = parse_unit("x.service", "# c\n[Unit]\nAfter=a.service \\\n  b.service\nAfter=c.service\nWants=d.service\nWants=\n; c\n")
    assert unit.values("Unit", "After") == ["a.service", "b.service", "c.service"]
    assert unit.values("Unit", "Wants") == []
    assert unit.default_dependencies
    with pytest.raises(ValueError):
        parse_unit("bad.service", "[Unit]\nnonsense\n")


def test_checker_before_and_after_are_one_relation() -> None:
    units = {
        "a.service": parse_unit("a.service", "[Unit]\nDefaultDependencies=no\nBefore=b.service\n"),
        "b.service": parse_unit("b.service", "[Unit]\nDefaultDependencies=no\nBefore=a.service\n"),
    }
    cycle = build_graph(units).find_cycle()
    assert cycle is not None and set(cycle) == {"a.service", "b.service"}
    units["b.service"] = parse_unit("b.service", "[Unit]\nDefaultDependencies=no\nAfter=a.service\n")
    assert build_graph(units).find_cycle() is None


def test_checker_target_rule_respects_explicit_before() -> None:
    units = {
        "t.target": parse_unit("t.target", "[Unit]\nWants=s.service\nBefore=s.service\n"),
        "s.service": parse_unit("s.service", "[Unit]\n"),
    }
    graph = build_graph(units)
    assert graph.starts_before("t.target", "s.service")
    assert not graph.starts_before("s.service", "t.target")


# --- (b) systemd-analyze verify ----------------------------------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed; the graph checker tests above still ran"
)


def systemd_analyze_verify(unit_dir: Path, *unit_names: str) -> Tuple[int, List[str]]:
    """Run `systemd-analyze verify` on units from unit_dir only (no host units, no PID 1)."""
    env = dict(os.environ, SYSTEMD_UNIT_PATH=str(unit_dir), SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "--man=no", "verify"] + list(unit_names),
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return result.returncode, (result.stdout + result.stderr).splitlines()


def _cycle_lines(lines: List[str]) -> List[str]:
    return [line for line in lines if "ordering cycle" in line]


@needs_systemd_analyze
def test_systemd_analyze_reports_the_naive_cycle(tmp_path: Path, bin_dir: Path) -> None:
    unit_dir = write_unit_dir(tmp_path, {"naive.service": NAIVE_UNIT})
    _rc, lines = systemd_analyze_verify(unit_dir, "multi-user.target")
    cycle = _cycle_lines(lines)
    assert any("Found ordering cycle" in line for line in cycle), lines
    # Which job systemd deletes to break the cycle varies from run to run (naive.service's or
    # docker.service's start job); that one is deleted, and which units are involved, does not.
    assert any("deleted to break ordering cycle" in line for line in cycle), lines
    involved = " ".join(line for line in lines if "ordering cycle" in line or "Found dependency" in line)
    for unit in ("naive.service", "docker.service", "multi-user.target"):
        assert unit in involved, lines


@needs_systemd_analyze
@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_systemd_analyze_finds_no_cycle_in_our_units(tmp_path: Path, bin_dir: Path, engine: str) -> None:
    units = render_stack(ALL_COMPONENTS, engine, bin_dir)
    unit_dir = write_unit_dir(tmp_path, units)
    rc, lines = systemd_analyze_verify(unit_dir, "multi-user.target", *sorted(units))
    assert _cycle_lines(lines) == [], lines
    # Nothing else to complain about either: syntax, quoting, paths, dependencies.
    assert rc == 0 and lines == [], lines


@needs_systemd_analyze
def test_systemd_analyze_control_with_todays_docker_unit(tmp_path: Path, bin_dir: Path) -> None:
    unit_dir = write_unit_dir(tmp_path, {"naive.service": NAIVE_UNIT}, docker_unit=DOCKER_CURRENT)
    _rc, lines = systemd_analyze_verify(unit_dir, "multi-user.target")
    assert _cycle_lines(lines) == [], lines
