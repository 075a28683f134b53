"""What every part of the benchmark shares: paths, commands, timing, progress lines."""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "benchmarks"
VENV_BIN = ROOT / ".venv" / "bin"
CONTAINERS_CONF = ROOT / "molecule" / "containers.conf"
# Every podman and Ansible call of the run sees the project's engine settings
# (runc, lower ulimits) and the project's ansible.cfg, as the Makefile sets them.
os.environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
os.environ["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")


class BenchmarkError(Exception):
    """A part cannot produce a trustworthy figure (a command failed, outputs differ)."""


def progress(message):
    """A progress line, flushed at once: a run lasts many minutes."""
    print(f"[bench] {message}", flush=True)


def attempt(command, *, env=None, cwd=ROOT, input_text=None):
    """Run a command to completion, whatever its exit code; the finished process."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        input=input_text,
        capture_output=True,
        text=True,
        check=False,
    )


def run(command, *, env=None, cwd=ROOT, what=None, input_text=None):
    """Run a command to completion; raise BenchmarkError with the end of its output if it fails."""
    done = attempt(command, env=env, cwd=cwd, input_text=input_text)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise BenchmarkError(f"{what or command[0]} failed (exit {done.returncode}):\n{tail}")
    return done


def timed(command, **kwargs):
    """(seconds, finished process) of one command, wall-clock time."""
    began = time.perf_counter()
    done = run(command, **kwargs)
    return time.perf_counter() - began, done


def ansible_playbook(playbook, inventory, *args, env=None, what=None):
    """Run ansible-playbook from the project's venv, timed: (seconds, process)."""
    command = [VENV_BIN / "ansible-playbook", playbook, "-i", inventory, *args]
    return timed(command, env=env, what=what or f"ansible-playbook {Path(playbook).name}")


def median(values):
    """Median of a list of numbers, None for an empty list (a part that did not run)."""
    return statistics.median(values) if values else None


def ratio(value, reference):
    """value / reference, None if either is missing."""
    if value is None or not reference:
        return None
    return value / reference


def write_private_json(path, data):
    """Write JSON readable by root only (it may hold secrets)."""
    path = Path(path)
    path.touch(mode=0o600)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def python_version():
    return sys.version.split()[0]
