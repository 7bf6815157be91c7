# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-ins for the ``Host`` (AnsibleModule) the module_utils converge functions take."""

from __future__ import annotations

import subprocess
from typing import Any, Dict, List, Optional, Sequence, Tuple

Result = Tuple[int, str, str]


class ScriptedHost:
    """Records every command; answers with the first rule whose argv prefix matches."""

    def __init__(self, check_mode: bool = False, rules: Optional[List[Tuple[Sequence[str], Result]]] = None,
                 default: Result = (0, "", "")) -> None:
        self.check_mode = check_mode
        self.rules: List[Tuple[Sequence[str], Result]] = list(rules or [])
        self.default = default
        self.calls: List[List[str]] = []

    def answer(self, prefix: Sequence[str], result: Result) -> None:
        """Rules added later win over earlier ones."""
        self.rules.insert(0, (prefix, result))

    def run_command(self, args: Sequence[str], **kwargs: Any) -> Result:
        argv = list(args)
        self.calls.append(argv)
        for prefix, result in self.rules:
            if argv[:len(prefix)] == list(prefix):
                return result
        return self.default

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise AssertionError("fail_json called: %s" % msg)


class RealHost:
    """Runs the commands for real (for openssl), recording them."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self.calls: List[List[str]] = []

    def run_command(self, args: Sequence[str], **kwargs: Any) -> Result:
        self.calls.append(list(args))
        done = subprocess.run(list(args), capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise AssertionError("fail_json called: %s" % msg)


class Finder:
    """get_bin_path answers from a dict."""

    def __init__(self, binaries: Dict[str, str]) -> None:
        self.binaries = binaries

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[List[str]] = None) -> Optional[str]:
        return self.binaries.get(arg)
