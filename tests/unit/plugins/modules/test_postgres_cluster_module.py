# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgres_cluster module: its steps, check mode, diff and one-line failures (the engine
mocked; the steps' work is tested in module_utils/test_postgres_cluster.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple
from unittest import mock

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import postgres_cluster as module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

IMAGE = "localhost/hearth/postgres17:test"


def _run(args: Dict[str, Any], env: List[str], **kwargs: Any) -> Tuple[Dict[str, Any], List[Any]]:
    calls: List[Any] = []

    def run_command(self: basic.AnsibleModule, command: Any, **kw: Any) -> Tuple[int, str, str]:
        calls.append(command)
        if command[1:3] == ["image", "inspect"]:
            return (0, "".join(line + "\n" for line in env), "") if env else (125, "", "image not known")
        return 1, "", "unexpected"

    with mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name):
        return run_module(module.main, args, **kwargs), calls


def _base(tmp_path: Path, *clusters: Tuple[str, str]) -> str:
    for name, version in clusters:
        (tmp_path / name).mkdir()
        (tmp_path / name / "PG_VERSION").write_text(version + "\n")
    return str(tmp_path)


def test_find_on_a_fresh_host_asks_no_engine(tmp_path: Path) -> None:
    result, calls = _run({"step": "find", "base_dir": str(tmp_path / "pg"), "image": IMAGE, "engine": "dockr"}, [],
                         check_mode=True)
    assert not result["failed"] and not result["changed"] and result["data_dir"] == str(tmp_path / "pg/data")
    assert calls == []


def test_find_refuses_a_newer_image_naming_the_variable(tmp_path: Path) -> None:
    base = _base(tmp_path, ("data", "15"))
    result, _calls = _run({"step": "find", "base_dir": base, "image": IMAGE, "engine": "podman"}, ["PG_MAJOR=17"],
                          check_mode=True)
    assert result["failed"] and "\n" not in result["msg"] and result["msg"].startswith("postgres_image %s is PostgreSQL 17" % IMAGE)
    result, _calls = _run({"step": "find", "base_dir": base, "image": IMAGE, "engine": "podman", "upgrading": True},
                          ["PG_MAJOR=17"])
    assert not result["failed"] and result["data_dir"] == base + "/data" and result["image_major"] == 17


def test_find_uses_the_upgraded_directory(tmp_path: Path) -> None:
    base = _base(tmp_path, ("data", "15"), ("data-17", "17"))
    result, _calls = _run({"step": "find", "base_dir": base, "image": IMAGE, "engine": "podman"}, ["PG_MAJOR=17"])
    assert result["data_dir"] == base + "/data-17" and result["cluster_major"] == 17
    # The image is not on the host yet: the cluster in use, whatever the image turns out to be.
    result, _calls = _run({"step": "find", "base_dir": base, "image": "new:18", "engine": "podman"}, [])
    assert not result["failed"] and result["data_dir"] == base + "/data-17" and result["image_major"] is None


def test_find_errors_name_the_variable(tmp_path: Path) -> None:
    base = _base(tmp_path, ("data", "15"))
    result, _calls = _run({"step": "find", "base_dir": "pg", "image": IMAGE}, [])
    assert result["failed"] and result["msg"].startswith("postgres_base_dir must be an absolute path")
    result, _calls = _run({"step": "find", "base_dir": base, "image": IMAGE, "engine": "dockr"}, [])
    assert result["failed"] and result["msg"] == "postgres_engine must be one of docker, podman, podman_rootless, docker_rootless, got 'dockr'"


def test_check_and_the_changing_steps_in_check_mode(tmp_path: Path) -> None:
    base = _base(tmp_path, ("data", "15"))
    plan, _calls = _run({"step": "check", "base_dir": base, "image": IMAGE, "engine": "podman"}, ["PG_MAJOR=17"], check_mode=True)
    assert plan["needed"] and plan["new_dir"] == base + "/data-17" and not plan["changed"]
    plan_args = {k: plan[k] for k in ("needed", "old_dir", "old_major", "new_dir", "new_major")}
    args = {"base_dir": base, "image": IMAGE, "engine": "podman", "plan": plan_args, "component": {"name": "x"}}
    prepared, calls = _run(dict(args, step="prepare"), ["PG_MAJOR=17"], check_mode=True, diff=True)
    assert prepared["changed"] and prepared["diff"]["after"] == "data directory %s\n" % (base + "/data-17") and calls == []
    for step in ("rollback", "finish"):
        result, calls = _run(dict(args, step=step), [], check_mode=True)
        assert result["changed"] and not result["failed"] and calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    missing, _calls = _run(dict(args, step="prepare", plan=None), [])
    assert missing["failed"] and "needs plan" in missing["msg"]
    unknown, _calls = _run({"step": "check", "base_dir": base, "image": "odd:1", "engine": "podman"}, ["PATH=/usr/bin"])
    assert unknown["failed"] and "cannot tell the PostgreSQL major of postgres_image odd:1" in unknown["msg"]
