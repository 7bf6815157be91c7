# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth_engine: docker_rootless on the Debian 13 target (docker 26, RootlessKit 2), one target.

test_docker_rootless.py proves the mode on Debian 12 in full (switch, client address, kill,
reboot); this file proves what differs with Debian 13's packages, on a fresh deployment: the
user's dockerd comes up from them, the round trip over TLS, the host-side owners and a re-run
that changes nothing. Docker target only.
"""

from __future__ import annotations

from typing import Dict, Iterator

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, BedTarget, Stack, \
    converged_stack, target_factory
from harness import LoopbackNames, ssl_context
from matrix_client import round_trip

pytestmark = pytest.mark.skipif("docker" not in ENGINES, reason="docker_rootless needs the docker target")

USER = "hearth"
ROOTLESS = {"hearth_engine": "docker_rootless", "hearth_rootless_unprivileged_port_start": 80}
CONTAINERS = ["hearth-postgres", "hearth-synapse", "hearth-nginx-proxy"]


@pytest.fixture(scope="module")
def trixie_stack(bed_images: Dict[str, object]) -> Iterator[Stack]:
    with target_factory("docker", "drootless13", components=["postgres", "synapse", "nginx"],
                        os_name="trixie") as bed_target:
        yield converged_stack(bed_target, ROOTLESS)


def _as_user(bed: BedTarget, command: str) -> str:
    _rc, out = bed.sh("cd /var/lib/{u} && runuser -u {u} -- env XDG_RUNTIME_DIR=/run/user/$(id -u {u}) HOME=/var/lib/{u} "
                      "DOCKER_HOST=unix:///run/user/$(id -u {u})/docker.sock {c}".format(u=USER, c=command))
    return out


def test_round_trip_owners_and_rerun_on_debian_13(trixie_stack: Stack) -> None:
    """The round trip through the proxy over TLS; the user's dockerd is Debian 13's; every
    process of the stack belongs to the service user or its range, Synapse's key to the mapped
    uid; a re-run changes nothing and restarts no container."""
    bed = trixie_stack.bed
    with LoopbackNames([MATRIX_HOSTNAME, SERVER_NAME]):
        result = round_trip(trixie_stack.base_url, "@%s:%s" % (ADMIN_USER, SERVER_NAME), ADMIN_PASSWORD,
                            ssl_context(trixie_stack.ca_file))
    assert result.body in result.seen_by_second_session
    assert "trixie" in bed.sh("cat /etc/os-release")[1]
    assert _as_user(bed, "docker version --format '{{.Server.Version}}'").strip().startswith("26.")
    uid = int(bed.sh("id -u %s" % USER)[1])
    start = int(bed.sh("grep ^%s: /etc/subuid | cut -d: -f2" % USER)[1])
    _rc, table = bed.sh("ps -eo uid=,args=")
    procs = [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in table.splitlines()
             if len(line.split(None, 1)) == 2 and "ps -eo" not in line]
    mine = [args for owner, args in procs if owner == uid or start <= owner < start + 65536]
    for needed in ("rootlesskit", "dockerd", "synapse.app.homeserver", "nginx"):
        assert any(needed in args for args in mine), (needed, table)
    rooted = [args for owner, args in procs if owner == 0
              and any(word in args for word in ("rootlesskit", "slirp4netns", "synapse", "nginx", "postgres"))]
    assert rooted == [], rooted
    assert int(bed.sh("stat -c %u /opt/hearth-matrix/synapse/keys/signing.key")[1]) == start + 990
    started = {c: _as_user(bed, "docker inspect --format '{{.State.StartedAt}}' %s" % c).strip() for c in CONTAINERS}
    run = trixie_stack.converge()
    assert run.rc == 0 and run.changed == 0, run.tail(40)
    assert {c: _as_user(bed, "docker inspect --format '{{.State.StartedAt}}' %s" % c).strip()
            for c in CONTAINERS} == started
