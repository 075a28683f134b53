"""prosody_config filters: Lua output, topic bodies, modules, duplicates, digest."""

import pytest
from ansible.errors import AnsibleFilterError

TO_LUA_VALID = [
    pytest.param(True, "true", id="true"),
    pytest.param(False, "false", id="false"),
    pytest.param(5222, "5222", id="int"),
    pytest.param(-(2**63), "(-9223372036854775807 - 1)", id="int-min-stays-an-integer"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param("intermediate", '"intermediate"', id="string"),
    pytest.param('say "hi"\\', '"say \\"hi\\"\\\\"', id="quote-and-backslash"),
    pytest.param("a\nb\x00c\x7f", '"a\\010b\\000c\\127"', id="control-bytes"),
    pytest.param("]]--", '"]]--"', id="long-bracket-is-inert"),
    pytest.param("Zürich ☃", '"Zürich ☃"', id="utf8"),
    pytest.param([], "{}", id="empty-list"),
    pytest.param([5222, 5223], "{ 5222, 5223 }", id="list"),
    pytest.param({"rate": "10kb/s", "burst": "2s"}, '{ burst = "2s", rate = "10kb/s" }', id="mapping-sorted"),
    pytest.param({"end": 1, "a-b": 2, "ok": 3}, '{ ["a-b"] = 2, ["end"] = 1, ok = 3 }', id="non-identifier-keys"),
    pytest.param({"A\n": 1}, '{ ["A\\010"] = 1 }', id="key-with-trailing-newline-is-not-an-identifier"),
    pytest.param({2: "b", 1: "a"}, '{ [1] = "a", [2] = "b" }', id="integer-keys"),
    pytest.param(
        {"c2s": {"rate": "10kb/s", "burst": "2s"}, "s2sin": {"rate": "30kb/s", "burst": "2s"}},
        '{\n    c2s = { burst = "2s", rate = "10kb/s" };\n    s2sin = { burst = "2s", rate = "30kb/s" };\n}',
        id="long-table-multiline",
    ),
]


@pytest.mark.parametrize(("value", "lua"), TO_LUA_VALID)
def test_to_lua_valid(filters, value, lua):
    assert filters["to_lua"](value) == lua


TO_LUA_INVALID = [
    pytest.param(None, "to_lua: value: null has no place in Prosody's configuration", id="null"),
    pytest.param(2**63, "to_lua: value: integer 9223372036854775808 is outside Lua's 64-bit range", id="huge-int"),
    pytest.param(float("nan"), "to_lua: value: nan has no Lua literal; use a finite number", id="nan"),
    pytest.param(float("inf"), "to_lua: value: inf has no Lua literal; use a finite number", id="inf"),
    pytest.param(
        {"x": {1.5: 1}}, "to_lua: value.x: table key 1.5 is a float; keys must be strings or integers", id="float-key"
    ),
    pytest.param({True: 1}, "to_lua: value: table key True is a bool; keys must be strings or integers", id="bool-key"),
    pytest.param(b"raw", "to_lua: value: cannot write a bytes (b'raw') as Lua", id="bytes"),
    pytest.param("a\ud800", "to_lua: 'a\\ud800' holds a lone surrogate (U+D800), which is not text", id="surrogate"),
]


@pytest.mark.parametrize(("value", "message"), TO_LUA_INVALID)
def test_to_lua_invalid(filters, value, message):
    with pytest.raises(AnsibleFilterError) as error:
        filters["to_lua"](value)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [("tls_profile", "modern", 'tls_profile = "modern"'), ("c2s_ports", [5222], "c2s_ports = { 5222 }")],
)
def test_prosody_option_valid(filters, name, value, line):
    assert filters["prosody_option"](value, name) == line


@pytest.mark.parametrize("name", ["2fast", "end", "a-b", "x = 1 os.exit()", ""])
def test_prosody_option_refuses_names_that_are_not_identifiers(filters, name):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_option"](1, name)
    assert str(error.value).startswith(f"prosody_option: option name {name!r} is not a Lua identifier")


