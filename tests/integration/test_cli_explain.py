"""prosody-stack explain: the value, file and section, and the chain of sources, on real inventories.

production is rendered once (prosody-stack render) and the cases on it
read that with --rendered; the cases on other inventories let explain
build the host itself, as it does without --rendered.
"""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT

CLI = ROOT / ".venv" / "bin" / "prosody-stack"
# The venv's prosody-stack imports the package of the checkout it was
# installed from; PYTHONPATH makes it this checkout's.
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(ROOT / "tools")}
LEVELS = ["role_default", "environment_profile", "inventory", "inventory_group", "inventory_host"]


def prosody_stack(*args):
    return subprocess.run([str(CLI), *args], cwd=ROOT, capture_output=True, text=True, check=False, env=ENVIRONMENT)


def line_of(path, text, after=None):
    """1-based number of the first line of `path` holding `text` (after the line holding `after`)."""
    lines = (ROOT / path).read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if after in line) if after else 0
    return next(number + 1 for number, line in enumerate(lines) if number >= start and text in line)


def vault_secrets(environment):
    view = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-vault"), "view", f"inventories/{environment}/group_vars/all/vault.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [value for value in yaml.safe_load(view.stdout).values() if isinstance(value, str)]


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """Every production host's tree and settings, rendered once: explain ... --rendered DIR."""
    out = tmp_path_factory.mktemp("explain") / "production"
    done = prosody_stack("render", "production", "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return str(out)


def test_help_names_the_syntax_and_the_exit_codes():
    done = prosody_stack("explain", "--help")
    assert done.returncode == 0, done.stderr
    assert "prosody_domains[example.com].allow_registration" in done.stdout
    assert "3  the tool could not run" in done.stdout


def test_a_value_set_at_four_levels_is_traced_through_each(production):
    done = prosody_stack(
        "explain", "archive_expires_after", "--host", "xmpp3.example.com", "production", "--rendered", production
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == 'layer06_storage.archiving.archive_expires_after on xmpp3.example.com = "10d"'
    assert lines[1] == "  written to stack/06-storage/archiving.cfg.lua, global section"
    assert lines[2] == "  sources, lowest precedence first (the last that sets it wins):"
    defaults = "roles/layer06_storage/defaults/main.yml"
    profile = "environments/production.yml"
    group_all = "inventories/production/group_vars/all/storage.yml"
    group = "inventories/production/group_vars/prosody_us/main.yml"
    host = "inventories/production/host_vars/xmpp3.example.com.yml"
    expected = [
        ("role default", f"{defaults}:{line_of(defaults, 'archive_expires_after')}", '"1w"'),
        ("environment profile", f"{profile}:{line_of(profile, 'archive_expires_after')}", '"4w"'),
        ("layer06_storage", f"{group_all}:{line_of(group_all, 'archiving:')}", "(does not set it)"),
        ("layer06_storage_group", f"{group}:{line_of(group, 'archive_expires_after')}", '"2w"'),
        ("layer06_storage_host", f"{host}:{line_of(host, 'archive_expires_after')}", '"10d"  <- final'),
    ]
    assert len(lines) == 3 + len(expected), done.stdout
    for line, (label, where, said) in zip(lines[3:], expected, strict=True):
        assert re.fullmatch(rf"    {re.escape(label)} +{re.escape(where)} +{re.escape(said)}", line), line


def test_json_gives_every_level_in_order(production):
    done = prosody_stack(
        "explain",
        "archive_expires_after",
        "--host",
        "xmpp3.example.com",
        "production",
        "--rendered",
        production,
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"inventory", "host", "option", "built", "problems", "places", "settable_as"}
    assert (result["host"], result["built"], result["problems"]) == ("xmpp3.example.com", True, [])
    [place] = result["places"]
    assert place["path"] == "layer06_storage.archiving.archive_expires_after"
    assert (place["value"], place["set"], place["confirmed"], place["switched_off"]) == ("10d", True, True, None)
    assert (place["file"], place["section"]) == ("stack/06-storage/archiving.cfg.lua", "global section")
    sources = place["sources"]
    assert [source["level"] for source in sources] == LEVELS
    assert [source["says"] for source in sources] == ["sets", "sets", "silent", "sets", "sets"]
    assert [source.get("value") for source in sources] == ["1w", "4w", None, "2w", "10d"]
    assert [source["final"] for source in sources] == [False, False, False, False, True]
    assert sources[4]["variable"] == "layer06_storage_host"
    assert sources[4]["file"] == "inventories/production/host_vars/xmpp3.example.com.yml"
    assert all(isinstance(source["line"], int) for source in sources)


def test_a_component_option_names_its_section_and_masks_its_secret(production):
    secrets = vault_secrets("production")
    path = "prosody_domains[example.com].components[bridge.example.com].component_secret"
    for option in ("component_secret", path):
        done = prosody_stack("explain", option, "--host", "xmpp1.example.com", "production", "--rendered", production)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == f'{path} on xmpp1.example.com = "********"'
        assert lines[1] == '  written to domains/example.com.cfg.lua, Component "bridge.example.com"'
        assert re.search(
            r"prosody_domains_host +inventories/production/host_vars/xmpp1\.example\.com\.yml:\d+ +"
            r'"\*\*\*\*\*\*\*\*"  <- final',
            done.stdout,
        ), done.stdout
        assert not [secret for secret in secrets if secret in done.stdout]


def test_secrets_inside_a_value_are_masked_in_text_and_json(production):
    secrets = vault_secrets("production")
    args = ("explain", "sql", "--host", "xmpp2.example.com", "production", "--rendered", production)
    text, as_json = prosody_stack(*args), prosody_stack(*args, "--json")
    for done in (text, as_json):
        assert done.returncode == 0, done.stdout + done.stderr
        assert "vault_prosody_sql_password" not in done.stdout
        assert not [secret for secret in secrets if secret in done.stdout]
    assert '"password": "********"' in text.stdout
    [place] = json.loads(as_json.stdout)["places"]
    assert place["value"]["password"] == "********"
    assert [source.get("value", {}).get("password") for source in place["sources"]] == [
        None,
        None,
        "********",
        None,
        None,
    ]
    # A template is shown as written, then as rendered for the host: where the database name comes from.
    assert "\"prosody_{{ inventory_hostname | split('.') | first }}\"" in text.stdout
    assert '"database": "prosody_xmpp2"' in text.stdout


def test_a_switched_off_topic_says_prosody_never_sees_the_option(production):
    done = prosody_stack(
        "explain", "compression_level", "--host", "xmpp1.example.com", "production", "--rendered", production
    )
    assert done.returncode == 0, done.stdout + done.stderr
    switch = line_of("environments/production.yml", "enabled: false", after="compression:")
    assert done.stdout.splitlines()[:3] == [
        "layer01_transport.compression.compression_level on xmpp1.example.com = 7",
        "  written to stack/01-transport/compression.cfg.lua, global section",
        f"  switched off: layer01_transport.compression.enabled is false (environments/production.yml:{switch}), "
        "so Prosody never sees it",
    ]


def test_a_name_set_globally_and_on_a_domain_is_explained_in_each_place(tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "tests" / "broken" / "_baseline", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "xmpp.example.test.yml").write_text(
        "---\nprosody_domains_host:\n  - name: example.test\n    allow_registration: true\n"
    )
    done = prosody_stack("explain", "allow_registration", "--host", "xmpp.example.test", str(inventory))
    assert done.returncode == 0, done.stdout + done.stderr
    # Without --rendered, explain builds the host itself.
    assert "building inventory for xmpp.example.test: merge, schemas, rules, policies, render" in done.stderr
    places = done.stdout.split("\n\n")
    assert places[0] == (
        "allow_registration is set in 2 places on xmpp.example.test, each explained below: "
        "layer02_stream.authentication.allow_registration, prosody_domains[example.test].allow_registration"
    )
    assert places[1].startswith("layer02_stream.authentication.allow_registration on xmpp.example.test = false\n")
    assert "note: prosody_domains[example.test].allow_registration sets its own value, which applies there" in places[1]
    domain = places[2].splitlines()
    assert domain[:2] == [
        "prosody_domains[example.test].allow_registration on xmpp.example.test = true",
        '  written to domains/example.test.cfg.lua, VirtualHost "example.test"',
    ]
    assert re.fullmatch(r"    prosody_domains +\S+/group_vars/all/main\.yml:\d+ +\(does not set it\)", domain[4])
    assert re.fullmatch(
        r"    prosody_domains_host +\S+/host_vars/xmpp\.example\.test\.yml:4 +true  <- final", domain[5]
    )


def test_a_host_the_build_refuses_still_shows_its_sources_and_exits_1():
    broken = ROOT / "tests" / "broken" / "port-out-of-range"
    done = prosody_stack("explain", "c2s_ports", "--host", "xmpp.example.test", str(broken))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("layer01_transport.ports.c2s_ports on xmpp.example.test = [5222, 70000]\n")
    assert "the build refuses xmpp.example.test, so the values above come from the levels only:" in done.stdout
    assert "  layer01_transport.ports.c2s_ports[1]: 70000 is out of range (allowed: 1 to 65535)" in done.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("archive_expire_after", "unknown option 'archive_expire_after' (nearest: archive_expires_after,"),
        ("enabled", "'enabled' is in every topic, domain and component: name it by its path"),
        (
            "layer02_stream.encryption.s2s_secure",
            "'layer02_stream.encryption.s2s_secure': layer02_stream.encryption has no option 's2s_secure' "
            "(nearest: s2s_secure_auth,",
        ),
        (
            "prosody_domains.example.com.allow_registration",
            "'prosody_domains.example.com.allow_registration': name the domain in brackets, because domain names",
        ),
        ("prosody_domains[example.net].allow_registration", "xmpp1.example.com has no domain 'example.net' (its "),
    ],
)
def test_an_unknown_option_names_the_nearest_and_exits_1(option, message):
    done = prosody_stack("explain", option, "--host", "xmpp1.example.com", "production")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"prosody-stack explain: {message}" in done.stderr
    assert done.stdout == ""
    assert "building" not in done.stderr, "a wrong option is refused before any render"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("xmpp4.example.com", "no host 'xmpp4.example.com' in production (Prosody hosts: xmpp1.example.com, "),
        ("db.example.com", "db.example.com is in production but is no Prosody host (not in the group prosody)"),
    ],
)
def test_an_unknown_host_is_refused_with_the_hosts_and_exits_1(host, message):
    done = prosody_stack("explain", "c2s_require_encryption", "--host", host, "production")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"prosody-stack explain: {message}" in done.stderr
    assert done.stdout == ""
