"""Features that need, exclude or outgrow each other, checked on merged settings.

Prosody accepts many combinations that cannot work: WebSocket without its
HTTP server, a MUC archive on a host that has no MUC, LDAP authentication
with nothing configured to reach the directory, modules that only exist on
13.0 on a 0.12 host.  Each rule below looks at one host's merged settings
and, when it does not hold, says what to change.

Each rule also carries its edges (``@edges``): what needs or excludes what,
each end placed in its layer.  ``prosody-stack deps`` draws the dependency
graph from them, so the rules and the graph cannot drift apart; a rule
without edges fails tests/unit/test_prosody_dependencies.py.
"""

from collections.abc import Mapping
from typing import NamedTuple

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prosody_dependency_findings
short_description: What in a host's merged settings cannot work together
description:
  - Returns one finding per broken rule, each naming the settings involved
    and what to change; an empty list when every rule holds.
  - Rules - WebSocket, BOSH and file upload need the HTTP topic; muc_mam needs
    a MUC component; SQL storage needs a known driver and its settings; LDAP
    authentication needs the LDAP topic with a base DN; s2s_secure_auth needs
    federation; vcard and vcard_legacy exclude each other; modules and component types that only exist on
    Prosody 13 (with Debian's prosody-modules, e.g. rest, http_oauth2) are
    refused on a 0.12 host; OAuth needs its registration key; firewall
    scripts need mod_firewall.
options:
  _input:
    description: The merged settings (C(prosody_merged)).
    type: dict
    required: true
  series:
    description: The host's Prosody series, C(0.12) or C(13.0).
    type: str
    required: true
  environment:
    description: The host's environment name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Stop on settings that cannot work
  ansible.builtin.assert:
    that: findings | length == 0
    fail_msg: "{{ findings }}"
  vars:
    findings: "{{ prosody_merged | prosody_dependency_findings(prosody_series, prosody_environment) }}"
"""

RETURN = r"""
_value:
  description: Findings, one sentence each; empty when all rules hold.
  type: list
  elements: str
"""

# Modules of Prosody 13.0 (core, or Debian 13's prosody-modules: rest,
# http_oauth2) that neither 0.12 nor Debian 12's prosody-modules provides,
# each with the layer whose topics would switch it on (where the graph
# draws it).
ONLY_ON_13 = {
    "account_activity": "layer02_stream",
    "debug_reset": "layer04_protocol",
    "debug_stanzas": "layer04_protocol",
    "flags": "layer02_stream",
    "http_altconnect": "layer07_interfaces",
    "http_oauth2": "layer08_integration",
    "rest": "layer08_integration",
    "s2s_auth_dane_in": "layer02_stream",
    "server_info": "layer02_stream",
}
# Component types whose module exists only there, with the layer holding their defaults.
COMPONENT_TYPES_ONLY_ON_13 = {"rest": "layer08_integration"}
SQL_DRIVERS = ("SQLite3", "PostgreSQL", "MySQL")
# Topics of layer07_interfaces and component types that ride on Prosody's HTTP server.
HTTP_TOPICS = ("websocket", "bosh")
HTTP_COMPONENT_TYPES = ("http_file_share",)


# ---------------------------------------------------------------- the graph's vocabulary


class Node(NamedTuple):
    """One end of an edge: a feature, in the layer that configures it ("" for a Prosody series)."""

    layer: str
    kind: str  # topic, option, module, component type, series
    name: str  # relative to the layer: "websocket", "encryption.s2s_secure_auth", "s2s"; a series: "13.0"

    @classmethod
    def topic(cls, path):
        """A topic by its settings path, "layer07_interfaces.http"."""
        layer, name = path.split(".", 1)
        return cls(layer, "topic", name)

    @classmethod
    def option(cls, path, value=None):
        """An option by its settings path, with the value that matters if one does."""
        layer, name = path.split(".", 1)
        return cls(layer, "option", name if value is None else f"{name}: {value}")

    @classmethod
    def module(cls, name, layer):
        return cls(layer, "module", name)

    @classmethod
    def component(cls, component_type, layer):
        """A component type, drawn in the layer that holds its defaults or serves it."""
        return cls(layer, "component type", component_type)


class Edge(NamedTuple):
    """`source` needs `target`, or the two exclude each other."""

    source: Node
    relation: str  # needs, excludes
    target: Node


PROSODY_13 = Node("", "series", "13.0")
HTTP_SERVER = Node.topic("layer07_interfaces.http")


def needs(source, target):
    return Edge(source, "needs", target)


def excludes(source, target):
    return Edge(source, "excludes", target)


def edges(*described):
    """Attach a check's edges, read by the dependency graph (prosody-stack deps)."""

    def attach(check):
        check.edges = tuple(described)
        return check

    return attach


# ---------------------------------------------------------------- the rules


def _topic(merged, layer, topic):
    return (merged.get(layer) or {}).get(topic) or {}


def _on(settings):
    return settings.get("enabled", True) is not False


def _enabled(merged, layer, topic):
    """The topic is set and not switched off."""
    settings = (merged.get(layer) or {}).get(topic)
    return isinstance(settings, Mapping) and _on(settings)


def _switched_off(merged, layer, topic):
    return _topic(merged, layer, topic).get("enabled") is False


def _global_modules(merged):
    """Modules switched on by enabled topics, anywhere in the layers."""
    return {
        module
        for name, layer in merged.items()
        if name.startswith("layer") and isinstance(layer, Mapping)
        for settings in layer.values()
        if isinstance(settings, Mapping) and _on(settings)
        for module, on in (settings.get("modules") or {}).items()
        if on
    }


def _components(merged):
    return [component for domain in merged.get("prosody_domains") or [] for component in domain.get("components") or []]


def _http_users(merged):
    users = [f"layer07_interfaces.{name}" for name in HTTP_TOPICS if _enabled(merged, "layer07_interfaces", name)]
    users += [f"component {c['name']}" for c in _components(merged) if c.get("type") in HTTP_COMPONENT_TYPES]
    return users


@edges(
    *(needs(Node.topic(f"layer07_interfaces.{name}"), HTTP_SERVER) for name in HTTP_TOPICS),
    *(needs(Node.component(kind, "layer07_interfaces"), HTTP_SERVER) for kind in HTTP_COMPONENT_TYPES),
)
def rule_http_layer(merged, _series, _environment):
    users = _http_users(merged)
    if users and _switched_off(merged, "layer07_interfaces", "http"):
        yield (
            f"{', '.join(users)} need(s) Prosody's HTTP server, but layer07_interfaces.http is off: "
            "set layer07_interfaces.http.enabled: true, or switch those off"
        )


# MUC archives are archiving (layer06_storage); MUC components take their defaults from layer05_services.
@edges(needs(Node.module("muc_mam", "layer06_storage"), Node.component("muc", "layer05_services")))
def rule_muc_mam(merged, _series, _environment):
    if "muc_mam" in _global_modules(merged):
        yield "muc_mam is enabled server-wide: enable it only on a MUC component (modules: {muc_mam: true})"
    for component in _components(merged):
        if (component.get("modules") or {}).get("muc_mam") and component.get("type") != "muc":
            yield f"component {component['name']} ({component.get('type')}) enables muc_mam, which needs type: muc"


@edges(needs(Node.option("layer06_storage.backends.storage", "sql"), Node.option("layer06_storage.backends.sql")))
def rule_sql_storage(merged, _series, _environment):
    backends = _topic(merged, "layer06_storage", "backends")
    storage = backends.get("storage")
    uses_sql = storage == "sql" or (isinstance(storage, Mapping) and "sql" in storage.values())
    if not uses_sql:
        return
    sql = backends.get("sql")
    if not isinstance(sql, Mapping) or sql.get("driver") not in SQL_DRIVERS:
        yield (
            "layer06_storage.backends.storage uses sql but layer06_storage.backends.sql.driver is "
            f"{(sql or {}).get('driver')!r}: set it to one of {', '.join(SQL_DRIVERS)}"
        )
        return
    needed = ["database"] + ([] if sql["driver"] == "SQLite3" else ["host", "username", "password"])
    missing = [key for key in needed if not sql.get(key)]
    if missing:
        yield f"layer06_storage.backends.sql ({sql['driver']}) lacks {', '.join(missing)}"


def _ldap_users(merged):
    """Where LDAP authentication is asked for: server-wide and per domain."""
    users = []
    if _topic(merged, "layer02_stream", "authentication").get("authentication") == "ldap":
        users.append("layer02_stream.authentication.authentication")
    users += [
        f"domain {domain.get('name')}"
        for domain in merged.get("prosody_domains") or []
        if domain.get("authentication") == "ldap"
    ]
    return users


@edges(
    needs(Node.option("layer02_stream.authentication.authentication", "ldap"), Node.topic("layer08_integration.ldap")),
    needs(Node.topic("layer08_integration.ldap"), Node.option("layer08_integration.ldap.ldap_base")),
)
def rule_ldap(merged, _series, _environment):
    users = _ldap_users(merged)
    enabled = _enabled(merged, "layer08_integration", "ldap")
    if users and not enabled:
        yield f"{', '.join(users)} authenticate(s) with ldap but layer08_integration.ldap is off: enable it"
    elif (users or _topic(merged, "layer08_integration", "ldap").get("enabled")) and not _topic(
        merged, "layer08_integration", "ldap"
    ).get("ldap_base"):
        yield "layer08_integration.ldap.ldap_base is empty: set the base DN that holds the accounts"


@edges(needs(Node.option("layer02_stream.encryption.s2s_secure_auth"), Node.module("s2s", "layer03_stanza")))
def rule_secure_federation(merged, _series, _environment):
    secure = _topic(merged, "layer02_stream", "encryption").get("s2s_secure_auth")
    routing = _topic(merged, "layer03_stanza", "routing")
    if secure and (routing.get("modules") or {}).get("s2s") is False:
        yield (
            "layer02_stream.encryption.s2s_secure_auth is true but federation is off "
            "(layer03_stanza.routing.modules.s2s: false): drop one of the two"
        )


@edges(excludes(Node.module("vcard", "layer04_protocol"), Node.module("vcard_legacy", "layer04_protocol")))
def rule_vcard(merged, _series, _environment):
    modules = _global_modules(merged)
    if {"vcard", "vcard_legacy"} <= modules:
        yield "vcard and vcard_legacy are both enabled (Prosody drops vcard): keep vcard_legacy + vcard4, or vcard"


@edges(
    *(needs(Node.module(name, layer), PROSODY_13) for name, layer in sorted(ONLY_ON_13.items())),
    *(needs(Node.component(kind, layer), PROSODY_13) for kind, layer in sorted(COMPONENT_TYPES_ONLY_ON_13.items())),
)
def rule_series(merged, series, _environment):
    if series != "0.12":
        return
    modules = _global_modules(merged) | {
        module
        for section in merged.get("prosody_domains") or []
        for module, on in (section.get("modules") or {}).items()
        if on
    }
    for name in sorted(modules.intersection(ONLY_ON_13)):
        yield f"module {name} exists only on Prosody 13: this host runs 0.12 (prosody_series); remove it or upgrade"
    for component in _components(merged):
        if component.get("type") in COMPONENT_TYPES_ONLY_ON_13:
            yield (
                f"component {component['name']} has type {component['type']}, which exists only on Prosody 13: "
                "this host runs 0.12 (prosody_series); remove it or upgrade"
            )


@edges(excludes(Node.module("rest", "layer08_integration"), Node.component("rest", "layer08_integration")))
def rule_rest_placement(merged, _series, _environment):
    hooks = [c["name"] for c in _components(merged) if c.get("type") == "rest"]
    if hooks and "rest" in _global_modules(merged):
        yield (
            f"mod_rest is loaded server-wide (layer08_integration.apis) and as the webhook component(s) "
            f"{', '.join(hooks)}, which Prosody refuses: set layer08_integration.apis.modules.rest: false "
            "and enable the REST API per domain (modules: {rest: true})"
        )


@edges(needs(Node.topic("layer08_integration.oauth"), Node.option("layer08_integration.oauth.oauth2_registration_key")))
def rule_oauth(merged, _series, _environment):
    if _enabled(merged, "layer08_integration", "oauth") and not _topic(merged, "layer08_integration", "oauth").get(
        "oauth2_registration_key"
    ):
        yield (
            "layer08_integration.oauth is on but oauth2_registration_key is empty: without it mod_http_oauth2 "
            "offers no client registration and no authorization endpoint; set it from the vault"
        )


@edges(needs(Node.option("layer03_stanza.filtering.firewall_scripts"), Node.module("firewall", "layer03_stanza")))
def rule_firewall(merged, _series, _environment):
    filtering = _topic(merged, "layer03_stanza", "filtering")
    if _on(filtering) and filtering.get("firewall_scripts") and "firewall" not in _global_modules(merged):
        yield (
            "layer03_stanza.filtering.firewall_scripts names scripts but mod_firewall is not loaded: "
            "set layer03_stanza.filtering.modules.firewall: true"
        )


RULES = (
    rule_http_layer,
    rule_muc_mam,
    rule_sql_storage,
    rule_ldap,
    rule_secure_federation,
    rule_vcard,
    rule_series,
    rule_rest_placement,
    rule_oauth,
    rule_firewall,
)


def prosody_dependency_findings(merged, series, environment):
    """Findings for one host's merged settings; see DOCUMENTATION."""
    if not isinstance(merged, Mapping):
        raise AnsibleFilterError(f"prosody_dependency_findings: expected the merged settings mapping, got {merged!r}")
    return [finding for rule in RULES for finding in rule(merged, series, environment)]


class FilterModule:
    """Dependency and conflict rules."""

    def filters(self):
        return {"prosody_dependency_findings": prosody_dependency_findings}
