# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.hearth.matrix`` importable from a plain clone.

The repository root IS the collection, but Python can only import it as
``ansible_collections.hearth.matrix`` from a directory laid out that way. When the clone
does not already sit at ``.../ansible_collections/hearth/matrix`` (as under
``ansible-test units``, which sets up its own import path), a temporary directory with an
``ansible_collections/hearth/matrix`` symlink to the repository root goes first on sys.path.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

NAMESPACE = "hearth"
NAME = "matrix"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _collection_importable() -> bool:
    try:
        package = importlib.import_module("ansible_collections.%s.%s" % (NAMESPACE, NAME))
    except ImportError:
        return False
    # The package must be THIS checkout, not an installed copy of the collection.
    locations = [Path(p).resolve() for p in getattr(package, "__path__", [])]
    return REPO_ROOT in locations


def _add_collection_root() -> None:
    if REPO_ROOT.parent.name == NAMESPACE and REPO_ROOT.parents[1].name == "ansible_collections":
        # Already in the ansible-test layout: its grandparent is a collections root.
        sys.path.insert(0, str(REPO_ROOT.parents[2]))
        return
    collections_root = tempfile.mkdtemp(prefix="hearth-matrix-unit-")
    namespace_dir = os.path.join(collections_root, "ansible_collections", NAMESPACE)
    os.makedirs(namespace_dir)
    os.symlink(str(REPO_ROOT), os.path.join(namespace_dir, NAME))
    # rmtree does not follow the symlink: only the temporary tree goes, never the repository.
    atexit.register(shutil.rmtree, collections_root, True)
    sys.path.insert(0, collections_root)


if not _collection_importable():
    for module_name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
        del sys.modules[module_name]
    _add_collection_root()
    importlib.invalidate_caches()
