"""List the modules, filters and roles of an installed hearth.matrix collection.

Prints one `<type> <fully qualified name>` line per plugin (type: module, filter or role),
for scripts/test to render each with ansible-doc. Discovered from the files, never from a
hard-coded list: a new module, filter or role is checked the moment it exists.

Usage: python scripts/collection-plugins.py COLLECTIONS_PATH
(COLLECTIONS_PATH contains ansible_collections/hearth/matrix)
"""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections.abc import Iterator

NAMESPACE = "hearth"
NAME = "matrix"


def module_names(collection: pathlib.Path) -> Iterator[str]:
    for path in sorted((collection / "plugins" / "modules").glob("*.py")):
        if path.stem != "__init__":
            yield path.stem


def filter_names(collection: pathlib.Path) -> Iterator[str]:
    """Each filter file may define several filters: ask its FilterModule, as Ansible does."""
    for path in sorted((collection / "plugins" / "filter").glob("*.py")):
        if path.stem == "__init__":
            continue
        plugin = importlib.import_module(f"ansible_collections.{NAMESPACE}.{NAME}.plugins.filter.{path.stem}")
        yield from sorted(plugin.FilterModule().filters())


def role_names(collection: pathlib.Path) -> Iterator[str]:
    roles = collection / "roles"
    if roles.is_dir():
        yield from sorted(path.name for path in roles.iterdir() if path.is_dir())


def main(collections_path: str) -> None:
    # ansible_collections is a namespace package: putting the installed tree first on
    # sys.path makes the filter files importable exactly as installed.
    sys.path.insert(0, collections_path)
    collection = pathlib.Path(collections_path) / "ansible_collections" / NAMESPACE / NAME
    for kind, names in (
        ("module", module_names(collection)),
        ("filter", filter_names(collection)),
        ("role", role_names(collection)),
    ):
        for name in names:
            print(f"{kind} {NAMESPACE}.{NAME}.{name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
