# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of hearth.matrix.component.

With ``role``, builds the component from the role's shared options (module_utils/
role_options.py) and its ``spec``, and checks the role's ``checks``, all on the controller,
so bad input fails before the host is touched, naming the variable. When the variable
``hearth_plan`` is true it stops there and adds the component to the fact
``hearth_planned_components`` (the site playbook then converges every component in one
call). Otherwise it runs the module on the host.

With ``hearth_podman_quadlet`` true every component becomes a Quadlet service (podman only:
with docker the play stops here, naming the variable; the module checks podman's version).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.hearth.matrix.plugins.module_utils.component import components_from_list
from ansible_collections.hearth.matrix.plugins.module_utils.container import SpecError
from ansible_collections.hearth.matrix.plugins.module_utils.engine_mode import (
    ROOTLESS_DEFAULTS,
    EngineModeError,
    is_rootless,
    rootless_settings,
)
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import VARIABLE as QUADLET_VARIABLE
from ansible_collections.hearth.matrix.plugins.module_utils.quadlet import version_refusal
from ansible_collections.hearth.matrix.plugins.module_utils.role_options import (
    SHARED_OPTIONS,
    RoleInputError,
    build_component,
    check_port_clash,
    check_rules,
)
from ansible_collections.hearth.matrix.plugins.plugin_utils.variables import play_variable

PLANNED_FACT = "hearth_planned_components"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role", "spec", "checks", "components", "unit_dir", "remove_units", "remove_files"))

    def _variable(self, task_vars: Mapping[str, Any], name: str) -> Any:
        return play_variable(self._templar, task_vars, name)

    def _role_lookup(self, role: str, task_vars: Mapping[str, Any]) -> Dict[str, Any]:
        lookup: Dict[str, Any] = {}
        for option in SHARED_OPTIONS:
            name = "%s_%s" % (role, option)
            if name in task_vars:
                lookup[name] = self._variable(task_vars, name)
        return lookup

    def _quadlet(self, task_vars: Mapping[str, Any], components: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The components as Quadlet services when hearth_podman_quadlet is true."""
        if QUADLET_VARIABLE not in task_vars:
            return components
        try:
            wanted = boolean(self._variable(task_vars, QUADLET_VARIABLE), strict=True)
        except TypeError:
            raise RoleInputError(QUADLET_VARIABLE, "must be true or false")
        if not wanted:
            return components
        for component in components:
            engine = component.get("engine", "docker")
            if engine != "podman":
                # The podman version is checked on the host, before anything changes there.
                raise RoleInputError(QUADLET_VARIABLE, (version_refusal(engine, ()) or "")[len(QUADLET_VARIABLE) + 1:])
        return [dict(component, quadlet=True) for component in components]

    def _planned(self, task_vars: Mapping[str, Any]) -> List[Dict[str, Any]]:
        if PLANNED_FACT not in task_vars:
            return []
        planned = self._variable(task_vars, PLANNED_FACT)
        return list(planned or [])

    def _rootless(self, task_vars: Mapping[str, Any], components: Any) -> Optional[Dict[str, Any]]:
        """The hearth_rootless_* variables, checked, when a component runs rootless."""
        if not any(is_rootless(str(c.get("engine", ""))) for c in components if isinstance(c, Mapping)):
            return None
        raw = {key: self._variable(task_vars, "hearth_rootless_%s" % key)
               for key in ROOTLESS_DEFAULTS if "hearth_rootless_%s" % key in task_vars}
        return rootless_settings(raw)

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        role = args.get("role")
        plan = False
        try:
            if role:
                lookup = self._role_lookup(role, task_vars)
                enabled = boolean(lookup.get("%s_enabled" % role, True))
                if enabled:
                    check_rules(role, args.get("checks") or [])
                component = self._quadlet(task_vars, [build_component(role, lookup, args.get("spec") if enabled
                                                                      else None)])[0]
                plan = "hearth_plan" in task_vars and boolean(self._variable(task_vars, "hearth_plan"))
                if plan:
                    planned = [item for item in self._planned(task_vars) if item.get("role") != role]
                    check_port_clash(role, component, planned)
                    result.update(changed=False, component=component["name"],
                                  ansible_facts={PLANNED_FACT: planned + [{"role": role, "component": component}]})
                    return result
                components = [component]
            else:
                components = args.get("components")
                if components is None:
                    raise RoleInputError("components", "or role is required")
                components = self._quadlet(task_vars, list(components))
                components_from_list(components)
        except RoleInputError as error:
            result.update(failed=True, msg=str(error))
            return result
        except SpecError as error:
            result.update(failed=True, msg="components: %s" % error)
            return result
        except (TypeError, ValueError, AnsibleError) as error:
            result.update(failed=True, msg="%s: %s" % (role or "components", error))
            return result
        module_args = {"components": components}
        try:
            rootless = self._rootless(task_vars, components)
        except EngineModeError as error:
            result.update(failed=True, msg=str(error))
            return result
        if rootless:
            module_args["rootless"] = rootless
        for passed_on in ("unit_dir", "remove_units", "remove_files"):
            if args.get(passed_on):
                module_args[passed_on] = args[passed_on]
        outcome = self._execute_module(module_name="hearth.matrix.component", module_args=module_args,
                                       task_vars=task_vars)
        # The arguments hold rendered config files: they never go back into the output.
        outcome.pop("invocation", None)
        result.update(outcome)
        return result
