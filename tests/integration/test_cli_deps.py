"""prosody-stack deps: the dependency graph as text, Graphviz source and a drawing; messages and exit codes."""

import json
import os
import re
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "filter_plugins"))
import prosody_dependencies  # the rules whose edges the graph draws

CLI = ROOT / ".venv" / "bin" / "prosody-stack"


def prosody_stack(*args, env=None):
    return subprocess.run([str(CLI), *args], cwd=ROOT, capture_output=True, text=True, check=False, env=env)


def _sections(text):
    """{layer heading: [edge lines, spaces squeezed]} of the text output."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("  "):
            sections[current].append(re.sub(r"\s+", " ", line.strip()))
        elif not line.endswith("from role defaults"):
            current = line
            sections[current] = []
    return sections


def test_help_has_the_exit_codes():
    done = prosody_stack("deps", "--help")
    assert done.returncode == 0, done.stderr
    assert "Exit codes:" in done.stdout and "3  the tool could not run" in done.stdout


def test_text_lists_known_edges_under_the_layer_that_needs():
    done = prosody_stack("deps")
    assert done.returncode == 0, done.stderr
    sections = _sections(done.stdout)
    assert list(sections) == [
        "01-transport (layer01_transport)",
        "02-stream (layer02_stream)",
        "03-stanza (layer03_stanza)",
        "04-protocol (layer04_protocol)",
        "05-services (layer05_services)",
        "06-storage (layer06_storage)",
        "07-interfaces (layer07_interfaces)",
        "08-integration (layer08_integration)",
    ]
    assert sections["01-transport (layer01_transport)"] == ["(no dependency rule)"]
    expected = {
        "02-stream (layer02_stream)": [
            "option authentication.authentication: ldap needs topic ldap (08-integration)",
            "option encryption.s2s_secure_auth needs module s2s (03-stanza)",
            "module flags needs Prosody 13.0",
        ],
        "03-stanza (layer03_stanza)": [
            "topic routing loads module s2s",
            "option filtering.firewall_scripts needs module firewall",
        ],
        "04-protocol (layer04_protocol)": ["module vcard excludes module vcard_legacy"],
        "06-storage (layer06_storage)": [
            "module muc_mam needs component type muc (05-services)",
            "option backends.storage: sql needs option backends.sql",
        ],
        "07-interfaces (layer07_interfaces)": [
            "topic websocket needs topic http",
            "topic bosh needs topic http",
            "component type http_file_share needs topic http",
            "component type external needs topic components",
        ],
        "08-integration (layer08_integration)": [
            "topic ldap needs option ldap.ldap_base",
            "topic oauth loads module http_oauth2",
            "module http_oauth2 needs Prosody 13.0",
            "topic oauth needs option oauth.oauth2_registration_key",
            "module rest excludes component type rest",
            "component type rest needs Prosody 13.0",
        ],
    }
    for heading, lines in expected.items():
        for line in lines:
            assert line in sections[heading], f"{line!r} not under {heading}: {sections[heading]}"


def test_json_has_every_rule_and_the_component_listener_check():
    done = prosody_stack("deps", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    checks = {edge["check"] for edge in result["edges"]}
    assert {f"prosody_dependencies.{rule.__name__}" for rule in prosody_dependencies.RULES} <= checks
    assert "prosody_schema._external_without_listener" in checks
    assert {
        "source": {"layer": "layer07_interfaces", "kind": "topic", "name": "websocket"},
        "relation": "needs",
        "target": {"layer": "layer07_interfaces", "kind": "topic", "name": "http"},
        "check": "prosody_dependencies.rule_http_layer",
    } in result["edges"]
    assert result["written"] is None


def test_dot_output_is_graphviz_source_dot_can_draw(tmp_path):
    done = prosody_stack("deps", "--format", "dot")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph dependencies {")
    assert '"layer07_interfaces/topic/websocket" -> "layer07_interfaces/topic/http";' in done.stdout
    drawn = subprocess.run(["dot", "-Tsvg"], input=done.stdout, capture_output=True, text=True, check=False)
    assert drawn.returncode == 0, drawn.stderr
    assert "<svg" in drawn.stdout and "websocket" in drawn.stdout


def test_png_is_written(tmp_path):
    output = tmp_path / "dependencies.png"
    done = prosody_stack("deps", "--format", "png", "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert re.fullmatch(rf"wrote {re.escape(str(output))} \(\d+ edges\)\n", done.stdout)


def test_png_needs_an_output_file():
    done = prosody_stack("deps", "--format", "png")
    assert done.returncode == 2
    assert "prosody-stack deps: --format png needs -o FILE" in done.stderr


def test_png_without_graphviz_says_to_run_make_setup(tmp_path):
    # A PATH without Graphviz's dot (the command is run by its full path).
    done = prosody_stack(
        "deps", "--format", "png", "-o", str(tmp_path / "x.png"), env={**os.environ, "PATH": str(tmp_path)}
    )
    assert done.returncode == 3
    assert "prosody-stack deps: Graphviz's dot is missing (Debian package graphviz): run `make setup`" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_readme_shows_the_drawing_and_the_text():
    readme = (ROOT / "README.md").read_text()
    assert "![The dependency graph" in readme and "(docs/dependencies.png)" in readme
    assert (ROOT / "docs" / "dependencies.png").read_bytes().startswith(b"\x89PNG")
    # Each part of the excerpt (between "..." lines) is the real output.
    excerpt = readme.split("$ prosody-stack deps\n", 1)[1].split("```", 1)[0]
    output = prosody_stack("deps").stdout
    for part in excerpt.split("...\n"):
        assert part and part in output, part
