# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user's stack variables (hearth_*): checked, turned into the topology's input.

This is the one place that knows how a hearth_* variable maps onto the topology's input
and back, so that every error names the variable the user wrote (``hearth_mailer_sender``),
never the internal field (``mailer.sender``). The rule is simple on purpose: the option
``X`` of the ``hearth.matrix.stack`` action is the user's variable ``hearth_X``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import ENGINE_MODES, EngineModeError, check_engine
from ansible_collections.hearth.matrix.plugins.module_utils.topology import (
    COMPONENTS,
    DEFAULT_NETWORK,
    DEFAULT_SUBNET,
    TopologyError,
    check_hostname,
    compute_topology,
)

PREFIX = "hearth_"
ENGINES = ENGINE_MODES
# Components on when the user says nothing: the smallest stack that serves clients.
DEFAULT_ENABLED = {"postgres": True, "synapse": True, "nginx_proxy": True}
DEFAULTS: Dict[str, Any] = {
    "engine": "docker",
    "base_dir": "/opt/hearth-matrix",
    "public_identity_server": "https://vector.im",
    "matrix_hostname": "",
    "element_hostname": "",
    "mailer_sender": "",
    "external_database": None,
    "external_database_password": "",
    "images": {},
    "network_subnet": DEFAULT_SUBNET,
    "extra_hosts": {},
}
OPTIONS = tuple(DEFAULTS) + ("server_name",) + tuple("%s_enabled" % name for name in COMPONENTS)
# Topology input field -> action option (= hearth_<option>). Fields not listed here and not
# under "components." are the same word in both (server_name, matrix_hostname ...).
_FIELD_OPTIONS = {"mailer.sender": "mailer_sender", "mailer": "mailer_sender"}
# What Ansible itself accepts as a boolean written as text (inventory files are text).
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# name[:port]/path[:tag][@digest], lowercase repository as the registries require.
_IMAGE_RE = re.compile(
    r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


class StackVariableError(ValueError):
    """Bad stack input; the message is one line that starts with the user's variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__("%s %s" % (variable, message))
        self.variable = variable


def user_variable(field_name: str) -> str:
    """The hearth_* variable a topology input field comes from (``mailer.sender`` ->
    ``hearth_mailer_sender``; ``external_database.host`` -> ``hearth_external_database.host``)."""
    if field_name.startswith("components."):
        return "%s%s_enabled" % (PREFIX, field_name[len("components."):])
    if field_name in _FIELD_OPTIONS:
        return PREFIX + _FIELD_OPTIONS[field_name]
    head, dot, rest = field_name.partition(".")
    if head in OPTIONS:
        return PREFIX + head + dot + rest
    # Not set by a user variable (e.g. the stack network): name the field as it is.
    return field_name


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise StackVariableError(PREFIX + name, "must be true or false, got %r" % (value,))


def _check_images(images: Any) -> Dict[str, str]:
    if images is None:
        return {}
    if not isinstance(images, Mapping):
        raise StackVariableError(PREFIX + "images", "must map component names to image references "
                                 "(e.g. {synapse: localhost/synapse:1.2}), got %r" % (images,))
    for component, image in images.items():
        if component not in COMPONENTS:
            raise StackVariableError("%simages.%s" % (PREFIX, component), "is not a component (known: %s)"
                                     % ", ".join(COMPONENTS))
        if not isinstance(image, str) or not _IMAGE_RE.match(image):
            raise StackVariableError("%simages.%s" % (PREFIX, component),
                                     "must be an image reference like localhost/hearth/synapse:1.2, got %r" % (image,))
    return dict(images)


def _required_text(option: str, value: Any, what: str) -> str:
    if value is None or value == "":
        raise StackVariableError(PREFIX + option, "is required: %s" % what)
    if not isinstance(value, str):
        raise StackVariableError(PREFIX + option, "must be a string, got %r" % (value,))
    return value


def stack_input(variables: Mapping[str, Any]) -> Dict[str, Any]:
    """The topology's input from the action's options (hearth_* minus the prefix)."""
    unknown = sorted(set(variables) - set(OPTIONS))
    if unknown:
        # A programming error in a playbook, not user input: name the option as written.
        raise StackVariableError(", ".join(unknown), "is not an option of hearth.matrix.stack")
    values = dict(DEFAULTS, **{key: value for key, value in variables.items() if value is not None})
    server_name = _required_text("server_name", variables.get("server_name"), "the Matrix server name, e.g. example.org")
    try:
        check_engine(values["engine"], PREFIX + "engine")
    except EngineModeError as error:
        raise StackVariableError(error.variable, str(error)[len(error.variable) + 1:]) from None
    base_dir = values["base_dir"]
    if not isinstance(base_dir, str) or not base_dir.startswith("/"):
        raise StackVariableError(PREFIX + "base_dir", "must be an absolute path, got %r" % (base_dir,))
    enabled = {name: _flag("%s_enabled" % name, variables.get("%s_enabled" % name, DEFAULT_ENABLED.get(name, False)))
               for name in COMPONENTS}
    _check_images(values["images"])
    if enabled["synapse"] and not enabled["postgres"] and not values["external_database_password"]:
        raise StackVariableError(PREFIX + "external_database_password",
                                 "is required when hearth_postgres_enabled is false")
    return {
        "server_name": server_name,
        "matrix_hostname": values["matrix_hostname"],
        "element_hostname": values["element_hostname"],
        "components": enabled,
        "public_identity_server": values["public_identity_server"],
        "external_database": values["external_database"],
        "mailer": {"sender": values["mailer_sender"]},
        "network": DEFAULT_NETWORK,
        "network_subnet": values["network_subnet"],
        "extra_hosts": values["extra_hosts"],
        "engine": values["engine"],
        "base_dir": base_dir,
        "images": values["images"] or {},
    }


def check_stack(variables: Mapping[str, Any]) -> Dict[str, Any]:
    """Check the user's stack variables and compute the topology.

    Raises StackVariableError whose message names the hearth_* variable to fix.
    """
    stack = stack_input(variables)
    try:
        if stack["element_hostname"] and not stack["components"]["element"]:
            # The topology looks at it only with Element on; a typo must not wait until then.
            check_hostname("element_hostname", stack["element_hostname"])
        return compute_topology(stack)
    except TopologyError as error:
        raise StackVariableError(user_variable(error.field), error.detail(user_variable)) from error
