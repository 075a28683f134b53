"""The folder layout is the architecture: catalogue, roles and templates agree."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((ROOT / "roles/prosody/vars/main.yml").read_text())["prosody_layers"]


def test_catalogue_has_eight_layers_of_four_files_named_as_the_architecture():
    assert [layer["directory"] for layer in CATALOGUE] == [
        "stack/01-transport",
        "stack/02-stream",
        "stack/03-stanza",
        "stack/04-protocol",
        "stack/05-services",
        "stack/06-storage",
        "stack/07-interfaces",
        "stack/08-integration",
    ]
    assert [layer["topics"] for layer in CATALOGUE] == [
        ["ports", "tls", "compression", "connections"],
        ["authentication", "encryption", "management", "negotiation"],
        ["routing", "filtering", "validation", "processing"],
        ["core", "extensions", "legacy", "experimental"],
        ["messaging", "presence", "groupchat", "pubsub"],
        ["backends", "archiving", "caching", "migration"],
        ["http", "websocket", "bosh", "components"],
        ["ldap", "oauth", "webhooks", "apis"],
    ]


def test_prosody_role_depends_on_every_layer_role_in_catalogue_order():
    meta = yaml.safe_load((ROOT / "roles/prosody/meta/main.yml").read_text())
    assert [dependency["role"] for dependency in meta["dependencies"]] == [layer["name"] for layer in CATALOGUE]


def test_each_layer_role_owns_exactly_its_templates_and_topic_defaults():
    for layer in CATALOGUE:
        role = ROOT / "roles" / layer["name"]
        templates = sorted(path.name for path in (role / "templates").iterdir())
        assert templates == sorted(f"{topic}.cfg.lua.j2" for topic in layer["topics"]), layer["name"]
        defaults = yaml.safe_load((role / "defaults/main.yml").read_text())
        assert list(defaults) == [f"{layer['name']}_defaults"]
        assert sorted(defaults[f"{layer['name']}_defaults"]) == sorted(layer["topics"]), layer["name"]


def test_every_template_starts_with_the_ansible_managed_comment():
    for template in ROOT.glob("roles/*/templates/*.j2"):
        assert template.read_text().startswith("-- {{ ansible_managed }}\n"), template


def test_environment_profiles_only_name_known_settings_blocks():
    blocks = {layer["name"] for layer in CATALOGUE} | {"prosody_environment_settings", "prosody_domains"}
    for profile in (ROOT / "environments").glob("*.yml"):
        # Besides settings blocks, a profile has a description and may claim policies.
        keys = set(yaml.safe_load(profile.read_text())) - {"description", "prosody_policies"}
        assert keys <= blocks, f"{profile.name}: unknown blocks {keys - blocks}"


def test_every_build_task_names_its_phase_for_the_profiler():
    tasks = yaml.safe_load((ROOT / "roles" / "prosody" / "tasks" / "main.yml").read_text())
    for task in tasks:
        phases = [tag for tag in task.get("tags", []) if tag.startswith("prosody_phase_")]
        assert phases in (["prosody_phase_merge"], ["prosody_phase_validate"], ["prosody_phase_render"]), task["name"]
