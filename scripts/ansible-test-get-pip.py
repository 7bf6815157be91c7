"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates each sanity-test virtualenv without pip and then runs a get-pip.py it
downloads from a host our machines cannot reach. scripts/sanity places this file in
ansible-test's cache instead (~/.ansible/test/cache/get_pip_<version>.py), so the
bootstrap uses the interpreter's bundled pip (ensurepip) and then installs the pinned pip
version ansible-test asked for from the package index, as the real script would.
"""

from __future__ import annotations

import subprocess
import sys

# Options the real get-pip.py understands but `pip install` does not.
GET_PIP_ONLY_OPTIONS = frozenset({"--no-setuptools", "--no-wheel"})


def main() -> None:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    pip_arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "pip", "install", *pip_arguments])


if __name__ == "__main__":
    main()