def test_topic_on_lists_modules_and_sorted_options(filters):
    body = filters["prosody_topic_lua"]({"modules": {"limits": True, "x": False}, "b": 2, "a": 1}, "l.t", "production")
    assert body == (
        "-- Status: on in the production environment.\n"
        "-- Modules (listed in prosody.cfg.lua's modules_enabled): limits\n"
        "-- Modules switched off here: x\n"
        "\n"
        "a = 1\n"
        "b = 2\n"
    )


def test_topic_off_sets_nothing_but_says_what_it_would(filters):
    body = filters["prosody_topic_lua"]({"enabled": False, "modules": {"bosh": True}, "x": 1}, "l7.bosh", "dev")
    assert [line for line in body.splitlines() if not line.startswith("--")] == []
    assert "-- Switch it on with l7.bosh.enabled: true" in body
    assert "--   x = 1" in body


CATALOGUE = [
    {"name": "l1", "directory": "stack/01-a", "topics": ["t1", "t2"]},
    {"name": "l2", "directory": "stack/02-b", "topics": ["t3"]},
]


def test_modules_enabled_in_layer_order_and_autoload_disabled(filters):
    layers = {
        "l1": {"t1": {"modules": {"tls": True}}, "t2": {"enabled": False, "modules": {"compression": True}}},
        "l2": {"t3": {"modules": {"s2s": False, "bosh": False, "mam": True}}},
    }
    assert filters["prosody_modules"](layers, CATALOGUE) == {
        "enabled": [
            {"module": "tls", "file": "stack/01-a/t1.cfg.lua"},
            {"module": "mam", "file": "stack/02-b/t3.cfg.lua"},
        ],
        "disabled": [{"module": "s2s", "file": "stack/02-b/t3.cfg.lua"}],
    }


def test_modules_conflict_names_both_files(filters):
    layers = {"l1": {"t1": {"modules": {"rest": True}}}, "l2": {"t3": {"modules": {"rest": False}}}}
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_modules"](layers, CATALOGUE)
    assert str(error.value) == (
        "prosody_modules: module 'rest' is enabled by stack/01-a/t1.cfg.lua and disabled by "
        "stack/02-b/t3.cfg.lua; set it in one topic only"
    )


def test_duplicate_options_maps_owners(filters):
    layers = {"l1": {"t1": {"a": 1, "modules": {}}, "t2": {"enabled": False, "a": 2}}, "l2": {"t3": {"b": 1}}}
    owners = filters["prosody_duplicate_options"](layers, CATALOGUE, {"prosody.cfg.lua": ["pidfile"]})
    assert owners == {"pidfile": "prosody.cfg.lua", "a": "stack/01-a/t1.cfg.lua", "b": "stack/02-b/t3.cfg.lua"}


@pytest.mark.parametrize(
    ("layers", "other", "problem"),
    [
        pytest.param(
            {"l1": {"t1": {"c2s_ports": [1]}}, "l2": {"t3": {"c2s_ports": [2]}}},
            {},
            "'c2s_ports' is set by both stack/01-a/t1.cfg.lua and stack/02-b/t3.cfg.lua",
            id="two-topics",
        ),
        pytest.param(
            {"l1": {"t2": {"pidfile": "/x"}}},
            {"prosody.cfg.lua": ["pidfile"]},
            "'pidfile' is set by both prosody.cfg.lua and stack/01-a/t2.cfg.lua",
            id="loader-option",
        ),
    ],
)
def test_duplicate_options_refused(filters, layers, other, problem):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_duplicate_options"](layers, CATALOGUE, other)
    assert str(error.value) == (
        f"prosody_duplicate_options: Prosody would silently keep only the later value: {problem}. "
        "Move each option to the one topic that owns it."
    )


