# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's role defaults (roles/*/defaults/main.yml), read on the controller."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import yaml

# plugins/plugin_utils/ -> the collection root
ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")
_CACHE: Dict[str, Dict[str, Any]] = {}


def role_defaults(roles_dir: Optional[str] = None) -> Dict[str, Any]:
    """Every role's defaults in one mapping (their names carry the role's prefix, so none
    collide); read once per controller process."""
    base = roles_dir or ROLES_DIR
    if base not in _CACHE:
        merged: Dict[str, Any] = {}
        for role in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            path = os.path.join(base, role, "defaults", "main.yml")
            if os.path.isfile(path):
                with open(path, "r", encoding="utf-8") as handle:
                    merged.update(yaml.safe_load(handle) or {})
        _CACHE[base] = merged
    return _CACHE[base]
