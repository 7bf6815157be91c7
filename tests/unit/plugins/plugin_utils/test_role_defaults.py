# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's role defaults, read once (plugin_utils/role_defaults.py)."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.hearth.matrix.plugins.plugin_utils.role_defaults import role_defaults


def test_every_roles_defaults_in_one_mapping(tmp_path: Path) -> None:
    for role, text in (("alpha", "alpha_port: 1\nalpha_list: [a]\n"), ("beta", "beta_name: b\n"), ("gamma", "")):
        (tmp_path / role / "defaults").mkdir(parents=True)
        (tmp_path / role / "defaults" / "main.yml").write_text(text)
    (tmp_path / "delta").mkdir()   # a role without defaults
    assert role_defaults(str(tmp_path)) == {"alpha_port": 1, "alpha_list": ["a"], "beta_name": "b"}


def test_the_collections_own_roles_are_found() -> None:
    defaults = role_defaults()
    assert defaults["postgres_engine"] == "docker" and "synapse_image" in defaults