def test_tree_digest_is_order_independent_and_content_sensitive(filters):
    tree = [{"path": "a", "content": "x"}, {"path": "b", "content": "y"}]
    digest = filters["prosody_tree_digest"](tree)
    assert digest == filters["prosody_tree_digest"](list(reversed(tree)))
    assert digest != filters["prosody_tree_digest"]([{"path": "a", "content": "x"}, {"path": "b", "content": "z"}])
    # Moving content between files must change the digest too.
    assert digest != filters["prosody_tree_digest"]([{"path": "a", "content": "xy"}, {"path": "b", "content": ""}])


PLAN_LAYERS = [
    {"name": "layer01_transport", "directory": "stack/01-transport", "topics": ["ports", "tls"]},
    {"name": "layer02_stream", "directory": "stack/02-stream", "topics": ["encryption"]},
]


def test_render_plan_lists_the_tree_in_reading_order(filters):
    merged = {
        "layer01_transport": {"ports": {"c2s_ports": [5222]}},
        "prosody_domains": [{"name": "example.com"}, {"name": "chat.example.org"}],
    }
    plan = filters["prosody_render_plan"](
        merged,
        PLAN_LAYERS,
        roles_dir="/r",
        environment_file="environments/production.cfg.lua",
        firewall_files=["/fw/no-links.pfw"],
    )
    assert [entry["path"] for entry in plan] == [
        "stack/01-transport/ports.cfg.lua",
        "stack/01-transport/tls.cfg.lua",
        "stack/02-stream/encryption.cfg.lua",
        "domains/example.com.cfg.lua",
        "domains/chat.example.org.cfg.lua",
        "environments/production.cfg.lua",
        "prosody.cfg.lua",
        "firewall/no-links.pfw",
    ]
    assert plan[0] == {
        "path": "stack/01-transport/ports.cfg.lua",
        "template": "/r/layer01_transport/templates/ports.cfg.lua.j2",
        "vars": {"topic": {"c2s_ports": [5222]}, "topic_path": "layer01_transport.ports"},
    }
    # A layer or topic the inventory never mentions renders from an empty topic.
    assert plan[2]["vars"] == {"topic": {}, "topic_path": "layer02_stream.encryption"}
    assert plan[4]["vars"] == {"domain": {"name": "chat.example.org"}}
    assert plan[4]["template"] == "/r/prosody/templates/domain.cfg.lua.j2"
    assert plan[-1] == {"path": "firewall/no-links.pfw", "copy": "/fw/no-links.pfw"}


@pytest.mark.parametrize("merged", [None, [], "layer01_transport"])
def test_render_plan_refuses_settings_that_are_not_a_mapping(filters, merged):
    with pytest.raises(AnsibleFilterError, match="prosody_render_plan: expected the merged settings"):
        filters["prosody_render_plan"](merged, PLAN_LAYERS, roles_dir="/r", environment_file="e.cfg.lua")


def test_certificate_files(filters):
    files = filters["prosody_certificate_files"]({"name": "example.com", "certificate": "C\n\n", "key": "K"})
    assert files == [{"path": "example.com.crt", "content": "C\n"}, {"path": "example.com.key", "content": "K\n"}]


@pytest.mark.parametrize(
    ("certificate", "missing"),
    [({"name": "a.example", "certificate": "C"}, "key"), ({"certificate": "C", "key": ""}, "name, key")],
)
def test_certificate_files_refuses_incomplete_entries(filters, certificate, missing):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_certificate_files"](certificate)
    assert f"lacks {missing}; each entry needs name, certificate (PEM) and key (PEM)" in str(error.value)


LISTENER_CATALOGUE = [{"name": "l1", "directory": "stack/01-transport", "topics": ["ports", "http", "routing"]}]


