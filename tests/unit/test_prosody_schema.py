"""prosody_schema filters and the real schemas: valid and invalid settings, exact messages.

Settings are merged the way the prosody role merges them (prosody_merge over
role defaults, the environment profile, a sample inventory and the case's
overlay), then checked against the schemas loaded from the role vars files.
"""

import copy
import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((ROOT / "roles/prosody/vars/main.yml").read_text())["prosody_layers"]
LAYERS = [layer["name"] for layer in CATALOGUE]
BLOCKS = [*LAYERS, "prosody_environment_settings", "prosody_domains"]
LOADER_OPTIONS = yaml.safe_load((ROOT / "roles/prosody/vars/main.yml").read_text())["prosody_loader_options"]
HOST = "xmpp1.example.com"


def _yaml(path):
    return yaml.safe_load((ROOT / path).read_text())


def _schemas():
    """Each layer's schema from its role; the domains' and environment settings' from schemas/<block>.yml
    (or from the prosody role's vars, should they move there)."""
    schemas = {name: _yaml(f"roles/{name}/vars/main.yml")[f"{name}_schema"] for name in LAYERS}
    prosody_vars = _yaml("roles/prosody/vars/main.yml")
    for block in ("prosody_environment_settings", "prosody_domains"):
        name = f"{block}_schema"
        schemas[block] = prosody_vars[name] if name in prosody_vars else _yaml(f"schemas/{block}.yml")[name]
    return schemas


SCHEMAS = _schemas()
DEFAULTS = {name: _yaml(f"roles/{name}/defaults/main.yml")[f"{name}_defaults"] for name in LAYERS}
DEFAULTS["prosody_environment_settings"] = _yaml("roles/prosody/defaults/main.yml")[
    "prosody_environment_settings_defaults"
]
DEFAULTS["prosody_domains"] = []
# A sample inventory: one domain with a MUC and an upload component.
INVENTORY = {
    "prosody_domains": [
        {
            "name": "example.com",
            "components": [
                {"name": "conference.example.com", "type": "muc", "modules": {"muc_mam": True}},
                {"name": "upload.example.com", "type": "http_file_share", "http_file_share_size_limit": 52428800},
            ],
        }
    ]
}


def merged(filters, overlay=None, environment="production"):
    """The merged settings of one host, as the prosody role builds them."""
    profile = _yaml(f"environments/{environment}.yml")
    return {
        block: filters["prosody_merge"](
            [
                ["role default", DEFAULTS[block]],
                [f"environments/{environment}.yml", profile.get(block, {})],
                ["inventory", INVENTORY.get(block, {})],
                ["case", (overlay or {}).get(block, {})],
            ],
            block,
        )
        for block in BLOCKS
    }


def errors(filters, overlay=None, environment="production"):
    return filters["prosody_schema_errors"](merged(filters, overlay, environment), SCHEMAS, HOST)


# ---------------------------------------------------------------- valid settings

