"""prosody-stack layer-test: each layer alone, checked by real Prosody; messages and exit codes."""

import json
import subprocess

import pytest
from conftest import IMAGES, ROOT
from prosody_stack_cli.layer_test import layer_argument

CLI = ROOT / ".venv" / "bin" / "prosody-stack"
LAYERS = [
    "01-transport",
    "02-stream",
    "03-stanza",
    "04-protocol",
    "05-services",
    "06-storage",
    "07-interfaces",
    "08-integration",
]


def prosody_stack(*args):
    return subprocess.run([str(CLI), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_help_has_the_exit_codes():
    done = prosody_stack("layer-test", "--help")
    assert done.returncode == 0, done.stderr
    assert "Exit codes:" in done.stdout and "3  the tool could not run" in done.stdout


@pytest.mark.parametrize("spelling", ["05-services", "layer05_services", "services"])
def test_a_layer_has_three_spellings(spelling):
    assert [layer["name"] for layer in layer_argument(spelling)] == ["layer05_services"]


def test_every_layer_passes_alone_on_both_series():
    # One inventory of 16 hosts, one build, one container per series.
    done = prosody_stack("layer-test", "all", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"]
    assert [(r["layer"], r["series"]) for r in result["results"]] == [
        (layer, series) for layer in LAYERS for series in IMAGES
    ]
    for r in result["results"]:
        assert r["ok"] and r["build"] == [] and r["prosody"] == [], r
        assert r["given"] == ([] if r["layer"] == "01-transport" else ["layer01_transport.tls"])
    by_case = {(r["layer"], r["series"]): r for r in result["results"]}
    # mod_http_oauth2 and mod_rest exist only on Prosody 13 (prosody-stack deps).
    assert by_case["08-integration", "0.12"]["on"] == ["ldap", "webhooks"]
    assert by_case["08-integration", "0.12"]["off"] == {"oauth": "needs Prosody 13.0", "apis": "needs Prosody 13.0"}
    assert by_case["08-integration", "13.0"]["on"] == ["ldap", "oauth", "webhooks", "apis"]
    assert by_case["01-transport", "13.0"]["on"] == ["ports", "tls", "compression", "connections"]
    assert "with Prosody 0.12" in done.stderr and "with Prosody 13.0" in done.stderr


def test_a_layer_without_the_tls_topic_fails_and_says_why():
    # One line per layer and series; 01-transport has the topic itself.
    done = prosody_stack("layer-test", "stanza", "transport", "--series", "0.12", "--alone")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok    0.12  01-transport: ports, tls, compression, connections on"
    assert lines[1] == "FAIL  0.12  03-stanza: prosodyctl check config (routing, filtering, validation, processing on)"
    assert "        You require encryption but mod_tls is not enabled." in lines
    assert any("Error indexing certificate directory /trees/03-stanza-0.12/certs" in line for line in lines)
    assert lines[-1] == "1 of 2 layer trees pass"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["layer-test", "transprot"],
            "argument LAYER: unknown layer 'transprot' (allowed: 01-transport, 02-stream, 03-stanza, 04-protocol, "
            "05-services, 06-storage, 07-interfaces, 08-integration, all; or e.g. layer01_transport, transport)",
        ),
        (["layer-test", "transport", "--series", "0.11"], "argument --series: invalid choice: '0.11'"),
    ],
)
def test_unknown_layer_or_series_is_a_usage_error(args, message):
    done = prosody_stack(*args)
    assert done.returncode == 2
    assert message in done.stderr
