"""The fingerprint of a configuration tree, shared by controller and hosts.

The filter prosody_tree_digest names a release after it on the controller;
the module prosody_host_state recomputes it over the files a host holds, so
both sides must hash exactly the same way: this file is the one place.
"""

import hashlib


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