VALID = [
    pytest.param({}, "development", id="development-profile"),
    pytest.param({}, "staging", id="staging-profile"),
    pytest.param({}, "production", id="production-profile"),
    pytest.param(
        {
            "layer01_transport": {
                "ports": {"interfaces": ["*", "::", "192.0.2.10", "2001:db8::10"], "c2s_direct_tls_ports": []},
                "tls": {"tls_profile": "modern", "ssl": {"protocol": "tlsv1_3", "ciphers": ["A", "B"]}},
                "connections": {
                    "limits": {"c2s": {"rate": "20kb/s", "burst": 2}, "s2sout": {"rate": "1 MB/s", "burst": "3s"}},
                    "network_settings": {"tcp_keepalive": 60, "min_wait": 0.001},
                },
            }
        },
        "production",
        id="transport-variants",
    ),
    pytest.param(
        {
            "layer06_storage": {
                "backends": {"storage": None},
                "archiving": {"archive_expires_after": "never", "muc_log_expires_after": 604800},
            },
            "prosody_domains": [{"name": "example.com", "storage": {"archive": "sql", "roster": "internal"}}],
        },
        "production",
        id="per-store-storage-and-periods",
    ),
    pytest.param(
        {
            "layer06_storage": {
                "backends": {
                    "storage": "sql",
                    "sql": {"driver": "PostgreSQL", "database": "prosody", "host": "db.example.com", "port": 5432},
                },
                "archiving": {"default_archive_policy": "roster", "archive_expires_after": "2w"},
            }
        },
        "staging",
        id="sql-storage",
    ),
    pytest.param(
        {
            "prosody_domains": [
                {
                    "name": "example.com",
                    "enabled": True,
                    "admins": ["ops@example.com"],
                    "components": [
                        {"name": "conference.example.com", "restrict_room_creation": True, "max_history_messages": 0},
                        {"name": "bridge.example.com", "type": "external", "component_secret": "s3cret"},
                        {"name": "pubsub.example.com", "type": "pubsub", "default_admin_affiliation": "publisher"},
                        {"name": "proxy.example.com", "type": "proxy65", "proxy65_address": "proxy.example.com"},
                    ],
                },
                {"name": "localhost"},
            ]
        },
        "production",
        id="every-component-type",
    ),
    pytest.param(
        {
            "layer02_stream": {
                "negotiation": {
                    "contact_info": {"abuse": ["mailto:abuse@example.com", "xmpp:abuse@example.com"]},
                    "disco_items": [["news.example.com", "News"], ["rss.example.com"]],
                }
            },
            "layer07_interfaces": {"http": {"trusted_proxies": ["10.0.0.0/8", "::1"], "http_paths": {"bosh": "/b"}}},
            "prosody_environment_settings": {
                "log": {"info": "*syslog", "error": "*console"},
                "statistics": "internal",
                "statistics_interval": "manual",
            },
        },
        "production",
        id="formats",
    ),
    pytest.param(
        {"layer08_integration": {"ldap": {"enabled": True, "ldap_base": "dc=example,dc=com", "ldap_tls": True}}},
        "production",
        id="ldap-on",
    ),
    pytest.param(
        # A module set on in two topics is harmless; off in a topic that is off does not count.
        {"layer04_protocol": {"core": {"modules": {"carbons": True}}, "legacy": {"modules": {"s2s": False}}}},
        "production",
        id="module-twice-and-off-topic",
    ),
]


@pytest.mark.parametrize(("overlay", "environment"), VALID)
def test_valid_settings_have_no_errors(filters, overlay, environment):
    assert errors(filters, overlay, environment) == []


def test_one_log_destination_for_every_level(filters):
    # The merge model keeps the role default's mapping, so a single destination
    # only arrives when no level holds the mapping; the schema allows it.
    settings = merged(filters)
    settings["prosody_environment_settings"]["log"] = "*syslog"
    assert filters["prosody_schema_errors"](settings, SCHEMAS, HOST) == []


def test_checking_does_not_change_the_settings(filters):
    settings = merged(filters)
    before = copy.deepcopy(settings)
    filters["prosody_schema_errors"](settings, SCHEMAS, HOST)
    assert settings == before


# ---------------------------------------------------------------- invalid settings

EXTENSIONS_OPTIONS = "enabled, modules, pep_max_items, upgrade_legacy_bookmarks, upgrade_legacy_vcards"
PERIODS = 'seconds, "never", or a count of days, weeks or years such as "2d", "1w", "1y"'
DNS = "a DNS name (labels of letters, digits and hyphens, separated by dots)"
BACKENDS = "internal, sql, memory, none, xep0227"


def _component(**settings):
    return {"prosody_domains": [{"name": "example.com", "components": [settings]}]}


