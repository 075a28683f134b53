"""Module prosody_host_state: every difference between a host and a deploy's outcome is found.

The module runs here as Ansible runs it on a host (arguments in, JSON out),
against real directories, files, links and this machine's dpkg database.
"""

import importlib.util
import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Ansible ships module_utils/ with the module; here it is imported by name.
_load("ansible.module_utils.prosody_tree_files", ROOT / "module_utils" / "prosody_tree_files.py")
HOST_STATE = _load("prosody_host_state", ROOT / "library" / "prosody_host_state.py")

TREE = [
    {"path": "prosody.cfg.lua", "content": 'Include "stack/01-transport/tls.cfg.lua"\n'},
    {"path": "stack/01-transport/tls.cfg.lua", "content": 'tls_profile = "intermediate"\n'},
]


def run_module(monkeypatch, **args):
    """The module's JSON result for these arguments."""
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        HOST_STATE.main()
    return json.loads(out.getvalue())


def write_tree(root, files, file_mode=0o640, directory_mode=0o750):
    for entry in files:
        path = root / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(entry["content"])
        path.chmod(file_mode)
    for directory, _subdirectories, _names in os.walk(root):
        Path(directory).chmod(directory_mode)


@pytest.fixture
def digest(filters):
    """The release name the controller gives TREE (filter prosody_tree_digest)."""
    return filters["prosody_tree_digest"](TREE)[:16]


def test_a_tree_as_the_controller_built_it_is_up_to_date(monkeypatch, tmp_path, digest):
    write_tree(tmp_path / "release", TREE)
    (tmp_path / "current").symlink_to("release")
    result = run_module(
        monkeypatch,
        trees={str(tmp_path / "release"): digest},
        links={str(tmp_path / "current"): "release"},
        packages=["dpkg"],
    )
    assert result["differences"] == []
    assert result["up_to_date"] is True
    assert result["changed"] is False


TREE_CHANGES = [
    pytest.param(
        lambda root: (root / "prosody.cfg.lua").write_text("-- edited\n"),
        "holds other files than release {digest}",
        id="edited",
    ),
    pytest.param(
        lambda root: (root / "extra.cfg.lua").write_text(""), "holds other files than release {digest}", id="file-added"
    ),
    pytest.param(
        lambda root: (root / "stack/01-transport/tls.cfg.lua").unlink(),
        "holds other files than release {digest}",
        id="removed",
    ),
    pytest.param(
        lambda root: (root / "prosody.cfg.lua").chmod(0o644), "has other modes or another group", id="world-readable"
    ),
    pytest.param(lambda root: (root / "stack").chmod(0o755), "has other modes or another group", id="directory-mode"),
]


@pytest.mark.parametrize(("change", "difference"), TREE_CHANGES)
def test_any_change_to_a_tree_is_a_difference(monkeypatch, tmp_path, digest, change, difference):
    root = tmp_path / "release"
    write_tree(root, TREE)
    change(root)
    result = run_module(monkeypatch, trees={str(root): digest})
    assert result["up_to_date"] is False
    assert result["differences"] == [f"{root} {difference.format(digest=digest)}"]


def test_a_tree_of_another_group_differs(monkeypatch, tmp_path, digest):
    root = tmp_path / "release"
    write_tree(root, TREE)
    result = run_module(monkeypatch, trees={str(root): digest}, group="no-such-group-here")
    assert result["differences"] == [f"{root} has other modes or another group"]


INVALID_STATES = [
    pytest.param({"files": {"/nonexistent/prosody.cfg.lua": "0" * 64}}, ["/nonexistent/prosody.cfg.lua is missing"]),
    pytest.param({"trees": {"/nonexistent/release": "abc"}}, ["/nonexistent/release is missing"]),
    pytest.param(
        {"links": {"/nonexistent/current": "releases/abc"}},
        ["/nonexistent/current points at nothing, not releases/abc"],
    ),
    pytest.param(
        {"packages": ["dpkg", "prosody-stack-no-such-package"]},
        ["package prosody-stack-no-such-package is not installed"],
    ),
]


@pytest.mark.parametrize(("args", "differences"), INVALID_STATES)
def test_what_is_missing_is_named(monkeypatch, args, differences):
    result = run_module(monkeypatch, **args)
    assert result["differences"] == differences
    assert result["up_to_date"] is False


def test_file_digests_and_links_are_compared(monkeypatch, tmp_path):
    main = tmp_path / "prosody.cfg.lua"
    main.write_text('Include "current/prosody.cfg.lua"\n')
    (tmp_path / "current").symlink_to("releases/old")
    wanted = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of nothing
    result = run_module(
        monkeypatch,
        files={str(main): wanted},
        links={str(tmp_path / "current"): "releases/new"},
    )
    assert result["differences"] == [
        f"{main} differs",
        f"{tmp_path / 'current'} points at releases/old, not releases/new",
    ]


def test_a_service_state_it_cannot_check_is_refused(monkeypatch):
    result = run_module(monkeypatch, services={"prosody": ["running"]})
    assert result["failed"] is True
    assert result["msg"] == "prosody_host_state: services.prosody: ['running'] (allowed: a list of enabled, active)"
