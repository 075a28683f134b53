#!/usr/bin/python
"""Write a whole configuration tree in one task."""

import errno
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosody_tree_files import DIRECTORY_MODE, FILE_MODE, directory_modes_match, read_tree

DOCUMENTATION = r"""
module: prosody_tree
short_description: Write a tree of files into a directory in one step
description:
  - Makes O(dest) hold exactly the given files (and nothing else), writing
    them into a fresh sibling directory first and renaming it into place, so
    a reader never sees a half-written tree.
  - Reports no change, and writes nothing, when O(dest) already holds exactly
    these files with these contents and modes.
  - One task for the whole tree: a per-file template task costs a round trip
    per file.
options:
  dest:
    description: Directory that will hold the tree.
    type: path
    required: true
  files:
    description: Files as C({path, content}); paths are relative, without C(..).
    type: list
    elements: dict
    required: true
  mode:
    description: Mode of every file.
    type: str
    default: "0640"
  directory_mode:
    description: Mode of every directory, O(dest) included.
    type: str
    default: "0750"
  group:
    description: Group owning the tree (the service's group, so it can read
      files that are not world-readable).  Unset keeps the default group.
    type: str
  diff_against:
    description: In diff mode, compare the files with this directory (for
      example the live release) instead of O(dest).
    type: path
  mask:
    description: Strings (secrets) replaced by C(********) in diffs.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode and diff mode; diffs never show the O(mask) strings.
"""

EXAMPLES = r"""
- name: Render a host's tree locally
  prosody_tree:
    dest: /tmp/render/xmpp1
    files:
      - {path: prosody.cfg.lua, content: "pidfile = \"/run/prosody/prosody.pid\"\n"}
"""

RETURN = r"""
files:
  description: Number of files in the tree.
  type: int
  returned: always
"""


def _safe_relative(path):
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts


def _masked(data, mask):
    text = data.decode("utf-8", errors="replace")
    for secret in sorted(mask, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "********")
    return text


def _diffs(before_tree, wanted, before_root, dest, mask):
    """One Ansible diff per file that differs, secrets masked."""
    before_tree = before_tree or {}
    diffs = []
    for path in sorted(set(before_tree) | set(wanted)):
        before = before_tree.get(path, (b"", None))[0]
        after = wanted.get(path, b"")
        if before != after:
            diffs.append(
                {
                    "before_header": os.path.join(before_root, path) if path in before_tree else "(absent)",
                    "after_header": os.path.join(dest, path) if path in wanted else "(removed)",
                    "before": _masked(before, mask),
                    "after": _masked(after, mask),
                }
            )
    return diffs


def _retire(dest, parent):
    """Move the old tree aside and delete it."""
    retired = tempfile.mkdtemp(prefix=".prosody-tree-old-", dir=parent)
    try:
        os.rename(dest, os.path.join(retired, "tree"))
    except OSError as error:
        # overlayfs (containers) cannot rename a directory of a lower layer.
        if error.errno != errno.EXDEV:
            raise
        shutil.rmtree(dest)
    shutil.rmtree(retired)


def _write_tree(dest, wanted, mode, directory_mode, gid):
    parent = os.path.dirname(dest.rstrip("/")) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".prosody-tree-", dir=parent)
    try:
        for path, data in wanted.items():
            full = os.path.join(staging, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as handle:
                handle.write(data)
        for root, dirs, names in os.walk(staging):
            for entry, entry_mode in [(root, directory_mode)] + [(os.path.join(root, n), mode) for n in names]:
                os.chmod(entry, entry_mode)
                if gid is not None:
                    os.chown(entry, -1, gid)
            dirs.sort()
        if os.path.isdir(dest):
            _retire(dest, parent)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "dict", "required": True},
            "mode": {"type": "str", "default": f"{FILE_MODE:04o}"},
            "directory_mode": {"type": "str", "default": f"{DIRECTORY_MODE:04o}"},
            "group": {"type": "str"},
            "diff_against": {"type": "path"},
            # no_log: Ansible then censors these strings wherever they appear
            # in the result, the logged invocation (file contents) included.
            "mask": {"type": "list", "elements": "str", "default": [], "no_log": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    mode, directory_mode = int(params["mode"], 8), int(params["directory_mode"], 8)
    wanted = {}
    for entry in params["files"]:
        path, content = entry.get("path"), entry.get("content")
        if not isinstance(path, str) or not _safe_relative(path) or not isinstance(content, str):
            module.fail_json(msg=f"prosody_tree: each file needs a relative path (no '..') and text content: {path!r}")
        wanted[path] = content.encode("utf-8")
    gid = None
    if params["group"]:
        import grp  # noqa: PLC0415 - only needed when a group is asked for

        try:
            gid = grp.getgrnam(params["group"]).gr_gid
        except KeyError:
            module.fail_json(msg=f"prosody_tree: group {params['group']!r} does not exist on this host")

    current = read_tree(params["dest"])
    unchanged = (
        current == {path: (data, mode) for path, data in wanted.items()}
        and directory_modes_match(params["dest"], directory_mode)
        and (gid is None or os.stat(params["dest"]).st_gid == gid)
    )
    result = {"changed": not unchanged, "files": len(wanted)}
    if module._diff:
        before_root = params["diff_against"] or params["dest"]
        before_tree = read_tree(before_root) if params["diff_against"] else current
        result["diff"] = _diffs(before_tree, wanted, before_root, params["dest"], params["mask"])
    if not unchanged and not module.check_mode:
        _write_tree(params["dest"], wanted, mode, directory_mode, gid)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