INVALID = [
    pytest.param(
        {"layer01_transport": {"ports": {"c2s_ports": [5222, 70000]}}},
        ["layer01_transport.ports.c2s_ports[1]: 70000 is out of range (allowed: 1 to 65535)"],
        id="port-out-of-range",
    ),
    pytest.param(
        {"layer01_transport": {"ports": {"s2s_ports": ["5269"]}}},
        ['layer01_transport.ports.s2s_ports[0]: "5269" is a string (allowed: an integer from 1 to 65535)'],
        id="port-as-string",
    ),
    pytest.param(
        {"layer01_transport": {"ports": {"c2s_ports": [None]}}},
        ["layer01_transport.ports.c2s_ports[0]: null is not a value (allowed: an integer from 1 to 65535)"],
        id="null-in-list",
    ),
    pytest.param(
        {"layer04_protocol": {"extensions": {"pep_max_item": 10}}},
        [
            "layer04_protocol.extensions.pep_max_item: unknown option; did you mean pep_max_items? "
            f"(allowed here: {EXTENSIONS_OPTIONS})"
        ],
        id="typo-option",
    ),
    pytest.param(
        {"layer04_protocol": {"extensions": {"use_ipv6": False}}},
        [
            "layer04_protocol.extensions.use_ipv6: unknown option here; it belongs in layer03_stanza.routing "
            f"(allowed here: {EXTENSIONS_OPTIONS})"
        ],
        id="option-of-another-topic",
    ),
    pytest.param(
        {"layer04_protocol": {"extensions": {"https_port": 5281}}},
        [
            "layer04_protocol.extensions.https_port: unknown option; Prosody never reads https_port: "
            f"use https_ports in layer07_interfaces.http (allowed here: {EXTENSIONS_OPTIONS})"
        ],
        id="singular-port-option",
    ),
    pytest.param(
        {"layer08_integration": {"rest": {}}},
        ["layer08_integration.rest: unknown topic (allowed here: apis, ldap, oauth, webhooks)"],
        id="unknown-topic",
    ),
    pytest.param(
        {"prosody_environment_settings": {"daemonize": False}},
        [
            "prosody_environment_settings.daemonize: unknown option; daemonize is obsolete (prosodyctl check "
            "config refuses it; systemd runs Prosody) (allowed here: log, statistics, statistics_config, "
            "statistics_interval)"
        ],
        id="obsolete-option",
    ),
    pytest.param(
        {"layer01_transport": {"connections": {"network_settings": {"read_timout": 5}}}},
        [
            "layer01_transport.connections.network_settings.read_timout: unknown key; did you mean read_timeout? "
            "(allowed here: accept_retry_interval, connect_timeout, fatal_errors, keep_buffers, "
            "max_send_buffer_size, max_send_chunk, max_wait, min_wait, nagle, opportunistic_writes, "
            "protect_listeners, read_retry_delay, read_size, read_timeout, send_buffer_chunks, send_timeout, "
            "shutdown_deadline, ssl_handshake_timeout, tcp_backlog, tcp_defer_accept, tcp_fastopen, "
            "tcp_keepalive, verbose)"
        ],
        id="typo-nested-key",
    ),
    pytest.param(
        {"layer06_storage": {"caching": {"muc_room_cache_size": True}}},
        ["layer06_storage.caching.muc_room_cache_size: true is a boolean (allowed: an integer (1 or more))"],
        id="boolean-is-not-an-integer",
    ),
    pytest.param(
        {"layer06_storage": {"caching": {"muc_room_cache_size": 1.5}}},
        ["layer06_storage.caching.muc_room_cache_size: 1.5 is a number (allowed: an integer (1 or more))"],
        id="float-is-not-an-integer",
    ),
    pytest.param(
        {"layer01_transport": {"compression": {"enabled": "false"}}},
        ['layer01_transport.compression.enabled: "false" is a string (allowed: true or false)'],
        id="enabled-as-string",
    ),
    pytest.param(
        {"layer01_transport": {"tls": {"modules": {"tls": 1}}}},
        ["layer01_transport.tls.modules.tls: 1 is an integer (allowed: true or false)"],
        id="module-switch-not-boolean",
    ),
    pytest.param(
        {"layer01_transport": {"tls": {"modules": {"TLS": True, "mod_bosh": True}}}},
        [
            'layer01_transport.tls.modules: "TLS" is not a module name (allowed: a module name: lowercase '
            "letters, digits and _, without the mod_ prefix)",
            'layer01_transport.tls.modules: "mod_bosh" starts with mod_ (allowed: a module name: lowercase '
            "letters, digits and _, without the mod_ prefix)",
        ],
        id="bad-module-names",
    ),
    pytest.param(
        {"layer01_transport": {"tls": {"modules": {"tls\n": True}}}},
        [
            'layer01_transport.tls.modules: "tls\\n" is not a module name (allowed: a module name: lowercase '
            "letters, digits and _, without the mod_ prefix)"
        ],
        id="module-name-with-trailing-newline",
    ),
    pytest.param(
        {"layer05_services": {"presence": {"modules": {"carbons": False}}}},
        [
            "layer05_services.presence.modules.carbons: false here but true in "
            "layer05_services.messaging.modules.carbons (allowed: switch a module on or off in one topic only)"
        ],
        id="module-on-and-off",
    ),
    pytest.param(
        {"layer01_transport": {"tls": {"tls_profile": "Modern"}}},
        ['layer01_transport.tls.tls_profile: "Modern" is not allowed (allowed: modern, intermediate, old, legacy)'],
        id="bad-tls-profile",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"sql": {"driver": "postgres", "database": "prosody"}}}},
        ['layer06_storage.backends.sql.driver: "postgres" is not allowed (allowed: SQLite3, PostgreSQL, MySQL)'],
        id="bad-sql-driver",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"sql": {"driver": "PostgreSQL", "database": "p", "port": 99999}}}},
        ["layer06_storage.backends.sql.port: 99999 is out of range (allowed: 1 to 65535)"],
        id="bad-sql-port",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"sql": {"driver": "MySQL"}}}},
        ["layer06_storage.backends.sql.database: missing (required: a non-empty string)"],
        id="sql-without-database",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"storage": "mysql"}}},
        [
            f'layer06_storage.backends.storage: "mysql" is not allowed (allowed: {BACKENDS}, '
            "or a mapping store name -> one of them)"
        ],
        id="bad-storage-backend",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "example.com", "storage": {"Roster": "disk"}}]},
        [
            'prosody_domains[0].storage: "Roster" is not a store name (allowed: a store name: lowercase letters, '
            "digits and _)",
            f'prosody_domains[0].storage.Roster: "disk" is not allowed (allowed: {BACKENDS})',
        ],
        id="bad-per-store-storage",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "example.com", "storage": ["sql"]}]},
        [
            f'prosody_domains[0].storage: ["sql"] is a list (allowed: {BACKENDS}, '
            "or a mapping store name -> one of them)"
        ],
        id="storage-as-list",
    ),
    pytest.param(
        _component(name="bridge.example.com", type="external"),
        [
            "prosody_domains[0].components[2].component_secret: missing (required when type is external: the "
            "shared secret the component logs in with)"
        ],
        id="external-without-secret",
    ),
    pytest.param(
        _component(name="hooks.example.com", type="rest"),
        [
            "prosody_domains[0].components[2].rest_callback_url: missing (required when type is rest: the "
            "URL messages to the component are POSTed to)"
        ],
        id="webhook-without-url",
    ),
    pytest.param(
        _component(name="conference.example.com", component_secret="hunter2"),
        [
            "prosody_domains[0].components[0].component_secret: not allowed when type is muc "
            "(allowed: only when type is external)"
        ],
        id="secret-on-muc",
    ),
    pytest.param(
        _component(name="upload.example.com", restrict_room_creation="local"),
        [
            "prosody_domains[0].components[1].restrict_room_creation: not allowed when type is http_file_share "
            "(allowed: only when type is muc)"
        ],
        id="muc-option-on-upload",
    ),
    pytest.param(
        _component(name="bridge.example.com", type="external", component_secret=""),
        [
            "prosody_domains[0].components[2].component_secret: (secret value, not shown) is empty "
            "(allowed: a non-empty string)"
        ],
        id="empty-secret",
    ),
    pytest.param(
        _component(name="x.example.com"),
        [
            "prosody_domains[0].components[2].type: missing "
            "(required: one of muc, http_file_share, pubsub, proxy65, external, rest)"
        ],
        id="component-without-type",
    ),
    pytest.param(
        _component(name="chat.example.com", type="chat"),
        [
            'prosody_domains[0].components[2].type: "chat" is not allowed '
            "(allowed: muc, http_file_share, pubsub, proxy65, external, rest)"
        ],
        id="bad-component-type",
    ),
    pytest.param(
        {"layer07_interfaces": {"components": {"enabled": False}}}
        | _component(name="bridge.example.com", type="external", component_secret="s3cret"),
        [
            'prosody_domains[0].components[2].type: "external" needs the component listener, but '
            "layer07_interfaces.components is off (allowed: layer07_interfaces.components.enabled: true, "
            "or another type)"
        ],
        id="external-without-listener",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "-bad.example.com"}, {"name": "a" * 64 + ".example.com"}]},
        [
            f'prosody_domains[1].name: "-bad.example.com" has an invalid label "-bad" (allowed: {DNS})',
            f'prosody_domains[2].name: "{"a" * 56}... has a label longer than 63 characters (allowed: {DNS})',
        ],
        id="bad-domain-names",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "example..com"}]},
        [f'prosody_domains[1].name: "example..com" has an empty label (allowed: {DNS})'],
        id="empty-label",
    ),
    pytest.param(
        _component(name="example.com", type="pubsub"),
        [
            'prosody_domains[0].components[2].name: "example.com" is already the name of prosody_domains[0] '
            "(allowed: each domain and component name once)"
        ],
        id="component-named-like-its-domain",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "example.com", "state": "absent"}]},
        ["prosody_domains: [] is too short (allowed: a list of domains (VirtualHosts), at least one)"],
        id="no-domain-left",
    ),
    pytest.param(
        {"prosody_domains": [{"c2s_require_encryption": True}]},
        [f"prosody_domains[0].name: missing (required: {DNS})"],
        id="domain-without-name",
    ),
    pytest.param(
        {"prosody_environment_settings": {"log": {"verbose": "/var/log/prosody/verbose.log"}}},
        ['prosody_environment_settings.log: "verbose" is not allowed (allowed: debug, info, warn, error)'],
        id="bad-log-level",
    ),
    pytest.param(
        {"prosody_environment_settings": {"log": {"debug": "prosody.log"}}},
        [
            'prosody_environment_settings.log.debug: "prosody.log" is not valid '
            '(allowed: an absolute file path, "*syslog" or "*console")'
        ],
        id="relative-log-file",
    ),
    pytest.param(
        {"prosody_environment_settings": {"statistics_interval": "often"}},
        [
            'prosody_environment_settings.statistics_interval: "often" is not allowed '
            '(allowed: seconds, or "manual" (collected when read, e.g. by OpenMetrics))'
        ],
        id="bad-statistics-interval",
    ),
    pytest.param(
        {"layer02_stream": {"authentication": {"admins": ["ops@", "@example.com", "ops@example.com"]}}},
        [
            'layer02_stream.authentication.admins[0]: "ops@" is not a bare JID (allowed: a bare JID, user@domain)',
            'layer02_stream.authentication.admins[1]: "@example.com" is not a bare JID '
            "(allowed: a bare JID, user@domain)",
        ],
        id="bad-jids",
    ),
    pytest.param(
        {"layer02_stream": {"negotiation": {"contact_info": {"abuse": ["abuse@example.com"]}}}},
        [
            'layer02_stream.negotiation.contact_info.abuse[0]: "abuse@example.com" is not a valid URI '
            "(allowed: a URI such as mailto:, xmpp: or https:)"
        ],
        id="address-without-scheme",
    ),
    pytest.param(
        {"layer07_interfaces": {"http": {"http_external_url": "https:///x"}}},
        ['layer07_interfaces.http.http_external_url: "https:///x" has no host (allowed: an http:// or https:// URL)'],
        id="url-without-host",
    ),
    pytest.param(
        {"layer07_interfaces": {"http": {"https_interfaces": ["::1", "256.0.0.1"]}}},
        [
            'layer07_interfaces.http.https_interfaces[1]: "256.0.0.1" is not an IP address '
            '(allowed: an IP address, or "*" for every IPv4 address)'
        ],
        id="bad-ip-address",
    ),
    pytest.param(
        {"layer06_storage": {"archiving": {"archive_expires_after": 0, "muc_log_expires_after": "1m"}}},
        [
            f"layer06_storage.archiving.archive_expires_after: 0 is not a positive number of seconds "
            f"(allowed: {PERIODS})",
            f'layer06_storage.archiving.muc_log_expires_after: "1m" is not a period both Prosody series read '
            f"alike (allowed: {PERIODS})",
        ],
        id="bad-periods",
    ),
    pytest.param(
        {"layer01_transport": {"connections": {"limits": {"c2s": {"rate": "10kb/s", "burst": "soon"}}}}},
        [
            'layer01_transport.connections.limits.c2s.burst: "soon" is not valid '
            '(allowed: seconds, as an integer or such as "2s")'
        ],
        id="bad-burst",
    ),
    pytest.param(
        {"layer02_stream": {"negotiation": {"disco_items": [[]]}}},
        ["layer02_stream.negotiation.disco_items[0]: [] is too short (allowed: a list [address] or [address, name])"],
        id="empty-disco-item",
    ),
    pytest.param(
        {"layer05_services": {"groupchat": {"restrict_room_creation": "admin"}}},
        ['layer05_services.groupchat.restrict_room_creation: "admin" is not allowed (allowed: true, false, local)'],
        id="bad-room-creation-policy",
    ),
    pytest.param(
        {"layer08_integration": {"oauth": {"allowed_oauth2_grant_types": ["authorization_code", "client"]}}},
        [
            'layer08_integration.oauth.allowed_oauth2_grant_types[1]: "client" is not allowed '
            "(allowed: authorization_code, refresh_token, password, implicit, "
            "urn:ietf:params:oauth:grant-type:device_code)"
        ],
        id="bad-list-item",
    ),
    pytest.param(
        {
            "layer01_transport": {"ports": {"s2s_ports": [0]}, "tls": {"tls_profile": "x"}},
            "layer03_stanza": {"validation": {"s2s_stanza_size_limit": "big"}},
        },
        [
            "layer01_transport.ports.s2s_ports[0]: 0 is out of range (allowed: 1 to 65535)",
            'layer01_transport.tls.tls_profile: "x" is not allowed (allowed: modern, intermediate, old, legacy)',
            'layer03_stanza.validation.s2s_stanza_size_limit: "big" is a string (allowed: an integer (10000 or more))',
        ],
        id="all-errors-at-once",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"sql": {"driver": "PostgreSQL", "database": "p", "password": 4242}}}},
        ["layer06_storage.backends.sql.password: (secret value, not shown) is an integer (allowed: a string)"],
        id="secret-value-hidden",
    ),
]


