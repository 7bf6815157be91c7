# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/postgres_cluster: the data directory in use, the refusals, the upgrade's steps
against a fake engine (directories real, in tmp_path)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils import postgres_cluster as pc

IMAGE = "localhost/hearth/postgres17:test"
COMPONENT: Dict[str, Any] = {
    "name": "hearth-postgres",
    "engine": "podman",
    "image": "localhost/hearth/postgres:test",
    "container": {
        "image": "localhost/hearth/postgres:test",
        "user": "991:991",
        "tmpfs": [{"path": "/tmp", "mode": "1777"}],
        "mounts": [{"source": "/srv/pg/data", "target": "/var/lib/postgresql/data", "read_only": False},
                   {"source": "/srv/pg/secrets/password", "target": "/run/secrets/pw", "read_only": True}],
        "networks": ["hearth"],
        "address": "10.89.91.200",
        "env": {"POSTGRES_USER": "synapse", "POSTGRES_DB": "synapse", "POSTGRES_PASSWORD_FILE": "/run/secrets/pw"},
        "healthcheck": {"command": ["pg_isready"]},
        "memory": "1g",
    },
}


def _cluster(path: Path, version: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "PG_VERSION").write_text(version + "\n")
    return path


def test_read_major(tmp_path: Path) -> None:
    assert pc.read_major(str(tmp_path)) is None
    assert pc.read_major(str(_cluster(tmp_path / "a", "15"))) == 15
    assert pc.read_major(str(_cluster(tmp_path / "b", "9.6"))) == 9
    _cluster(tmp_path / "c", "garbage")
    with pytest.raises(pc.ClusterError, match="PG_VERSION"):
        pc.read_major(str(tmp_path / "c"))


def test_the_newest_major_is_in_use(tmp_path: Path) -> None:
    assert pc.current(str(tmp_path / "missing")) is None
    assert pc.current(str(tmp_path)) is None
    (tmp_path / "data").mkdir()  # empty: no cluster yet
    assert pc.current(str(tmp_path)) is None
    _cluster(tmp_path / "data", "15")
    assert pc.current(str(tmp_path)) == pc.Cluster(str(tmp_path / "data"), 15)
    _cluster(tmp_path / "data-17.new", "17")  # an unfinished upgrade never counts
    _cluster(tmp_path / "backup-data", "18")
    assert pc.current(str(tmp_path)).major == 15
    _cluster(tmp_path / "data-17", "17")
    assert pc.current(str(tmp_path)) == pc.Cluster(str(tmp_path / "data-17"), 17)


@pytest.mark.parametrize("env, major", [
    (["PG_MAJOR=17", "PATH=/usr/lib/postgresql/15/bin:/bin"], 17),
    (["PATH=/usr/local/bin:/usr/lib/postgresql/15/bin:/usr/bin"], 15),
    (["PG_VERSION=16.4-1.pgdg120+1"], 16),
    (["PATH=/usr/bin", "HOME=/"], None),
    ([], None),
])
def test_image_major(env: List[str], major: Any) -> None:
    assert pc.image_major(env) == major


def test_choose_data_dir_refuses_another_major(tmp_path: Path) -> None:
    base = str(tmp_path)
    assert pc.choose_data_dir(base, IMAGE, 17)["data_dir"] == base + "/data"  # fresh: any major
    _cluster(tmp_path / "data", "15")
    assert pc.choose_data_dir(base, IMAGE, 15) == {"data_dir": base + "/data", "cluster_major": 15, "image_major": 15}
    # Unknown major (image not on the host yet): the cluster in use, never an empty one.
    assert pc.choose_data_dir(base, IMAGE, None)["data_dir"] == base + "/data"
    with pytest.raises(pc.ClusterError) as newer:
        pc.choose_data_dir(base, IMAGE, 17)
    message = str(newer.value)
    assert "\n" not in message and "postgres_image" in message and "postgres_upgrade.yml" in message and "PostgreSQL 15" in message
    assert pc.choose_data_dir(base, IMAGE, 17, upgrading=True)["data_dir"] == base + "/data"
    _cluster(tmp_path / "data-17", "17")
    with pytest.raises(pc.ClusterError, match="postgres_image .* PostgreSQL 15 .* cannot read"):
        pc.choose_data_dir(base, "old:15", 15)


