"""Decide how a host takes a new configuration: nothing, a reload or a restart.

A reload (SIGHUP) keeps every client connected but Prosody re-reads only part
of its configuration; anything else needs a restart, which disconnects
clients (they reconnect).  The decision compares the option fingerprints of
the live release with those of the release being made live (see
prosody_option_manifest) and is a reload only when every difference is one
Prosody applies on reload.
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prosody_apply_method
short_description: Reload or restart, from what changed between two releases
description:
  - Compares two option manifests (C({section: {option: fingerprint}})) and
    returns C(none) when nothing differs, C(reload) when every changed option
    is in O(reloadable) and no restart-only change is given, else C(restart).
  - A missing live manifest (first deploy, or a release written before
    manifests existed) means the differences are unknown: C(restart).
options:
  _input:
    description: Manifest of the release being made live.
    type: dict
    required: true
  live:
    description: Manifest of the live release; null or empty when unknown.
    type: dict
    required: true
  reloadable:
    description: Option names Prosody applies on reload, in any section.
    type: list
    elements: str
    required: true
  reloadable_changes:
    description: Other changes a reload applies (for example C(certificate files)).
    type: list
    elements: str
    default: []
  restart_changes:
    description: Other changes that need a restart (for example C(/etc/prosody/prosody.cfg.lua)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Certificates and TLS settings only
  ansible.builtin.debug:
    msg: >-
      {{ {'global': {'ssl': 'b2'}} | prosody_apply_method({'global': {'ssl': 'a1'}}, ['ssl'],
         reloadable_changes=['certificate files']) }}
  # => {'method': 'reload', 'changes': ['certificate files', 'global: ssl'], 'restart_because': []}

- name: A module list changed
  ansible.builtin.debug:
    msg: "{{ {'global': {'modules_enabled': 'c3'}}
             | prosody_apply_method({'global': {'modules_enabled': 'd4'}}, ['ssl']) }}"
  # => {'method': 'restart', 'changes': ['global: modules_enabled'], 'restart_because': ['global: modules_enabled']}
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    method:
      description: C(none), C(reload) or C(restart).
      type: str
    changes:
      description: Every change, sorted, as C(<section>: <option>) or the given change names.
      type: list
    restart_because:
      description: The changes a reload would not apply (empty unless method is restart).
      type: list
"""

UNKNOWN_LIVE = "options of the live release unknown (first deploy, or a release without release.json)"


def _check_manifest(manifest, what):
    if not isinstance(manifest, Mapping) or not all(isinstance(v, Mapping) for v in manifest.values()):
        raise AnsibleFilterError(f"prosody_apply_method: {what} must map sections to {{option: fingerprint}}")


def _changed_options(target, live):
    """(change, option) for every option added, removed or changed; option None for a whole section."""
    changed = []
    for section in sorted(set(target) | set(live)):
        if (section in target) != (section in live):
            # Prosody creates hosts and components at start only.
            changed.append((f"{section} ({'added' if section in target else 'removed'})", None))
            continue
        wanted, current = target[section], live[section]
        changed += [
            (f"{section}: {name}", name)
            for name in sorted(set(wanted) | set(current))
            if wanted.get(name) != current.get(name)
        ]
    return changed


def prosody_apply_method(target, live, reloadable, reloadable_changes=(), restart_changes=()):
    """How to apply `target` over `live`; see DOCUMENTATION."""
    _check_manifest(target, "the new release's manifest")
    if not isinstance(reloadable, list) or not all(isinstance(name, str) for name in reloadable):
        raise AnsibleFilterError("prosody_apply_method: reloadable must be a list of option names")
    restart_because = list(restart_changes)
    options = []
    if live:
        _check_manifest(live, "the live release's manifest")
        changed = _changed_options(target, live)
        options = [change for change, _ in changed]
        restart_because += [change for change, option in changed if option not in reloadable]
    else:
        restart_because.append(UNKNOWN_LIVE)
    changes = sorted(set(options) | set(reloadable_changes) | set(restart_changes))
    if restart_because:
        method = "restart"
    elif changes:
        method = "reload"
    else:
        method = "none"
    return {"method": method, "changes": changes, "restart_because": sorted(restart_because)}


class FilterModule:
    """Filters that plan how a release reaches a running Prosody."""

    def filters(self):
        return {"prosody_apply_method": prosody_apply_method}
