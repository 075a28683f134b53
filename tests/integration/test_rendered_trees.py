"""Every inventory, rendered for both Prosody series, is accepted by real Prosody
and means what we meant: each option lands in the section we intended."""

import json
import subprocess
import sys
from unittest.mock import ANY

import pytest
from conftest import ENVIRONMENTS, IMAGES, ROOT, parse_with_prosody, render

sys.path.insert(0, str(ROOT / "filter_plugins"))
from prosody_check import prosody_check_findings  # the project's own strict reader

CASES = [(environment, series) for environment in ENVIRONMENTS for series in IMAGES]
# Keys the loader writes, or Prosody's configmanager adds to a section itself.
WRITTEN_BY_LOADER_OR_PROSODY = {
    *("pidfile", "plugin_paths", "modules_enabled", "modules_disabled"),
    *("defined", "component_module", "load_global_modules"),
}
AUTOLOADED = {"presence", "message", "iq", "offline", "c2s", "s2s", "s2s_auth_certs"}
DOMAIN_RESERVED = {"name", "modules", "components"}
COMPONENT_RESERVED = {"name", "type", "modules"}
COMPONENT_MODULES = {"muc": "muc", "http_file_share": "http_file_share", "pubsub": "pubsub", "proxy65": "proxy65"}


def tree_files(tree):
    """The tree's configuration files (release.json describes the release; Prosody never reads it)."""
    return sorted(str(path.relative_to(tree)) for path in tree.rglob("*.lua") if path.is_file())


def in_container(tree, base):
    return f"/trees/{tree.relative_to(base)}"


def normalise(value):
    """Prosody's JSON writes empty tables as [] or {}; compare them as one.
    Secrets are masked in the settings file, so a masked value matches any."""
    if value == "********":
        return ANY
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()} or []
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def _options(settings, reserved):
    return {key: value for key, value in settings.items() if key not in reserved}


def _enabled_modules(settings):
    return {name for name, on in settings.get("modules", {}).items() if on}


def intended_sections(settings):
    """What we meant, from the merged settings alone: {section: (options, modules, component module)}."""
    options, modules, disabled = dict(settings["prosody_environment_settings"]), set(), set()
    for layer in sorted(name for name in settings if name.startswith("layer")):
        for topic in settings[layer].values():
            if topic.get("enabled", True) is not False:
                options.update(_options(topic, {"enabled", "modules"}))
                modules |= _enabled_modules(topic)
                disabled |= {name for name, on in topic.get("modules", {}).items() if not on}
    sections = {"*": (options, modules, None)}
    for domain in settings["prosody_domains"]:
        sections[domain["name"]] = (_options(domain, DOMAIN_RESERVED), _enabled_modules(domain), None)
        for component in domain.get("components", []):
            module = COMPONENT_MODULES.get(component["type"], "component")
            sections[component["name"]] = (_options(component, COMPONENT_RESERVED), _enabled_modules(component), module)
    return sections, disabled & AUTOLOADED


@pytest.mark.parametrize(("environment", "series"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_prosody_accepts_every_tree_strictly(prosody, rendered, environment, series):
    base, trees = rendered
    assert trees[environment, series], "the inventory rendered no host"
    for tree in trees[environment, series]:
        files = tree_files(tree)
        assert len([f for f in files if f.startswith("stack/")]) == 32
        remote = in_container(tree, base)
        check = prosody[series].exec("prosodyctl", "--config", f"{remote}/prosody.cfg.lua", "check", "config")
        output = check.stdout + check.stderr
        findings = prosody_check_findings(output, check.returncode, [f"{remote}/{f}" for f in files])
        assert findings == [], f"{tree.name} on Prosody {series}:\n{output}"


@pytest.mark.parametrize(("environment", "series"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_every_option_lands_in_its_section(prosody, rendered, environment, series):
    base, trees = rendered
    for tree in trees[environment, series]:
        settings = json.loads((tree.parent / f"{tree.name}.settings.json").read_text())
        parsed = parse_with_prosody(prosody[series], f"{in_container(tree, base)}/prosody.cfg.lua")["sections"]
        intended, disabled = intended_sections(settings)
        assert set(parsed) == set(intended), f"{tree.name}: sections differ"
        assert set(normalise(parsed["*"]["modules_disabled"])) == disabled
        for section, (options, modules, component_module) in intended.items():
            got = parsed[section]
            assert normalise(_options(got, WRITTEN_BY_LOADER_OR_PROSODY)) == normalise(options), (
                f"{tree.name}: {section}"
            )
            assert set(got.get("modules_enabled", [])) == modules, f"{tree.name}: {section} modules"
            assert got.get("component_module") == component_module, f"{tree.name}: {section} component type"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rendering_twice_gives_identical_trees(tmp_path, environment):
    first = render(ROOT / "inventories" / environment, tmp_path / "first")
    second = render(ROOT / "inventories" / environment, tmp_path / "second")
    assert [p.name for p in first] == [p.name for p in second]
    diff = subprocess.run(
        ["diff", "-r", str(tmp_path / "first"), str(tmp_path / "second")], capture_output=True, text=True, check=False
    )
    assert diff.returncode == 0, diff.stdout


PROSODY_OWN_KEYS = {"defined", "component_module", "load_global_modules"}


def manifest_sections(release):
    """release.json's option manifest keyed like Prosody's own dump ("*" for global)."""
    sections = {}
    for section, options in release["options"].items():
        name = "*" if section == "global" else section.split(" ", 1)[1]
        sections[name] = set(options) - {"component_type"}
    return sections


@pytest.mark.parametrize(("environment", "series"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_release_manifest_names_every_option_prosody_reads(prosody, rendered, environment, series):
    """The reload/restart decision compares these fingerprints: they must cover exactly what Prosody reads."""
    base, trees = rendered
    for tree in trees[environment, series]:
        release = json.loads((tree / "release.json").read_text())
        parsed = parse_with_prosody(prosody[series], f"{in_container(tree, base)}/prosody.cfg.lua")["sections"]
        read_by_prosody = {name: set(options) - PROSODY_OWN_KEYS for name, options in parsed.items()}
        assert manifest_sections(release) == read_by_prosody, tree.name
