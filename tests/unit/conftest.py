"""Unit tests get each filter through its FilterModule, as Ansible does."""

import importlib.util
from pathlib import Path

import pytest

FILTER_DIR = Path(__file__).resolve().parents[2] / "filter_plugins"


def filter_module(name):
    """Load filter_plugins/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"filter_{name}", FILTER_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _filters():
    found = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        found.update(filter_module(path.stem).FilterModule().filters())
    return found


@pytest.fixture(scope="session")
def filters():
    """Every registered filter, by name."""
    return _filters()
