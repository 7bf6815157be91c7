# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hearth.matrix.acme: the client's container argv, input checks, check mode, the timer's settings."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any, Dict
from unittest import mock

import pytest

from ansible_collections.hearth.matrix.plugins.modules import acme as acme_module
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="the module needs the openssl CLI")


def params(tmp_path: Path, **overrides: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = dict(
        domains=["Matrix.example.org", "example.org"], engine="podman", image="localhost/certbot:1",
        uid=991, gid=991, network="hearth", data_dir=str(tmp_path / "acme"),
        webroot=str(tmp_path / "webroot"), tls_dir=str(tmp_path / "tls"), proxy_container="hearth-nginx-proxy",
        directory_url="https://acme.test/dir", ca_bundle="", email="", renew_days=30,
        settings_path=str(tmp_path / "etc" / "acme.json"))
    base.update(overrides)
    return base


def test_client_argv_is_hardened(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    argv = acme_module.client_argv(dict(params(tmp_path), ca_bundle=str(bundle)), "/usr/bin/podman")
    assert argv[:3] == ["/usr/bin/podman", "run", "--rm"]
    for flag in ("--cap-drop=ALL", "--security-opt=no-new-privileges", "--read-only", "--network=hearth",
                 "--user=991:991", "--entrypoint=certbot",
                 "--env=REQUESTS_CA_BUNDLE=/etc/hearth/acme-ca.pem"):
        assert flag in argv, flag
    assert "--mount=type=bind,src=%s,dst=/etc/hearth/acme-ca.pem,readonly" % bundle in argv
    assert "--mount=type=bind,src=%s,dst=/etc/letsencrypt" % (tmp_path / "acme") in argv
    assert not [a for a in argv if a.startswith("--log-driver")]
    assert argv[-1] == "localhost/certbot:1"


@pytest.mark.parametrize("override, message", [
    ({"domains": ["*.example.org"]}, "domains must be DNS names without wildcards"),
    ({"renew_days": 0}, "renew_days must be at least 1"),
    ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle /nonexistent/ca.pem is not a file"),
])
def test_bad_input_fails_before_anything(tmp_path: Path, override: Dict[str, Any], message: str) -> None:
    result = run_module(acme_module.main, params(tmp_path, **override))
    assert result["failed"] and message in result["msg"]
    assert not (tmp_path / "acme").exists() and not (tmp_path / "etc").exists()


def test_check_mode_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    with mock.patch("ansible.module_utils.basic.AnsibleModule.get_bin_path", return_value="/usr/bin/openssl"), \
            mock.patch("ansible.module_utils.basic.AnsibleModule.run_command",
                       side_effect=AssertionError("nothing runs in check mode but openssl")) as runner:
        runner.side_effect = None
        runner.return_value = (1, "", "")
        result = run_module(acme_module.main, params(tmp_path), check_mode=True)
    assert result["changed"] and result["ordered"] and not result["failed"]
    assert all(call.args[0][0] == "/usr/bin/openssl" for call in runner.call_args_list)
    assert not (tmp_path / "acme").exists() and not (tmp_path / "etc").exists()


def test_settings_for_the_timer(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "acme" / "live" / "hearth").mkdir(parents=True)
    with mock.patch.object(acme_module, "converge") as converge:
        converge.return_value.as_dict.return_value = {"changed": False}
        converge.return_value.changed = False
        first = run_module(acme_module.main, params(tmp_path))
        second = run_module(acme_module.main, params(tmp_path))
    assert first["changed"] and not second["changed"]
    path = tmp_path / "etc" / "acme.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = json.loads(path.read_text())
    assert settings["domains"] == ["matrix.example.org", "example.org"]
    assert settings["client_argv"][1:3] == ["run", "--rm"] and settings["renew_days"] == 30


def test_diff_shows_the_served_certificate(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    result = run_module(acme_module.main, params(tmp_path), check_mode=True, diff=True)
    assert result["diff"]["before"] == "(none)\n"
    assert result["diff"]["after"] == "(a new certificate for matrix.example.org, example.org)\n"
