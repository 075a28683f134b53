"""Unit tests get each filter through its FilterModule, as Ansible does."""

import importlib.util
from pathlib import Path

import pytest

FILTER_DIR = Path(__file__).resolve().parents[2] / "filter_plugins"


def _filters():
    found = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"filter_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.update(module.FilterModule().filters())
    return found


@pytest.fixture(scope="session")
def filters():
    """Every registered filter, by name."""
    return _filters()
