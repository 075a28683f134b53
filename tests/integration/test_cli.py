"""The prosody-stack command on the shipped inventories: results, messages and exit codes."""

import json
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT

CLI = ROOT / ".venv" / "bin" / "prosody-stack"


def prosody_stack(*args):
    return subprocess.run([str(CLI), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_every_subcommand_has_help_with_the_exit_codes():
    for command in ([], ["validate"], ["render"], ["diff"]):
        done = prosody_stack(*command, "--help")
        assert done.returncode == 0, done.stderr
        assert "Exit codes:" in done.stdout and "3  the tool could not run" in done.stdout


def test_unknown_subcommand_is_a_usage_error():
    done = prosody_stack("deploy")
    assert done.returncode == 2
    assert "invalid choice: 'deploy'" in done.stderr


def test_validate_production_passes_every_host_with_real_prosody():
    done = prosody_stack("validate", "production", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"]
    assert sorted(host["host"] for host in result["hosts"]) == [f"xmpp{n}.example.com" for n in (1, 2, 3)]
    assert all(host["prosody"] == [] for host in result["hosts"])
    # Progress went to stderr, one line per Prosody series checked.
    assert "with Prosody 0.12" in done.stderr and "with Prosody 13.0" in done.stderr


def test_validate_reports_each_hosts_problems_and_exits_1():
    done = prosody_stack("validate", str(ROOT / "tests" / "broken" / "two-hosts-all-errors-at-once"))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "FAIL  xmpp1.example.test: build" in lines
    assert "        layer01_transport.ports.c2s_ports[0]: 70000 is out of range (allowed: 1 to 65535)" in lines
    assert "FAIL  xmpp2.example.test: build" in lines
    assert lines[-1] == "0 of 2 hosts valid"


def test_validate_names_a_broken_policy():
    done = prosody_stack("validate", str(ROOT / "tests" / "broken" / "policy-hashed-passwords"))
    assert done.returncode == 1
    assert "policy hashed-passwords: passwords stored as salted hashes or not at all" in done.stdout


def test_validate_unknown_inventory_cannot_run():
    done = prosody_stack("validate", "nosuch")
    assert done.returncode == 3
    assert "inventory 'nosuch': no such folder (shipped inventories: development, production, staging)" in done.stderr


def test_render_writes_every_tree(tmp_path):
    done = prosody_stack("render", "staging", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(path.parent.name for path in (tmp_path / "out").glob("*/prosody.cfg.lua")) == [
        "xmpp-staging-1",
        "xmpp-staging-2",
    ]


def _changed_copy(tmp_path):
    """The broken-corpus baseline, and a copy with one option changed and a component secret."""
    copy = tmp_path / "changed"
    shutil.copytree(ROOT / "tests" / "broken" / "_baseline", copy)
    settings = copy / "group_vars" / "all" / "main.yml"
    data = yaml.safe_load(settings.read_text())
    data["layer01_transport"] = {"connections": {"c2s_timeout": 42}}
    data["layer07_interfaces"] = {"components": {"enabled": True, "component_interfaces": ["127.0.0.1"]}}
    data["prosody_domains"][0]["components"].append(
        {"name": "bridge.example.test", "type": "external", "component_secret": "s3cret-value"}
    )
    settings.write_text(yaml.safe_dump(data))
    return copy


def test_diff_between_inventories_shows_the_change_and_masks_secrets(tmp_path):
    done = prosody_stack("diff", str(ROOT / "tests" / "broken" / "_baseline"), str(_changed_copy(tmp_path)))
    assert done.returncode == 1, done.stderr
    assert "-c2s_timeout = 300\n+c2s_timeout = 42\n" in done.stdout
    assert '+    component_secret = "(secret)"' in done.stdout or '+component_secret = "(secret)"' in done.stdout
    assert "s3cret-value" not in done.stdout
    assert done.stdout.rstrip().endswith("1 of 1 tree(s) differ")


def test_diff_of_a_revision_with_itself_is_empty():
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    done = prosody_stack("diff", "development", "--rev", revision.stdout.strip(), "--rev", "HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "no differences"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "development"], "say what to compare with: a second inventory, --rev REV or --live HOST"),
        (["diff", "development", "--rev", "no-such-revision"], "git revision 'no-such-revision'"),
        (["diff", "staging", "production"], "no host in common"),
    ],
)
def test_diff_cannot_run_says_why(args, message):
    done = prosody_stack(*args)
    assert done.returncode == 3
    assert message in done.stderr
