"""Merge layered settings: role defaults < environment profile < group_vars < host_vars.

The merge model, one rule per kind of value (documented in README.md):

1. mapping + mapping: merged key by key, recursively.
2. ``null`` at a higher level removes the key inherited from lower levels
   (Prosody then uses its own default). ``modules: {bosh: false}`` is how a
   module inherited as enabled is switched off.
3. list of named mappings (every item has ``name``) + same: merged item by
   item on ``name``; an item with ``state: absent`` is removed; new names are
   appended in the order they appear.
4. any other list: replaced as a whole by the higher level.
5. scalar: replaced by the higher level (by a mapping too, e.g. ``storage:
   internal`` by ``storage: {archive: sql}``).
A mapping or a list replaced by a plain value is an error that names the key
and both levels: such a clash is almost always a typo.
"""

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prosody_merge
short_description: Deep-merge prosody-stack settings levels, lowest first
description:
  - Merges a list of levels C([[label, mapping], ...]) from lowest to highest
    precedence following the prosody-stack merge model (module docstring and
    README), and returns the merged mapping.
  - The label of each level (for example C(role default) or
    C(host_vars layer01_transport_host)) appears in error messages.
options:
  _input:
    description: Levels as C([label, mapping]) pairs, lowest precedence first.
      A level whose mapping is null or empty contributes nothing.
    type: list
    elements: list
    required: true
  name:
    description: Name of the merged setting, used as the root of key paths in
      error messages.
    type: str
    default: settings
"""

EXAMPLES = r"""
- name: Host level switches one inherited module off and adds a port
  ansible.builtin.debug:
    msg: >-
      {{ [['role default', {'modules': {'bosh': true, 'websocket': true}, 'ports': [5280]}],
          ['host_vars', {'modules': {'bosh': false}, 'ports': [5280, 5281]}]]
         | prosody_merge }}
  # => {'modules': {'bosh': false, 'websocket': true}, 'ports': [5280, 5281]}

- name: Named lists merge by name; state absent removes
  ansible.builtin.debug:
    msg: >-
      {{ [['group_vars', [{'name': 'a.example', 'x': 1}, {'name': 'b.example'}]],
          ['host_vars', [{'name': 'a.example', 'y': 2}, {'name': 'b.example', 'state': 'absent'}]]]
         | prosody_merge }}
  # => [{'name': 'a.example', 'x': 1, 'y': 2}]
"""

RETURN = r"""
_value:
  description: The merged settings (a new object; the inputs are not changed).
  type: raw
"""


def _is_mapping(value):
    return isinstance(value, Mapping)


def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_named_list(value):
    return _is_list(value) and bool(value) and all(_is_mapping(item) and "name" in item for item in value)


def _kind(value):
    if _is_mapping(value):
        return "a mapping"
    if _is_list(value):
        return "a list"
    return f"the value {value!r}"


def _copy(value):
    if _is_mapping(value):
        return {key: _copy(item) for key, item in value.items() if item is not None}
    if _is_named_list(value):
        # "state: absent" is an instruction to the merge, never a setting.
        return [
            _copy({k: v for k, v in item.items() if k != "state"}) for item in value if item.get("state") != "absent"
        ]
    if _is_list(value):
        return [_copy(item) for item in value]
    return value


def _merge_named_lists(lower, higher, path, label):
    merged = {item["name"]: _copy(item) for item in lower}
    for item in higher:
        name = item["name"]
        if item.get("state") == "absent":
            merged.pop(name, None)
        elif name in merged:
            merged[name] = _merge_values(merged[name], item, f"{path}[name={name}]", label)
        else:
            merged[name] = _copy(item)
    for item in merged.values():
        item.pop("state", None)
    return list(merged.values())


def _merge_mappings(lower, higher, path, label):
    merged = {key: _copy(value) for key, value in lower.items()}
    for key, value in higher.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = _merge_values(merged[key], value, f"{path}.{key}", label)
        else:
            merged[key] = _copy(value)
    return merged


def _merge_values(lower, higher, path, label):
    if _is_mapping(lower) and _is_mapping(higher):
        return _merge_mappings(lower, higher, path, label)
    # A mapping may replace a plain value (storage: internal -> {archive: sql}),
    # never the other way round: that is almost always a typo.
    if (_is_mapping(lower) and not _is_mapping(higher)) or (_is_list(lower) and not _is_list(higher)):
        raise AnsibleFilterError(
            f"prosody_merge: {path}: {label} sets {_kind(higher)} where lower levels hold {_kind(lower)}; "
            "use the same kind of value, or null to remove the inherited key first"
        )
    if _is_named_list(lower) and (_is_named_list(higher) or higher == []):
        return _merge_named_lists(lower, higher, path, label) if higher else []
    return _copy(higher)


def prosody_merge(levels, name="settings"):
    """Merge `levels` ([[label, value], ...], lowest first); see DOCUMENTATION."""
    if not _is_list(levels):
        raise AnsibleFilterError(f"prosody_merge: expected a list of [label, value] levels, got {_kind(levels)}")
    merged = None
    for index, level in enumerate(levels):
        if not (_is_list(level) and len(level) == 2 and isinstance(level[0], str)):
            raise AnsibleFilterError(f"prosody_merge: level {index} must be a [label, value] pair, got {level!r}")
        label, value = level
        if value is None or value in ({}, []):
            continue
        merged = _copy(value) if merged is None else _merge_values(merged, value, name, label)
    return {} if merged is None else merged


class FilterModule:
    """Layer merge filters."""

    def filters(self):
        return {"prosody_merge": prosody_merge}
