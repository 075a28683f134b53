"""Shared fixtures: rendered trees of every inventory, and real Prosody in podman."""

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from prosody_stack_cli.prosody import IMAGES, ProsodyContainer  # one way to run Prosody for a check

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("development", "staging", "production")
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "molecule" / "containers.conf"))


def ansible_playbook(*args):
    """Run ansible-playbook from the project's venv; return the finished process."""
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def render(inventory, render_dir, *extra):
    """Render every host of an inventory into render_dir; fail with Ansible's output."""
    done = ansible_playbook("playbooks/render.yml", "-i", str(inventory), "-e", f"render_dir={render_dir}", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(path for path in Path(render_dir).iterdir() if path.is_dir())


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """{(environment, series): [host tree dirs]} for every inventory on both series."""
    base = tmp_path_factory.mktemp("rendered")
    trees = {}
    for environment in ENVIRONMENTS:
        for series in IMAGES:
            out = base / f"{environment}-{series}"
            trees[environment, series] = render(
                ROOT / "inventories" / environment, out, "-e", f"prosody_series={series}"
            )
    # Trees are written 0640/0750 (they may hold secrets); inside the test
    # container Prosody reads them as its own user, so open up this copy.
    subprocess.run(["chmod", "-R", "a+rX", base], check=True)
    return base, trees


@pytest.fixture(scope="session")
def prosody(rendered):
    """{series: ProsodyContainer} with /trees (rendered) and /tools mounted."""
    subprocess.run([str(ROOT / "molecule" / "images" / "build.sh")], check=True)
    base, _trees = rendered
    with contextlib.ExitStack() as stack:
        mounts = {base: "/trees", ROOT / "tools": "/tools"}
        yield {series: stack.enter_context(ProsodyContainer(series, mounts)) for series in IMAGES}


def parse_with_prosody(container, config_path):
    """Load a tree with Prosody's own parser: {'sections': {...}, 'files': [...]}."""
    # Use the interpreter Prosody itself runs on (prosodyctl's #! line).
    interpreter = 'exec $(head -n1 /usr/bin/prosodyctl | cut -c3-) "$0" "$1"'
    done = container.exec("sh", "-c", interpreter, "/tools/prosody-config-dump.lua", config_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
