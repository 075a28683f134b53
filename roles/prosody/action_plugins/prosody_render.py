"""Render a host's whole configuration tree on the controller in one task, and name it.

Ansible's template lookup deep-copies every variable of the host for each
file it renders (including the merged settings and the schemas), and a
set_fact loop pays a task result per file: rendering 32 layer files that
way cost over a second per layer per host.  This action renders every file
of the render plan (filter prosody_render_plan) with one shallow copy of
the host's variables per file, adds release.json, and sets the facts
prosody_tree and prosody_release_id once.
"""

import os
import sys
import time
from pathlib import Path

from ansible._internal._templating import _template_vars
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json
from ansible.template import trust_as_template

# The release name is the digest hosts recompute (module prosody_host_state):
# one implementation, in the checkout's module_utils/.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "module_utils"))
from prosody_tree_files import entries_digest

DOCUMENTATION = r"""
action: prosody_render
short_description: Render a host's tree into the fact prosody_tree and name it (prosody_release_id)
description:
  - Runs on the controller only; no host is contacted.
  - Each entry of O(files) names the path the file gets in the tree and
    either a Jinja2 template (rendered with the host's variables plus the
    entry's O(files[].vars)) or a file copied verbatim.
  - Adds C(release.json), the O(release) description as indented JSON with
    sorted keys.
  - Sets the fact C(prosody_tree), a list of C({path, content}) in the order
    given, and C(prosody_release_id), the first 16 hex digits of the tree's
    digest (filter prosody_tree_digest): identical trees, identical names.
options:
  files:
    description: The render plan, as C({path, template, vars}) or C({path, copy}).
    type: list
    elements: dict
    required: true
  release:
    description: What release.json says about the release (no secret values).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Render the tree
  prosody_render:
    files: "{{ prosody_merged | prosody_render_plan(prosody_layers, roles_dir=prosody_stack_root ~ '/roles') }}"
    release: {host: "{{ inventory_hostname }}", series: "{{ prosody_series }}"}
"""

RETURN = r"""
ansible_facts:
  description: C(prosody_tree), the rendered files as C([{path, content}]), and C(prosody_release_id).
  type: dict
  returned: success
render_seconds:
  description: Seconds each file took to render, by path.
  type: dict
  returned: success
"""


class ActionModule(ActionBase):
    """Render the render plan into prosody_tree (controller side)."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        files, release = self._task.args.get("files"), self._task.args.get("release")
        if not isinstance(files, list) or not all(isinstance(entry, dict) and "path" in entry for entry in files):
            raise AnsibleActionFail("prosody_render: files must be a list of {path, template, vars} or {path, copy}")
        if not isinstance(release, dict):
            raise AnsibleActionFail("prosody_render: release must be a mapping (what release.json says)")
        tree, seconds = [], {}
        for entry in files:
            began = time.perf_counter()
            tree.append({"path": entry["path"], "content": self._content(entry, task_vars)})
            seconds[entry["path"]] = round(time.perf_counter() - began, 6)
        tree.append({"path": "release.json", "content": to_nice_json(release, sort_keys=True)})
        release_id = entries_digest(tree)[:16]
        # render_seconds feeds `prosody-stack profile` (callback_plugins/prosody_timing.py).
        result.update(
            changed=False,
            ansible_facts={"prosody_tree": tree, "prosody_release_id": release_id},
            render_seconds=seconds,
        )
        return result

    def _content(self, entry, task_vars):
        if "copy" in entry:
            return self._read(entry["copy"], entry["path"])
        if "template" not in entry:
            raise AnsibleActionFail(f"prosody_render: {entry['path']}: needs 'template' or 'copy'")
        return self._render(entry["template"], entry.get("vars") or {}, task_vars)

    def _read(self, source, path):
        try:
            return self._loader.get_text_file_contents(source)
        except Exception as error:
            raise AnsibleActionFail(f"prosody_render: {path}: cannot read {source}: {error}") from error

    def _render(self, source, entry_vars, task_vars):
        text = trust_as_template(self._read(source, source))
        # A shallow copy: the template may not change the host's variables,
        # and nothing here writes to them.
        variables = dict(task_vars)
        variables.update(
            _template_vars.generate_ansible_template_vars(
                path=source, fullpath=source, include_ansible_managed="ansible_managed" not in variables
            )
        )
        variables.update(entry_vars)
        templar = self._templar.copy_with_new_env(available_variables=variables, searchpath=[os.path.dirname(source)])
        return templar.template(text, escape_backslashes=False)
