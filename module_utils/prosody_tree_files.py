"""A configuration tree as the controller builds it and as hosts hold it.

The filter prosody_tree_digest and the action prosody_render name a release
after its digest on the controller; the module prosody_host_state recomputes
it over the files a host holds; the module prosody_tree writes trees with
these modes and reads them back to tell whether anything changed.  Both
sides must read and hash exactly the same way: this file is the one place.
"""

import hashlib
import os

# What prosody_tree writes unless told otherwise: readable by the service's
# group, never by everyone (trees hold secrets).
FILE_MODE = 0o640
DIRECTORY_MODE = 0o750


def tree_digest(files):
    """SHA-256 over (path, mode, content bytes) triples, in path order.

    Each part is length-prefixed, so moving bytes between a path and its
    content, or between two files, changes the digest.
    """
    digest = hashlib.sha256()
    for path, mode, content in sorted(files, key=lambda item: item[0]):
        for data in (path.encode("utf-8"), mode.encode("utf-8"), content):
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


def entries_digest(entries):
    """tree_digest of rendered entries [{path, content, mode?}] (content as text)."""
    return tree_digest(
        (entry["path"], str(entry.get("mode", "")), entry["content"].encode("utf-8")) for entry in entries
    )


def read_tree(dest):
    """{relative path: (bytes, mode)} of the files now under dest, or None when dest is no directory."""
    if not os.path.isdir(dest):
        return None
    tree = {}
    for root, _dirs, names in os.walk(dest):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                tree[os.path.relpath(full, dest)] = (handle.read(), os.stat(full).st_mode & 0o7777)
    return tree


def directory_modes_match(dest, directory_mode):
    """Whether dest and every directory below it have directory_mode."""
    return all(os.stat(root).st_mode & 0o7777 == directory_mode for root, _dirs, _names in os.walk(dest))


def tree_groups(dest):
    """The groups (gids) owning dest and everything below it."""
    groups = set()
    for root, _dirs, names in os.walk(dest):
        groups.add(os.stat(root).st_gid)
        groups.update(os.stat(os.path.join(root, name)).st_gid for name in names)
    return groups
