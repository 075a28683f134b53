"""What every subcommand shares: where the project is, running Ansible, output."""

import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
# Exit codes (documented in --help and the README).
OK, FAILED, USAGE, CANNOT_RUN = 0, 1, 2, 3
# Option names whose values are secrets (the same rule as the filter plugins).
SECRET_OPTION = re.compile(r"""(\b\w*(?:password|secret|key|token|credentials)\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')""")


def layer_catalogue():
    """The layers in Include order, [{name, directory, topics}] (roles/prosody/vars/main.yml)."""
    return yaml.safe_load((ROOT / "roles" / "prosody" / "vars" / "main.yml").read_text())["prosody_layers"]


def layer_label(layer):
    """A layer's short name as in the tree: "01-transport" for stack/01-transport."""
    return layer["directory"].rsplit("/", 1)[-1]


class CannotRun(Exception):
    """The tool cannot do its job here (not an inventory problem): exit code 3."""


def progress(message):
    """A progress line on stderr, so stdout stays the result (text or JSON)."""
    print(f"prosody-stack: {message}", file=sys.stderr, flush=True)


def emit(args, text, data):
    """The result: plain text, or JSON with --json."""
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)


def inventory_path(value):
    """An inventory folder, as given or under inventories/ (development, staging, production)."""
    for candidate in (Path(value), ROOT / "inventories" / value):
        if candidate.is_dir():
            return candidate.resolve()
    shipped = ", ".join(sorted(path.name for path in (ROOT / "inventories").iterdir() if path.is_dir()))
    raise CannotRun(f"inventory {value!r}: no such folder (shipped inventories: {shipped})")


def ansible(tool, *args, cwd=ROOT, env=None):
    """Run an Ansible command from the project's venv; the finished process."""
    executable = VENV_BIN / tool
    if not executable.exists():
        raise CannotRun(f"{executable} is missing: run `make setup` first")
    environment = {**os.environ, "ANSIBLE_CONFIG": str(cwd / "ansible.cfg"), **(env or {})}
    environment.setdefault("CONTAINERS_CONF", str(ROOT / "molecule" / "containers.conf"))
    return subprocess.run(
        [str(executable), *args], cwd=cwd, capture_output=True, text=True, check=False, env=environment
    )


def render(inventory, dest, root=ROOT, extra=(), env=None):
    """Render every host's tree of `inventory` into dest/<host>/ (playbooks/render.yml).

    Returns {host: [problems]} for every host of the inventory: empty lists
    when the build passed.  Ansible reports in JSON (ansible.posix.json), so
    problems are read from the failed tasks' messages, not from screen text.
    """
    done = ansible(
        "ansible-playbook",
        "playbooks/render.yml",
        "-i",
        str(inventory),
        "-e",
        f"render_dir={dest}",
        *extra,
        cwd=root,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", **(env or {})},
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise CannotRun(f"ansible-playbook gave no report (exit {done.returncode}):\n{done.stderr.strip()}") from error
    problems = {host: [] for host in report.get("stats", {})}
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    _file_problems(problems, host, result.get("msg", "failed"))
    if done.returncode != 0 and not any(problems.values()):
        raise CannotRun(f"ansible-playbook failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return problems


def _file_problems(problems, host, message):
    """Each line of a message under the host it names ("host: ..."), else under the failed host."""
    lines = message if isinstance(message, list) else str(message).splitlines()
    for line in lines:
        named, _, rest = str(line).partition(": ")
        owner, text = (named, rest) if named in problems and rest else (host, str(line))
        if text.endswith("nothing was deployed:"):
            continue  # the schema report's count line
        if text not in problems.setdefault(owner, []):
            problems[owner].append(text)


@contextmanager
def scratch(prefix):
    """A private temporary directory (rendered trees hold secrets)."""
    with tempfile.TemporaryDirectory(prefix=f"prosody-stack-{prefix}-") as path:
        os.chmod(path, 0o700)
        yield Path(path)


@functools.cache
def filter_plugin(name):
    """A module of filter_plugins/ (the project's one implementation of a rule), loaded once."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "filter_plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mask_secrets(text):
    """Lua text with the values of secret options replaced (diffs are shown and may be kept)."""
    return SECRET_OPTION.sub(lambda match: f'{match.group(1)}"(secret)"', text)
