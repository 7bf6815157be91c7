# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""secret: created once with mode 0600, never regenerated, Synapse signing key format."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path
from typing import Any, Dict, List
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.hearth.matrix.plugins.modules import secret
from ansible_collections.hearth.matrix.tests.unit.plugins.modules.module_runner import run_module


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_a_token_once(tmp_path: Path) -> None:
    path = tmp_path / "registration_shared_secret"
    first = run_module(secret.main, {"path": str(path)})
    assert first["failed"] is False
    assert first["changed"] is True and first["created"] is True
    assert re.fullmatch(r"[A-Za-z0-9]{64}", first["value"])
    assert path.read_text() == first["value"] + "\n"
    assert mode_of(path) == 0o600
    second = run_module(secret.main, {"path": str(path)})
    assert second["changed"] is False and second["created"] is False
    assert second["value"] == first["value"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_two_secrets_differ(tmp_path: Path) -> None:
    values = {run_module(secret.main, {"path": str(tmp_path / name)})["value"] for name in "abc"}
    assert len(values) == 3


def test_length(tmp_path: Path) -> None:
    assert len(run_module(secret.main, {"path": str(tmp_path / "s"), "length": 32})["value"]) == 32


def test_never_regenerates_whatever_is_there(tmp_path: Path) -> None:
    path = tmp_path / "legacy"
    path.write_text("short-legacy-value\n")
    path.chmod(0o600)
    result = run_module(secret.main, {"path": str(path), "length": 64, "format": "synapse_signing_key"})
    assert result["changed"] is False and result["created"] is False
    assert result["value"] == "short-legacy-value"
    assert path.read_text() == "short-legacy-value\n"


def test_existing_file_gets_its_mode_fixed(tmp_path: Path) -> None:
    path = tmp_path / "loose"
    path.write_text("kept\n")
    path.chmod(0o644)
    result = run_module(secret.main, {"path": str(path)})
    assert result["changed"] is True and result["created"] is False
    assert mode_of(path) == 0o600 and result["value"] == "kept"


def test_requested_mode(tmp_path: Path) -> None:
    path = tmp_path / "group-readable"
    run_module(secret.main, {"path": str(path), "mode": "0640"})
    assert mode_of(path) == 0o640


def test_secret_is_never_readable_by_others_while_being_created(tmp_path: Path) -> None:
    """The file must have no group/other bits at any point, not only at the end."""
    path = tmp_path / "secret"
    seen: List[int] = []
    original = basic.AnsibleModule.set_fs_attributes_if_different

    def spy(self: basic.AnsibleModule, file_args: Dict[str, Any], changed: bool, *args: Any, **kwargs: Any) -> bool:
        seen.append(mode_of(path))  # the mode the secret has before the final chmod
        return original(self, file_args, changed, *args, **kwargs)

    with mock.patch.object(basic.AnsibleModule, "set_fs_attributes_if_different", spy):
        run_module(secret.main, {"path": str(path)})
    assert seen and all(mode & 0o077 == 0 for mode in seen), [oct(mode) for mode in seen]


def test_signing_key_format(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    result = run_module(secret.main, {"path": str(path), "format": "synapse_signing_key"})
    algorithm, key_id, seed = result["value"].split(" ")
    assert algorithm == "ed25519"
    assert re.fullmatch(r"a_[A-Za-z0-9]{4}", key_id)
    assert "=" not in seed  # Synapse writes unpadded base64
    raw = base64.b64decode(seed + "=" * (-len(seed) % 4))
    assert len(raw) == 32
    assert path.read_text() == result["value"] + "\n"
    assert mode_of(path) == 0o600
    again = run_module(secret.main, {"path": str(path), "format": "synapse_signing_key"})
    assert again["value"] == result["value"] and again["changed"] is False


def test_signing_key_seed_is_a_usable_ed25519_key(tmp_path: Path) -> None:
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519",
                                  reason="cryptography is not installed; the 32-byte seed check above still ran")
    value = run_module(secret.main, {"path": str(tmp_path / "k"), "format": "synapse_signing_key"})["value"]
    seed = value.split(" ")[2]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed + "=" * (-len(seed) % 4)))
    signature = key.sign(b"hearth")
    key.public_key().verify(signature, b"hearth")


def test_check_mode_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    result = run_module(secret.main, {"path": str(path)}, check_mode=True, diff=True)
    assert result["changed"] is True and result["created"] is True
    assert result["value"] == ""
    assert not path.exists()
    assert result["diff"]["before"] == "" and "value not shown" in result["diff"]["after"]


def test_check_mode_on_existing_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    value = run_module(secret.main, {"path": str(path)})["value"]
    result = run_module(secret.main, {"path": str(path)}, check_mode=True, diff=True)
    assert result["changed"] is False and result["value"] == value
    assert result["diff"]["before"] == result["diff"]["after"]


def test_diff_never_shows_the_secret(tmp_path: Path) -> None:
    result = run_module(secret.main, {"path": str(tmp_path / "s")}, diff=True)
    assert result["value"] not in repr(result["diff"])


@pytest.mark.parametrize("args, field_name", [
    ({"path": "relative/secret"}, "path"),
    ({"length": 8}, "length"),
])
def test_bad_input_fails_naming_the_field(tmp_path: Path, args: Dict[str, Any], field_name: str) -> None:
    full = {"path": str(tmp_path / "s")}
    full.update(args)
    result = run_module(secret.main, full)
    assert result["failed"] is True and result["field"] == field_name
    assert result["msg"].startswith(field_name + ":")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_fails(tmp_path: Path) -> None:
    result = run_module(secret.main, {"path": str(tmp_path / "missing" / "s")})
    assert result["failed"] is True and result["field"] == "path"
    assert "does not exist" in result["msg"]


def test_bad_format_fails(tmp_path: Path) -> None:
    result = run_module(secret.main, {"path": str(tmp_path / "s"), "format": "rsa"})
    assert result["failed"] is True and "format" in result["msg"]
