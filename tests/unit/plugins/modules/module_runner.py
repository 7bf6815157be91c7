# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process with given arguments and capture its result.

The pattern of ansible-core's and community.docker's unit tests: the arguments go in through
``patch_module_args`` (ansible-core >= 2.19) or ``basic._ANSIBLE_ARGS`` (older), and
``exit_json``/``fail_json`` raise instead of printing and exiting.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Dict, Iterator, NoReturn
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager  # type: ignore[no-redef]
    def patch_module_args(args: Dict[str, Any]) -> Iterator[None]:
        with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))):
            yield


class ModuleDone(Exception):
    """Raised by the patched exit_json/fail_json; ``result`` is what the module returned."""

    def __init__(self, result: Dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


def _exit_json(self: basic.AnsibleModule, **kwargs: Any) -> NoReturn:
    kwargs.setdefault("changed", False)
    kwargs.setdefault("failed", False)
    raise ModuleDone(kwargs)


def _fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> NoReturn:
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleDone(kwargs)


def run_module(main: Callable[[], None], args: Dict[str, Any], check_mode: bool = False, diff: bool = False) -> Dict[str, Any]:
    """The module's result dict; ``result["failed"]`` tells whether it called fail_json."""
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    if diff:
        module_args["_ansible_diff"] = True
    with patch_module_args(module_args), \
            mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json):
        try:
            main()
        except ModuleDone as done:
            return done.result
    raise AssertionError("the module returned without calling exit_json or fail_json")