@pytest.mark.parametrize(("overlay", "expected"), INVALID)
def test_invalid_settings_give_exact_messages(filters, overlay, expected):
    assert errors(filters, overlay) == [f"{HOST}: {message}" for message in expected]


def test_a_secret_never_appears_in_a_message(filters):
    overlay = {
        "layer05_services": {"messaging": {"turn_external_secret": 918273645}},
        "layer06_storage": {"backends": {"sql": {"driver": "PostgreSQL", "database": "p", "password": ["pw-4242"]}}},
    }
    found = errors(filters, overlay)
    assert len(found) == 2
    assert not any("918273645" in message or "pw-4242" in message for message in found)


def test_a_list_block_that_nothing_set_counts_as_empty(filters):
    # prosody_merge returns {} when no level sets anything, also for prosody_domains.
    settings = merged(filters)
    settings["prosody_domains"] = {}
    assert filters["prosody_schema_errors"](settings, SCHEMAS, HOST) == [
        f"{HOST}: prosody_domains: [] is too short (allowed: a list of domains (VirtualHosts), at least one)"
    ]


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("settings", "schemas", "host", "message"),
    [
        pytest.param("x", SCHEMAS, HOST, "expected the merged settings as a mapping, got a string", id="settings"),
        pytest.param({}, [], HOST, "schemas must be a non-empty mapping {block: schema}, got a list", id="schemas"),
        pytest.param({}, {}, HOST, "schemas must be a non-empty mapping {block: schema}, got a mapping", id="empty"),
        pytest.param({}, SCHEMAS, "", "host must be the host's name, got ''", id="host"),
        pytest.param(
            {"layer09_extra": {}},
            {"layer01_transport": {}},
            HOST,
            "no schema for layer09_extra (schemas given for layer01_transport)",
            id="block-without-schema",
        ),
        pytest.param(
            {},
            {"layer01_transport": "x"},
            HOST,
            "the schema of layer01_transport must be a mapping, got a string",
            id="schema-not-a-mapping",
        ),
        pytest.param(
            {},
            {"layer01_transport": {"ports": {"type": "dict", "check_with": "no_such_format"}}},
            HOST,
            "the schemas themselves are invalid: ",
            id="invalid-schema",
        ),
    ],
)
def test_bad_arguments(filters, settings, schemas, host, message):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_schema_errors"](settings, schemas, host)
    assert str(error.value).startswith(f"prosody_schema_errors: {message}")