@pytest.mark.parametrize(
    ("layer", "domains", "listeners"),
    [
        pytest.param({}, [], ["*:5222", "*:5269", ":::5222", ":::5269"], id="prosody-defaults"),
        pytest.param(
            {
                "ports": {"interfaces": ["127.0.0.11"], "c2s_direct_tls_ports": [5223]},
                "routing": {"modules": {"s2s": False}},
            },
            [],
            ["127.0.0.11:5222", "127.0.0.11:5223"],
            id="no-federation-direct-tls",
        ),
        pytest.param(
            {
                "ports": {"interfaces": ["127.0.0.11"]},
                "http": {"http_interfaces": ["127.0.0.11"], "https_ports": [443]},
            },
            [{"name": "a.example", "components": [{"name": "u.a.example", "type": "http_file_share"}]}],
            ["127.0.0.11:443", "127.0.0.11:5222", "127.0.0.11:5269", "127.0.0.11:5280"],
            id="upload-opens-http",
        ),
        pytest.param(
            {"ports": {"interfaces": ["127.0.0.2"], "local_interfaces": ["127.0.0.2"]}},
            [{"name": "a", "components": [{"name": "b.a", "type": "external"}, {"name": "p.a", "type": "proxy65"}]}],
            ["127.0.0.2:5000", "127.0.0.2:5222", "127.0.0.2:5269", "127.0.0.2:5347"],
            id="component-and-proxy65",
        ),
        pytest.param(
            {"http": {"enabled": False, "modules": {"bosh": True}}},
            [],
            ["*:5222", "*:5269", ":::5222", ":::5269"],
            id="http-module-of-an-off-topic-opens-nothing",
        ),
    ],
)
def test_listeners(filters, layer, domains, listeners):
    merged = {"l1": layer, "prosody_domains": domains}
    assert filters["prosody_listeners"](merged, LISTENER_CATALOGUE) == listeners


@pytest.mark.parametrize(
    ("settings", "secrets"),
    [
        pytest.param(
            {"l6": {"backends": {"sql": {"password": "p1", "username": "prosody"}}}},
            ["p1"],
            id="sql-password",
        ),
        pytest.param(
            {"prosody_domains": [{"name": "a", "components": [{"name": "b", "component_secret": "s2"}]}]},
            ["s2"],
            id="component-secret-in-list",
        ),
        pytest.param({"x": {"turn_external_secret": "t", "oauth2_registration_key": "k"}}, ["k", "t"], id="suffixes"),
        pytest.param({"x": {"password_policy": "strong", "secrets": ["a"]}}, [], id="names-that-only-mention-secrets"),
    ],
)
def test_secret_values(filters, settings, secrets):
    assert filters["prosody_secret_values"](settings) == secrets


def _sql_host(address, storage="sql", driver="PostgreSQL", server="127.0.0.20"):
    sql = {"driver": driver, "host": server, "database": f"db_{address[-2:]}", "username": "prosody", "password": "pw"}
    return {
        "prosody_listen_address": address,
        "prosody_merged": {"layer06_storage": {"backends": {"storage": storage, "sql": sql}}},
    }


def test_sql_clients_pick_the_hosts_stored_on_this_server(filters):
    hosts = [
        _sql_host("127.0.0.21"),
        _sql_host("127.0.0.22", storage={"archive": "sql"}),
        _sql_host("127.0.0.26", storage="internal"),  # names the database: data may be moved there
        _sql_host("127.0.0.23", driver="SQLite3"),
        _sql_host("127.0.0.24", server="127.0.0.99"),
        {"prosody_listen_address": "127.0.0.25"},  # not built: no merged settings
    ]
    assert [client["source"] for client in filters["prosody_sql_clients"](hosts, "127.0.0.20")] == [
        "127.0.0.21",
        "127.0.0.22",
        "127.0.0.26",
    ]
    assert filters["prosody_sql_clients"](hosts[:1], "127.0.0.20") == [
        {"database": "db_21", "username": "prosody", "password": "pw", "source": "127.0.0.21"}
    ]


def test_masked_replaces_exactly_the_secret_values(filters):
    settings = {"sql": {"password": "pw", "port": 5432}, "d": [{"name": "a", "component_secret": "s"}], "key": ""}
    assert filters["prosody_masked"](settings) == {
        "sql": {"password": "********", "port": 5432},
        "d": [{"name": "a", "component_secret": "********"}],
        "key": "",
    }