def test_plan_upgrade(tmp_path: Path) -> None:
    base = str(tmp_path)
    with pytest.raises(pc.ClusterError, match="nothing to upgrade"):
        pc.plan_upgrade(base, IMAGE, 17)
    _cluster(tmp_path / "data", "15")
    with pytest.raises(pc.ClusterError, match="cannot tell the PostgreSQL major of postgres_image"):
        pc.plan_upgrade(base, IMAGE, None)
    with pytest.raises(pc.ClusterError, match="cannot read"):
        pc.plan_upgrade(base, IMAGE, 14)
    assert pc.plan_upgrade(base, IMAGE, 17) == {"needed": True, "old_dir": base + "/data", "old_major": 15,
                                                "new_major": 17, "new_dir": base + "/data-17"}
    _cluster(tmp_path / "data-17", "17")
    assert pc.plan_upgrade(base, IMAGE, 17)["needed"] is False


def test_restore_lines_drop_only_the_bootstrap_role() -> None:
    dump = ["CREATE ROLE synapse;\n", "ALTER ROLE synapse WITH SUPERUSER PASSWORD 'SCRAM';\n", "CREATE ROLE synapse_ro;\n",
            "-- CREATE ROLE synapse;\n"]
    assert list(pc.restore_lines(dump, "synapse")) == dump[1:]


def test_temporary_spec_is_the_roles_container_without_network(tmp_path: Path) -> None:
    request = _request(tmp_path)
    spec = pc.temporary_spec(COMPONENT, request, "/srv/pg/data-17.new")
    assert spec.name == "hearth-postgres-upgrade" and spec.image == IMAGE
    assert spec.networks == ("none",) and spec.address is None and spec.healthcheck is None
    assert spec.user == "991:991" and spec.read_only and spec.cap_add == ()
    assert [(m.source, m.read_only) for m in spec.mounts] == [("/srv/pg/data-17.new", False), ("/srv/pg/secrets/password", True)]
    assert dict(spec.env)["POSTGRES_DB"] == "postgres" and spec.command == ("postgres",)
    broken = dict(COMPONENT, container=dict(COMPONENT["container"], mounts=[]))
    with pytest.raises(pc.ClusterError, match="mounts nothing"):
        pc.temporary_spec(broken, request, "/x")


def _request(tmp_path: Path) -> pc.UpgradeRequest:
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    return pc.UpgradeRequest(base_dir=str(tmp_path / "pg"), image=IMAGE, engine="podman", engine_path="/usr/bin/podman",
                             service="hearth-postgres", database_user="synapse", database_name="synapse",
                             unit_dir=str(unit_dir), ready_timeout=5, pending_dir=str(tmp_path / "pending"))


class FakeHost:
    """The engine and systemctl: the old server dumps, the temporary one initialises its
    directory when it starts and takes the dump on stdin."""

    def __init__(self, new_counts: str = "public.events 2\n", ready: bool = True) -> None:
        self.calls: List[Union[str, List[str]]] = []
        self.mounts: Dict[str, str] = {}
        self.restored = ""
        self.new_counts = new_counts
        self.ready = ready
        self.active = True

    def __call__(self, argv: Union[str, List[str]]) -> Tuple[int, str, str]:
        self.calls.append(argv)
        if isinstance(argv, str):
            words = shlex.split(argv)
            if "pg_dumpall" in words:
                Path(words[-1]).write_text("CREATE ROLE synapse;\nALTER ROLE synapse PASSWORD 'x';\nCREATE DATABASE synapse;\n")
            elif "-f" in words:
                self.restored = Path(words[-1]).read_text()
            return 0, "", ""
        if argv[1] == "create":
            self.mounts["new"] = [a for a in argv if a.startswith("--mount=") and "postgresql/data" in a][0].split(",")[1][4:]
        elif argv[1] == "start":
            (Path(self.mounts["new"]) / "PG_VERSION").write_text("17\n")
        elif argv[1] == "exec" and pc.ROW_COUNTS_SQL in argv:
            return 0, ("public.events 2\n" if argv[2] == "hearth-postgres" else self.new_counts), ""
        elif argv[1] == "exec" and "pg_isready" in argv:
            return (0 if self.ready else 2), "", ""
        elif argv[1] == "inspect":
            return 0, "true\n" if self.ready else "false\n", ""
        elif argv[1] == "logs":
            return 0, "", "FATAL: unrecognized configuration parameter"
        elif argv[:2] == ["systemctl", "is-active"]:
            return (0 if self.active else 3), "", ""
        return 0, "", ""


