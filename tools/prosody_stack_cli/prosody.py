"""Real Prosody in throwaway containers (no network) to check rendered trees."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from .common import ROOT, CannotRun, filter_plugin, progress

# Prosody series -> the project's image with that Debian release's package (molecule/images/build.sh).
IMAGES = {"0.12": "localhost/prosody-stack:bookworm", "13.0": "localhost/prosody-stack:trixie"}
# podman's engine settings for these machines (molecule/containers.conf explains them).
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "molecule" / "containers.conf"))


class ProsodyContainer:
    """A container of one Prosody series with host folders mounted read-only; a context manager."""

    def __init__(self, series, mounts):
        if series not in IMAGES:
            raise CannotRun(f"Prosody series {series!r} has no image (known: {', '.join(IMAGES)})")
        self.series = series
        self.name = f"prosody-stack-check-{uuid.uuid4().hex[:8]}"
        self.mounts = mounts

    def __enter__(self):
        volumes = [arg for host, guest in self.mounts.items() for arg in ("-v", f"{host}:{guest}:ro")]
        image = IMAGES[self.series]
        done = subprocess.run(
            [
                "podman",
                "run",
                "-d",
                "--rm",
                "--network",
                "none",
                "--name",
                self.name,
                *volumes,
                image,
                "sleep",
                "infinity",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise CannotRun(f"cannot start {IMAGES[self.series]} (run `make setup`): {done.stderr.strip()}")
        return self

    def exec(self, *command):
        return subprocess.run(["podman", "exec", self.name, *command], capture_output=True, text=True, check=False)

    def __exit__(self, *_exc):
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], capture_output=True, check=False)


def open_for_prosody(path):
    """Trees are written 0640/0750 (they may hold secrets); Prosody reads them as its own user in the container."""
    subprocess.run(["chmod", "-R", "a+rX", str(path)], check=True)


def check_config(container, tree, guest_tree):
    """Findings of `prosodyctl check config` on one tree, read strictly (empty: passed)."""
    done = container.exec("prosodyctl", "--config", f"{guest_tree}/prosody.cfg.lua", "check", "config")
    expected = [f"{guest_tree}/{path.relative_to(tree)}" for path in sorted(Path(tree).rglob("*.lua"))]
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    # filter_plugins/prosody_check.py: the one strict reading of `check config` output.
    return filter_plugin("prosody_check").prosody_check_findings(lines, done.returncode, expected)


def tree_series(tree):
    """The Prosody series a rendered tree was made for (its release.json)."""
    return json.loads((Path(tree) / "release.json").read_text())["series"]


def check_trees(trees, hosts):
    """{host: {"findings": [...], "seconds": s}}: strict `check config` of each tree by Prosody of its series.

    One container per series (the series each tree was made for, from its release.json).
    """
    by_series = {}
    for host in hosts:
        by_series.setdefault(tree_series(Path(trees) / host), []).append(host)
    open_for_prosody(trees)
    results = {}
    for series, members in sorted(by_series.items()):
        progress(f"prosodyctl check config on {len(members)} tree(s) with Prosody {series}")
        with ProsodyContainer(series, {trees: "/trees"}) as container:
            for host in members:
                began = time.monotonic()
                findings = check_config(container, Path(trees) / host, f"/trees/{host}")
                results[host] = {"findings": findings, "seconds": time.monotonic() - began}
    return results
