"""prosody_apply_method and prosody_option_manifest: reload or restart, from what changed."""

import pytest
from ansible.errors import AnsibleFilterError

RELOADABLE = ["ssl", "certificates", "log", "network_settings"]
LIVE = {"global": {"ssl": "a1", "log": "b1", "c2s_ports": "c1"}, "VirtualHost example.com": {"ssl": "d1"}}


def changed(section, option, value="zz"):
    manifest = {name: dict(options) for name, options in LIVE.items()}
    manifest.setdefault(section, {})[option] = value
    return manifest


@pytest.mark.parametrize(
    ("target", "live", "extra", "expected"),
    [
        pytest.param(LIVE, LIVE, {}, ("none", []), id="nothing-changed"),
        pytest.param(changed("global", "ssl"), LIVE, {}, ("reload", []), id="tls-settings"),
        pytest.param(changed("global", "log"), LIVE, {}, ("reload", []), id="logging"),
        pytest.param(changed("VirtualHost example.com", "ssl"), LIVE, {}, ("reload", []), id="per-host-tls"),
        pytest.param(LIVE, LIVE, {"reloadable_changes": ["certificate files"]}, ("reload", []), id="certificates-only"),
        pytest.param(
            changed("global", "c2s_ports"), LIVE, {}, ("restart", ["global: c2s_ports"]), id="ports-need-restart"
        ),
        pytest.param(
            changed("global", "modules_enabled"), LIVE, {}, ("restart", ["global: modules_enabled"]), id="option-added"
        ),
        pytest.param(
            {"global": {"ssl": "a1", "log": "b1"}, "VirtualHost example.com": {"ssl": "d1"}},
            LIVE,
            {},
            ("restart", ["global: c2s_ports"]),
            id="option-removed",
        ),
        pytest.param(
            {**LIVE, "VirtualHost other.example": {}},
            LIVE,
            {},
            ("restart", ["VirtualHost other.example"]),
            id="host-added",
        ),
        pytest.param(
            changed("global", "ssl"),
            LIVE,
            {"restart_changes": ["/etc/prosody/prosody.cfg.lua"]},
            ("restart", ["/etc/prosody/prosody.cfg.lua"]),
            id="main-file-changed",
        ),
        pytest.param(LIVE, None, {}, ("restart", ["options of the live release unknown"]), id="live-unknown"),
    ],
)
def test_apply_method(filters, target, live, extra, expected):
    method, restart_because = expected
    decision = filters["prosody_apply_method"](target, live, RELOADABLE, **extra)
    assert decision["method"] == method
    assert [reason.split(" (")[0] for reason in decision["restart_because"]] == restart_because


def test_host_added_is_a_restart_even_without_options(filters):
    """A new VirtualHost section with no options still needs a restart: Prosody creates hosts at start."""
    decision = filters["prosody_apply_method"]({**LIVE, "VirtualHost other.example": {}}, LIVE, RELOADABLE)
    assert decision["method"] == "restart"


def test_changes_are_listed_sorted(filters):
    target = changed("global", "log")
    target["global"]["ssl"] = "new"
    decision = filters["prosody_apply_method"](target, LIVE, RELOADABLE, reloadable_changes=["certificate files"])
    assert decision["changes"] == ["certificate files", "global: log", "global: ssl"]


@pytest.mark.parametrize(
    ("target", "live", "reloadable", "message"),
    [
        pytest.param({"global": "x"}, LIVE, RELOADABLE, "the new release's manifest must map", id="target-shape"),
        pytest.param(LIVE, {"global": ["x"]}, RELOADABLE, "the live release's manifest must map", id="live-shape"),
        pytest.param(LIVE, LIVE, "ssl", "reloadable must be a list", id="reloadable-shape"),
    ],
)
def test_apply_method_rejects(filters, target, live, reloadable, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters["prosody_apply_method"](target, live, reloadable)


CATALOGUE = [{"name": "layer01_transport", "directory": "stack/01-transport", "topics": ["ports", "tls"]}]
MERGED = {
    "layer01_transport": {
        "ports": {"c2s_ports": [5222]},
        "tls": {"modules": {"tls": True}, "ssl": {"protocol": "tlsv1_2+"}},
    },
    "prosody_environment_settings": {"log": {"info": "/var/log/prosody/prosody.log"}},
    "prosody_domains": [
        {
            "name": "example.com",
            "modules": {"register": False},
            "components": [{"name": "conference.example.com", "type": "muc", "max_history_messages": 50}],
        }
    ],
}


def test_manifest_places_options_where_the_templates_write_them(filters):
    manifest = filters["prosody_option_manifest"](MERGED, CATALOGUE, {"pidfile": "/run/p.pid", "plugin_paths": []})
    assert {section: sorted(options) for section, options in manifest.items()} == {
        "global": ["c2s_ports", "log", "modules_disabled", "modules_enabled", "pidfile", "ssl"],
        "VirtualHost example.com": ["modules_disabled"],
        "Component conference.example.com": ["component_type", "max_history_messages"],
    }


def test_manifest_fingerprints_follow_values(filters):
    build = filters["prosody_option_manifest"]
    before = build(MERGED, CATALOGUE, {"pidfile": "/run/p.pid"})
    tls = {**MERGED["layer01_transport"]["tls"], "ssl": {"protocol": "tlsv1_3"}}
    after = build(
        {**MERGED, "layer01_transport": {**MERGED["layer01_transport"], "tls": tls}},
        CATALOGUE,
        {"pidfile": "/run/p.pid"},
    )
    assert before == build(MERGED, CATALOGUE, {"pidfile": "/run/p.pid"})
    assert [name for name in before["global"] if before["global"][name] != after["global"][name]] == ["ssl"]


def test_switched_off_topic_sets_nothing(filters):
    merged = {**MERGED, "layer01_transport": {"ports": {"c2s_ports": [5222]}, "tls": {"enabled": False, "ssl": {}}}}
    manifest = filters["prosody_option_manifest"](merged, CATALOGUE, {})
    assert "ssl" not in manifest["global"]


@pytest.mark.parametrize(
    ("entry", "kind", "options"),
    [
        pytest.param(
            {"name": "a.example", "modules": {}, "components": [], "ssl": {}}, "VirtualHost", ["ssl"], id="domain"
        ),
        pytest.param({"name": "c.example", "type": "muc", "modules": {}, "x": 1}, "Component", ["x"], id="component"),
    ],
)
def test_section_options(filters, entry, kind, options):
    assert sorted(filters["prosody_section_options"](entry, kind)) == options


def test_section_options_rejects_unknown_kind(filters):
    with pytest.raises(AnsibleFilterError, match="kind is 'Host'; allowed: VirtualHost, Component"):
        filters["prosody_section_options"]({}, "Host")
