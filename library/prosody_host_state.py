#!/usr/bin/python
"""Tell, in one round trip, whether a host already holds what a deploy would write."""

import grp
import hashlib
import os
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosody_tree_files import (
    DIRECTORY_MODE,
    FILE_MODE,
    directory_modes_match,
    read_tree,
    tree_digest,
    tree_groups,
)

DOCUMENTATION = r"""
module: prosody_host_state
short_description: Compare a host with the state a deploy would leave, without changing it
description:
  - Checks everything given in one module run and lists each difference.
    A deploy calls it first and skips its other tasks when there is none,
    so an unchanged host costs one round trip instead of one per task.
  - Never changes anything; supports check mode.
options:
  packages:
    description: Debian packages that must be installed.
    type: list
    elements: str
    default: []
  files:
    description: Files that must exist with this SHA-256 of their content, as C({path: sha256}).
    type: dict
    default: {}
  trees:
    description: Directories written by the module prosody_tree that must hold exactly the files
      fingerprinted by this digest (filter prosody_tree_digest; a prefix is enough), with
      C(prosody_tree)'s modes and group, as C({path: digest}).
    type: dict
    default: {}
  links:
    description: Symbolic links that must point at this target, as C({path: target}).
    type: dict
    default: {}
  group:
    description: Group that must own the O(trees).
    type: str
  services:
    description: systemd units and the states they must be in (C(enabled), C(active)),
      as C({unit: [state, ...]}).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Is the live release already the one built?
  prosody_host_state:
    trees: {/etc/prosody/releases/0294c99aea7d43d6: 0294c99aea7d43d6}
    links: {/etc/prosody/current: releases/0294c99aea7d43d6}
    services: {prosody: [active]}
  register: prosody_release_state
"""

RETURN = r"""
differences:
  description: One line per thing that differs from what was asked; empty when the host is up to date.
  type: list
  elements: str
  returned: always
up_to_date:
  description: Whether C(differences) is empty.
  type: bool
  returned: always
"""


def missing_packages(packages):
    """Packages dpkg does not list as installed."""
    if not packages:
        return []
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.endswith(" installed")}
    return [f"package {name} is not installed" for name in packages if name not in installed]


def differing_files(files):
    problems = []
    for path, wanted in sorted(files.items()):
        try:
            with open(path, "rb") as handle:
                actual = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            problems.append(f"{path} is missing")
            continue
        if actual != wanted:
            problems.append(f"{path} differs")
    return problems


def differing_trees(trees, gid):
    """Trees that are missing, hold other files, or differ from prosody_tree's modes or the group."""
    problems = []
    for root, wanted in sorted(trees.items()):
        current = read_tree(root) if not os.path.islink(root) else None
        if current is None:
            problems.append(f"{root} is missing")
        elif not tree_digest((path, "", data) for path, (data, _mode) in current.items()).startswith(wanted):
            problems.append(f"{root} holds other files than release {wanted}")
        elif (
            any(mode != FILE_MODE for _data, mode in current.values())
            or not directory_modes_match(root, DIRECTORY_MODE)
            or (gid is not None and tree_groups(root) != {gid})
        ):
            problems.append(f"{root} has other modes or another group")
    return problems


def differing_links(links):
    problems = []
    for path, target in sorted(links.items()):
        actual = os.readlink(path) if os.path.islink(path) else None
        if actual != target:
            problems.append(f"{path} points at {actual or 'nothing'}, not {target}")
    return problems


def differing_services(services):
    problems = []
    for unit, states in sorted(services.items()):
        for state in states:
            verb = {"enabled": "is-enabled", "active": "is-active"}[state]
            done = subprocess.run(["systemctl", verb, "--quiet", unit], capture_output=True, check=False)
            if done.returncode != 0:
                problems.append(f"{unit} is not {state}")
    return problems


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "files": {"type": "dict", "default": {}},
            "trees": {"type": "dict", "default": {}},
            "links": {"type": "dict", "default": {}},
            "group": {"type": "str"},
            "services": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    for unit, states in params["services"].items():
        if not isinstance(states, list) or not set(states) <= {"enabled", "active"}:
            allowed = "a list of enabled, active"
            module.fail_json(msg=f"prosody_host_state: services.{unit}: {states!r} (allowed: {allowed})")
    gid = None
    if params["group"]:
        try:
            gid = grp.getgrnam(params["group"]).gr_gid
        except KeyError:
            gid = -1  # no such group yet: every tree differs
    differences = (
        missing_packages(params["packages"])
        + differing_files(params["files"])
        + differing_trees(params["trees"], gid)
        + differing_links(params["links"])
        + differing_services(params["services"])
    )
    module.exit_json(changed=False, differences=differences, up_to_date=not differences)


if __name__ == "__main__":
    main()
