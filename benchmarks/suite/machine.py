"""The machine a run measured: hardware, system, tool versions, load."""

import configparser
import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path

from .common import ROOT, attempt
from .containers import IMAGES


def _first_match(path, pattern):
    try:
        match = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _debian_release():
    """'Debian GNU/Linux 12 (bookworm) (12.5)': the release name and its point release."""
    name = _first_match("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)')
    return f"{name} ({_first_match('/etc/debian_version', r'(.+)')})"


def _memory_gib():
    kib = _first_match("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    return round(int(kib) / 1024 / 1024, 1) if kib else None


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def prosody_versions():
    """{series: Debian package version of Prosody in the series' image}."""
    versions = {}
    for series, image in IMAGES.items():
        # A throwaway container without any network: it only reads the package database.
        query = ["dpkg-query", "--show", "--showformat", "${Version}", "prosody"]
        done = attempt(["podman", "run", "--rm", "--network", "none", image, *query])
        versions[series] = done.stdout.strip() if done.returncode == 0 else f"unknown ({done.stderr.strip()[:80]})"
    return versions


def ansible_forks():
    config = configparser.ConfigParser()
    config.read(ROOT / "ansible.cfg")
    return config.getint("defaults", "forks", fallback=5)


def load_average():
    return [round(value, 2) for value in os.getloadavg()]


def describe():
    """Everything results.md prints about the machine, as a dict."""
    podman = attempt(["podman", "--version"]).stdout.strip()
    return {
        "cpu_model": _first_match("/proc/cpuinfo", r"^model name\s*:\s*(.+)$"),
        "cpu_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "debian": _debian_release(),
        "python": sys.version.split()[0],
        "ansible_core": _package_version("ansible-core"),
        "jinja2": _package_version("Jinja2"),
        "mitogen": _package_version("mitogen"),
        "podman": podman,
        "prosody": prosody_versions(),
        "ansible_forks": ansible_forks(),
    }