REPORTS = [
    pytest.param({"a": [], "b": []}, "", id="no-problems"),
    pytest.param({}, "", id="no-hosts"),
    pytest.param(
        {"a": ["a: x: bad"], "b": []},
        "1 problem in the merged settings of 1 host; nothing was deployed:\na: x: bad",
        id="one",
    ),
    pytest.param(
        {"a": ["a: x: bad", "a: y: bad"], "b": ["b: z: bad"]},
        "3 problems in the merged settings of 2 hosts; nothing was deployed:\na: x: bad\na: y: bad\nb: z: bad",
        id="several-hosts",
    ),
    pytest.param(
        [["a: x: bad"], None, []],
        "1 problem in the merged settings of 1 host; nothing was deployed:\na: x: bad",
        id="list-of-lists",
    ),
]


@pytest.mark.parametrize(("problems", "report"), REPORTS)
def test_report(filters, problems, report):
    assert filters["prosody_schema_report"](problems) == report


@pytest.mark.parametrize(
    ("problems", "message"),
    [
        pytest.param("x", "expected {host: [messages]} or a list of message lists, got a string", id="string"),
        pytest.param({"a": "x"}, "host a must have a list of messages (strings), got 'x'", id="host-string"),
        pytest.param([["a: x: bad"], [1]], "entry 1 must have a list of messages (strings), got [1]", id="ints"),
    ],
)
def test_report_bad_arguments(filters, problems, message):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_schema_report"](problems)
    assert str(error.value) == f"prosody_schema_report: {message}"


