# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synapse upgrade and refused downgrade (issue 13, point 3) on one podman target.

The base stack starts with the previous minor Synapse (bed image synapse-previous, built from
PyPI with the synapse recipe's Containerfile); a user sends a message. Converging with the
current image upgrades it: the same user logs in with the old password, reads the old message
and sends a new one, and the server keeps its signing key.

Then a downgrade. Synapse refuses a database whose ``schema_compat_version`` is above its own
``SCHEMA_VERSION``; 1.162 and 1.163 share SCHEMA_VERSION 94 and compat version 84, so by that
rule 1.162 still runs on 1.163's database, and the collection lets it through (shown with a
check-mode converge, which runs the same probe and changes nothing). To have a database that
is too new for the old image, the test raises its compat version to 95, exactly what the first
Synapse release with a higher SCHEMA_COMPAT_VERSION does, instead of building a years-old
Synapse. The converge back to the old image then fails with one line naming synapse_image and
both versions; the Synapse container, its unit, its start and every file under the base
directory are untouched, and Synapse still answers.

One engine (podman): the check is one `<engine> run --rm` of the new image built by the same
code as every container argv (container.create_argv, unit-tested for both engines); the
upgrade itself is Synapse's own migration, which does not depend on the engine. docker would
repeat ~3 minutes for nothing the other engine checks do not already show.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict

import pytest

from conftest import BASE_VARS, ENGINES, MATRIX_HOSTNAME, SERVER_NAME, Stack, converged_stack, target_factory
from harness import LoopbackNames, failure_messages, https_get, ssl_context, wait_for
from matrix_client import messages_in, round_trip

NAMES = [MATRIX_HOSTNAME, SERVER_NAME]
PREVIOUS_IMAGE = "localhost/hearth/synapse-previous:test"
CURRENT_IMAGE = BASE_VARS["hearth_images"]["synapse"]
PREVIOUS_VERSION, CURRENT_VERSION = "1.162.0", "1.163.2"
IMAGES = ["synapse", "synapse-previous", "postgres", "nginx"]
# What must not change when a downgrade is refused (the database directory aside: Synapse runs).
STATE_DIGEST = ("cd /opt/hearth-matrix && find . -path ./postgres/data -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; "
                "sha256sum /etc/systemd/system/hearth-*.service")
PSQL = "exec hearth-postgres psql -AtX --username synapse --dbname synapse -c "


def _images(synapse: str) -> Dict[str, Any]:
    return {"hearth_images": dict(BASE_VARS["hearth_images"], synapse=synapse)}


def _synapse_version(stack: Stack) -> str:
    with LoopbackNames(NAMES):
        status, _headers, body = https_get(stack.federation_url + "/_matrix/federation/v1/version", stack.ca_file)
    assert status == 200, body
    return str(json.loads(body)["server"]["version"])


def _server_keys(stack: Stack) -> Dict[str, Any]:
    with LoopbackNames(NAMES):
        status, _headers, body = https_get(stack.federation_url + "/_matrix/key/v2/server", stack.ca_file)
    assert status == 200, body
    return dict(json.loads(body)["verify_keys"])


def _synapse_identity(stack: Stack) -> Dict[str, str]:
    _rc, container = stack.bed.engine_cmd("inspect --format '{{.Id}} {{.State.StartedAt}} {{.Image}}' hearth-synapse")
    _rc, unit = stack.bed.sh("systemctl show --property=InvocationID,ActiveState,ExecMainStartTimestamp hearth-synapse.service")
    return {"container": container.strip(), "unit": unit.strip()}


@pytest.mark.skipif("podman" not in ENGINES, reason="runs on podman only (see the module docstring)")
def test_synapse_upgrade_keeps_everything_and_a_too_old_image_is_refused(bed_images: Dict[str, Any]) -> None:
    user, password = "carol-%s" % uuid.uuid4().hex[:6], "pw-" + uuid.uuid4().hex
    user_id = "@%s:%s" % (user, SERVER_NAME)
    with target_factory("podman", "upgrade", components=IMAGES) as bed_target:
        # 1. The previous minor Synapse, a user and a message.
        stack = converged_stack(bed_target, _images(PREVIOUS_IMAGE))
        assert _synapse_version(stack) == PREVIOUS_VERSION
        assert stack.register(user, password).rc == 0
        with LoopbackNames(NAMES):
            before = round_trip(stack.base_url, user_id, password, ssl_context(stack.ca_file))
        assert before.body in before.seen_by_second_session
        keys = _server_keys(stack)

        # 2. Upgrade: the current image; Synapse migrates its schema on start.
        upgrade = stack.converge(_images(CURRENT_IMAGE))
        assert upgrade.rc == 0 and upgrade.failed == 0, upgrade.tail(60)
        wait_for(lambda: _synapse_version(stack) == CURRENT_VERSION, 120, 2, "Synapse %s after the upgrade" % CURRENT_VERSION)
        with LoopbackNames(NAMES):
            old_room = messages_in(stack.base_url, user_id, password, ssl_context(stack.ca_file), before.room_id)
            after = round_trip(stack.base_url, user_id, password, ssl_context(stack.ca_file))
        assert before.body in old_room
        assert after.body in after.seen_by_second_session
        assert _server_keys(stack) == keys

        # 3. Synapse's own rule: the previous release understands this schema, so it is let through
        #    (check mode: the same probe runs, nothing changes).
        _rc, compat = bed_target.engine_cmd(PSQL + "'SELECT compat_version FROM schema_compat_version'")
        assert int(compat.strip()) <= 94, compat
        allowed = stack.converge(_images(PREVIOUS_IMAGE), args=["--check"])
        assert allowed.rc == 0 and allowed.changed > 0, allowed.tail(40)

        # 4. A database too new for the old image: refused before anything changes.
        bed_target.engine_cmd(PSQL + "'UPDATE schema_compat_version SET compat_version = 95'")
        identity, (_rc, state) = _synapse_identity(stack), bed_target.sh(STATE_DIGEST)
        refused = stack.converge(_images(PREVIOUS_IMAGE))
        assert refused.rc != 0, refused.tail(40)
        messages = [m for m in failure_messages(refused.output) if "synapse_image" in m]
        assert messages, refused.tail(40)
        message = messages[0]
        assert "synapse_image: %s has Synapse %s" % (PREVIOUS_IMAGE, PREVIOUS_VERSION) in message, message
        assert "running Synapse %s" % CURRENT_VERSION in message and "schema 95 or newer" in message, message
        assert "\n" not in message
        assert _synapse_identity(stack) == identity
        assert bed_target.sh(STATE_DIGEST)[1] == state
        assert _synapse_version(stack) == CURRENT_VERSION
        bed_target.engine_cmd(PSQL + "'UPDATE schema_compat_version SET compat_version = %d'" % int(compat.strip()))
        timings = {"deploy previous": stack.runs[0].seconds, "upgrade": upgrade.seconds,
                   "check-mode downgrade": allowed.seconds, "refused downgrade": refused.seconds}
    print("synapse upgrade timings: %s" % ", ".join("%s %.1f s" % item for item in timings.items()))
