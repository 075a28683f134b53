"""prosody_dependency_findings: one table of settings that cannot work, one of settings that can."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from conftest import filter_module

SQL = {"driver": "PostgreSQL", "host": "db", "database": "prosody", "username": "prosody", "password": "pw"}

VALID = [
    pytest.param({}, "0.12", "production", id="empty"),
    pytest.param(
        {
            "prosody_domains": [{"name": "a", "components": [{"name": "hooks.a", "type": "rest"}]}],
            "layer08_integration": {"oauth": {"modules": {"http_oauth2": True}, "oauth2_registration_key": "k"}},
        },
        "13.0",
        "staging",
        id="rest-and-oauth-on-13",
    ),
    pytest.param(
        {
            "prosody_domains": [{"name": "staff.a", "authentication": "ldap"}],
            "layer08_integration": {"ldap": {"enabled": True, "ldap_base": "ou=people,dc=a"}},
        },
        "0.12",
        "staging",
        id="ldap-per-domain",
    ),
    pytest.param(
        {"layer07_interfaces": {"http": {}, "websocket": {"modules": {"websocket": True}}}},
        "13.0",
        "staging",
        id="ws+http",
    ),
    pytest.param({"layer06_storage": {"backends": {"storage": "sql", "sql": SQL}}}, "0.12", "staging", id="sql"),
    pytest.param(
        {"layer06_storage": {"backends": {"storage": "sql", "sql": {"driver": "SQLite3", "database": "p.sqlite"}}}},
        "0.12",
        "development",
        id="sqlite-needs-no-host",
    ),
    pytest.param(
        {
            "prosody_domains": [
                {"name": "a", "components": [{"name": "c.a", "type": "muc", "modules": {"muc_mam": True}}]}
            ]
        },
        "0.12",
        "production",
        id="muc_mam-on-muc",
    ),
    pytest.param(
        {"layer04_protocol": {"x": {"modules": {"server_info": True}}}}, "13.0", "staging", id="13-module-on-13"
    ),
    pytest.param(
        {"layer04_protocol": {"x": {"enabled": False, "modules": {"flags": True}}}}, "0.12", "staging", id="off-topic"
    ),
    pytest.param(
        {"layer01_transport": {"compression": {}}}, "0.12", "development", id="compression-outside-production"
    ),
    pytest.param(
        {"layer03_stanza": {"filtering": {"modules": {"firewall": True}, "firewall_scripts": ["x"]}}},
        "0.12",
        "staging",
        id="firewall-scripts-with-module",
    ),
    pytest.param(
        {"layer03_stanza": {"filtering": {"enabled": False, "firewall_scripts": ["x"]}}},
        "0.12",
        "staging",
        id="firewall-scripts-in-a-topic-that-is-off",
    ),
]


@pytest.mark.parametrize(("merged", "series", "environment"), VALID)
def test_valid(filters, merged, series, environment):
    assert filters["prosody_dependency_findings"](merged, series, environment) == []


INVALID = [
    pytest.param(
        {"layer07_interfaces": {"http": {"enabled": False}, "bosh": {}}},
        "0.12",
        "staging",
        "layer07_interfaces.bosh need(s) Prosody's HTTP server, but layer07_interfaces.http is off: "
        "set layer07_interfaces.http.enabled: true, or switch those off",
        id="bosh-without-http",
    ),
    pytest.param(
        {
            "layer07_interfaces": {
                "http": {"enabled": False},
                "websocket": {"enabled": False},
                "bosh": {"enabled": False},
            },
            "prosody_domains": [{"name": "a", "components": [{"name": "up.a", "type": "http_file_share"}]}],
        },
        "0.12",
        "staging",
        "component up.a need(s) Prosody's HTTP server, but layer07_interfaces.http is off: "
        "set layer07_interfaces.http.enabled: true, or switch those off",
        id="upload-without-http",
    ),
    pytest.param(
        {"layer05_services": {"groupchat": {"modules": {"muc_mam": True}}}},
        "0.12",
        "staging",
        "muc_mam is enabled server-wide: enable it only on a MUC component (modules: {muc_mam: true})",
        id="muc_mam-global",
    ),
    pytest.param(
        {
            "prosody_domains": [
                {"name": "a", "components": [{"name": "p.a", "type": "pubsub", "modules": {"muc_mam": True}}]}
            ]
        },
        "0.12",
        "staging",
        "component p.a (pubsub) enables muc_mam, which needs type: muc",
        id="muc_mam-on-pubsub",
    ),
    pytest.param(
        {"layer06_storage": {"backends": {"storage": "sql", "sql": {"driver": "Oracle"}}}},
        "0.12",
        "staging",
        "layer06_storage.backends.storage uses sql but layer06_storage.backends.sql.driver is 'Oracle': "
        "set it to one of SQLite3, PostgreSQL, MySQL",
        id="sql-unknown-driver",
    ),
    pytest.param(
        {
            "layer06_storage": {
                "backends": {"storage": {"archive": "sql"}, "sql": {"driver": "PostgreSQL", "database": "p"}}
            }
        },
        "0.12",
        "staging",
        "layer06_storage.backends.sql (PostgreSQL) lacks host, username, password",
        id="sql-per-store-incomplete",
    ),
    pytest.param(
        {
            "layer02_stream": {"authentication": {"authentication": "ldap"}},
            "layer08_integration": {"ldap": {"enabled": False}},
        },
        "0.12",
        "staging",
        "layer02_stream.authentication.authentication authenticate(s) with ldap but layer08_integration.ldap is off: "
        "enable it",
        id="ldap-off",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "a"}, {"name": "staff.a", "authentication": "ldap"}]},
        "13.0",
        "staging",
        "domain staff.a authenticate(s) with ldap but layer08_integration.ldap is off: enable it",
        id="ldap-domain-without-topic",
    ),
    pytest.param(
        {
            "prosody_domains": [{"name": "staff.a", "authentication": "ldap"}],
            "layer08_integration": {"ldap": {"enabled": True, "ldap_server": "dir"}},
        },
        "0.12",
        "staging",
        "layer08_integration.ldap.ldap_base is empty: set the base DN that holds the accounts",
        id="ldap-domain-no-base",
    ),
    pytest.param(
        {"layer08_integration": {"ldap": {"enabled": True, "ldap_base": ""}}},
        "0.12",
        "staging",
        "layer08_integration.ldap.ldap_base is empty: set the base DN that holds the accounts",
        id="ldap-on-no-base",
    ),
    pytest.param(
        {
            "layer02_stream": {"authentication": {"authentication": "ldap"}},
            "layer08_integration": {"ldap": {"ldap_base": ""}},
        },
        "0.12",
        "staging",
        "layer08_integration.ldap.ldap_base is empty: set the base DN that holds the accounts",
        id="ldap-no-base",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "a", "components": [{"name": "hooks.a", "type": "rest"}]}]},
        "0.12",
        "staging",
        "component hooks.a has type rest, which exists only on Prosody 13: this host runs 0.12 (prosody_series); "
        "remove it or upgrade",
        id="rest-component-on-0.12",
    ),
    pytest.param(
        {"layer08_integration": {"apis": {"modules": {"rest": True}}}},
        "0.12",
        "staging",
        "module rest exists only on Prosody 13: this host runs 0.12 (prosody_series); remove it or upgrade",
        id="rest-api-on-0.12",
    ),
    pytest.param(
        {"layer08_integration": {"oauth": {"enabled": True, "modules": {"http_oauth2": True}}}},
        "13.0",
        "staging",
        "layer08_integration.oauth is on but oauth2_registration_key is empty: without it mod_http_oauth2 offers no "
        "client registration and no authorization endpoint; set it from the vault",
        id="oauth-without-key",
    ),
    pytest.param(
        {
            "prosody_domains": [{"name": "a", "components": [{"name": "hooks.a", "type": "rest"}]}],
            "layer08_integration": {"apis": {"modules": {"rest": True}}},
        },
        "13.0",
        "staging",
        "mod_rest is loaded server-wide (layer08_integration.apis) and as the webhook component(s) hooks.a, which "
        "Prosody refuses: set layer08_integration.apis.modules.rest: false and enable the REST API per domain "
        "(modules: {rest: true})",
        id="rest-api-server-wide-with-webhook",
    ),
    pytest.param(
        {
            "layer02_stream": {"encryption": {"s2s_secure_auth": True}},
            "layer03_stanza": {"routing": {"modules": {"s2s": False}}},
        },
        "0.12",
        "development",
        "layer02_stream.encryption.s2s_secure_auth is true but federation is off "
        "(layer03_stanza.routing.modules.s2s: false): drop one of the two",
        id="secure-auth-without-federation",
    ),
    pytest.param(
        {"layer04_protocol": {"extensions": {"modules": {"vcard": True, "vcard_legacy": True}}}},
        "13.0",
        "staging",
        "vcard and vcard_legacy are both enabled (Prosody drops vcard): keep vcard_legacy + vcard4, or vcard",
        id="vcard-conflict",
    ),
    pytest.param(
        {"prosody_domains": [{"name": "a", "modules": {"flags": True}}]},
        "0.12",
        "staging",
        "module flags exists only on Prosody 13: this host runs 0.12 (prosody_series); remove it or upgrade",
        id="13-only-module-on-0.12",
    ),
    pytest.param(
        {"layer03_stanza": {"filtering": {"firewall_scripts": ["no-links-from-strangers"]}}},
        "13.0",
        "staging",
        "layer03_stanza.filtering.firewall_scripts names scripts but mod_firewall is not loaded: "
        "set layer03_stanza.filtering.modules.firewall: true",
        id="firewall-scripts-without-module",
    ),
]


@pytest.mark.parametrize(("merged", "series", "environment", "finding"), INVALID)
def test_invalid(filters, merged, series, environment, finding):
    assert filters["prosody_dependency_findings"](merged, series, environment) == [finding]


def test_refuses_what_is_not_a_mapping(filters):
    with pytest.raises(AnsibleFilterError, match="expected the merged settings mapping, got"):
        filters["prosody_dependency_findings"]([], "0.12", "staging")


DEPENDENCIES = filter_module("prosody_dependencies")
CATALOGUE = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles/prosody/vars/main.yml").read_text())[
    "prosody_layers"
]
TOPICS = {layer["name"]: set(layer["topics"]) for layer in CATALOGUE}


def test_every_rule_is_run_and_carries_its_edges_for_the_dependency_graph():
    # A rule_ function missing from RULES would never run; one without
    # @edges would be missing from `prosody-stack deps`.
    named = {value for name, value in vars(DEPENDENCIES).items() if name.startswith("rule_")}
    assert named == set(DEPENDENCIES.RULES)
    for rule in DEPENDENCIES.RULES:
        assert getattr(rule, "edges", ()), f"{rule.__name__} has no @edges"


@pytest.mark.parametrize("rule", DEPENDENCIES.RULES, ids=lambda rule: rule.__name__)
def test_edges_name_layers_and_topics_of_the_catalogue(rule):
    for edge in rule.edges:
        assert edge.relation in {"needs", "excludes"}, edge
        for node in (edge.source, edge.target):
            if node.kind == "series":
                assert node == DEPENDENCIES.PROSODY_13
                continue
            assert node.layer in TOPICS, node
            if node.kind in {"topic", "option"}:
                # An option's name starts with its topic: "encryption.s2s_secure_auth".
                assert node.name.split(".")[0].split(":")[0] in TOPICS[node.layer], node