# ---------------------------------------------------------------- the schemas themselves


def test_each_layer_schema_has_exactly_its_topics_with_the_reserved_keys():
    for layer in CATALOGUE:
        schema = SCHEMAS[layer["name"]]
        assert list(schema) == layer["topics"], layer["name"]
        for topic, rules in schema.items():
            where = f"{layer['name']}.{topic}"
            assert rules["type"] == "dict", where
            assert rules["allow_unknown"] is False, where
            assert rules["schema"]["enabled"]["type"] == "boolean", where
            modules = rules["schema"]["modules"]
            assert (modules["type"], modules["valuesrules"]["type"]) == ("dict", "boolean"), where


def _options(schema):
    """{option: [where]} over the layer topics and the environment settings."""
    found = {}
    for layer in LAYERS:
        for topic, rules in SCHEMAS[layer].items():
            for option in set(rules["schema"]) - {"enabled", "modules"}:
                found.setdefault(option, []).append(f"{layer}.{topic}")
    for option in SCHEMAS["prosody_environment_settings"]:
        found.setdefault(option, []).append("prosody_environment_settings")
    return found


def test_every_option_has_one_owner_and_the_loader_options_none():
    # Prosody keeps the later file's value of an option set twice: a schema that
    # allows an option in one place only makes such a duplicate impossible.
    owners = _options(SCHEMAS)
    assert {option: places for option, places in owners.items() if len(places) > 1} == {}
    assert set(LOADER_OPTIONS) & set(owners) == set()