def _stack(tmp_path: Path) -> Tuple[pc.UpgradeRequest, Dict[str, Any]]:
    request = _request(tmp_path)
    _cluster(Path(request.base_dir) / "data", "15")
    Path(request.unit_path).write_text("old unit\n")
    return request, pc.plan_upgrade(request.base_dir, IMAGE, 17)


def test_prepare_restores_into_a_new_directory_and_keeps_the_old(tmp_path: Path) -> None:
    request, plan = _stack(tmp_path)
    host = FakeHost()
    result = pc.prepare(host, request, plan, COMPONENT)
    assert result["new_dir"] == request.base_dir + "/data-17" and result["tables"] == 1
    assert pc.read_major(request.base_dir + "/data-17") == 17 and not os.path.exists(request.base_dir + "/data-17.new")
    assert pc.read_major(request.base_dir + "/data") == 15
    assert host.restored.startswith("ALTER ROLE synapse")  # the bootstrap role is initdb's
    assert oct(os.stat(request.work_dir).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(request.work_dir, pc.DUMP)).st_mode & 0o777) == "0o600"
    assert Path(request.saved_unit).read_text() == "old unit\n"
    create = [c for c in host.calls if isinstance(c, list) and c[1] == "create"][0]
    assert "--network=none" in create and "--cap-drop=ALL" in create and "--read-only" in create
    assert pc.current(request.base_dir) == pc.Cluster(request.base_dir + "/data-17", 17)
    assert pc.finish(request) == {"changed": True} and not os.path.exists(request.work_dir)
    assert pc.finish(request) == {"changed": False}


@pytest.mark.parametrize("host, message", [
    (FakeHost(new_counts="public.events 1\n"), "row counts"),
    (FakeHost(ready=False), "did not come up: FATAL: unrecognized"),
])
def test_prepare_failures_leave_only_the_old_cluster(tmp_path: Path, host: FakeHost, message: str) -> None:
    request, plan = _stack(tmp_path)
    with pytest.raises(pc.ClusterError, match=message):
        pc.prepare(host, request, plan, COMPONENT)
    assert sorted(os.listdir(request.base_dir)) == ["data", pc.WORK_DIR]
    assert pc.current(request.base_dir) == pc.Cluster(request.base_dir + "/data", 15)
    assert host.calls[-1] == ["/usr/bin/podman", "rm", "--force", "hearth-postgres-upgrade"]


def test_rollback_puts_the_old_unit_and_directory_back(tmp_path: Path) -> None:
    request, plan = _stack(tmp_path)
    host = FakeHost()
    pc.prepare(host, request, plan, COMPONENT)
    Path(request.unit_path).write_text("new unit that failed\n")
    # The failed converge's record of the restart it owed (hearth.matrix.component).
    Path(request.pending_dir).mkdir()
    Path(request.pending_dir, "hearth-postgres").touch()
    host.active = False
    result = pc.rollback(host, request, plan)
    assert result["changed"] and Path(request.unit_path).read_text() == "old unit\n"
    assert not os.path.exists(plan["new_dir"]) and pc.read_major(plan["old_dir"]) == 15
    assert sorted(os.listdir(request.base_dir)) == ["data"] and os.listdir(request.pending_dir) == []
    assert ["systemctl", "daemon-reload"] in host.calls and ["systemctl", "restart", "hearth-postgres.service"] in host.calls
    # Again, with everything back and running: nothing to do.
    host.active, host.calls = True, []
    assert pc.rollback(host, request, plan) == {"changed": False, "changes": []}
    assert not any(c[:2] == ["systemctl", "restart"] for c in host.calls if isinstance(c, list))