def _set_options(block_settings):
    """(topic, option) pairs a layer settings block sets."""
    for topic, settings in (block_settings or {}).items():
        for option in settings or {}:
            if option not in ("enabled", "modules"):
                yield topic, option


def _settings_files():
    """Every role default, environment profile and inventory vars file (vaults are encrypted)."""
    yield from ROOT.glob("roles/layer0*/defaults/main.yml")
    yield from ROOT.glob("environments/*.yml")
    for path in sorted(ROOT.glob("inventories/*/*_vars/**/*.yml")):
        if path.name != "vault.yml":
            yield path


def test_every_option_the_project_sets_is_in_its_topic_schema():
    suffix = re.compile(r"_(defaults|group|host)$")
    checked = 0
    for path in _settings_files():
        for variable, value in (yaml.safe_load(path.read_text()) or {}).items():
            block = suffix.sub("", variable)
            if block in LAYERS:
                for topic, option in _set_options(value):
                    assert option in SCHEMAS[block][topic]["schema"], f"{path}: {block}.{topic}.{option}"
                    checked += 1
            elif block == "prosody_environment_settings":
                assert set(value) <= set(SCHEMAS[block]), path
    assert checked > 100


def _comparable(rules):
    """Rules without what may differ between a global option and its per-host copy."""
    return {key: value for key, value in rules.items() if key not in ("meta", "dependencies")}


def test_domain_and_component_options_follow_the_global_rules():
    owners = {option: places[0] for option, places in _options(SCHEMAS).items()}
    domain = SCHEMAS["prosody_domains"]["schema"]["schema"]
    component = domain["components"]["schema"]["schema"]
    compared = 0
    for section in (domain, component):
        for option, rules in section.items():
            if option in owners:
                layer, topic = owners[option].split(".")
                global_rules = SCHEMAS[layer][topic]["schema"][option]
                assert _comparable(rules) == _comparable(global_rules), f"{option}: differs from {owners[option]}"
                compared += 1
    assert compared > 30
