"""Check every host's merged settings against Cerberus schemas, all errors at once.

Each settings block has a schema: the eight layers keep theirs in their own
role (``roles/layerNN_<name>/vars/main.yml``, variable ``layerNN_<name>_schema``),
the domains and the environment settings in ``schemas/<block>.yml``.  A
layer's schema has one key per topic; each topic is a mapping with the
reserved keys ``enabled`` and ``modules`` and every Prosody option it may
carry, with ``allow_unknown: false`` so a typo'd option is refused.

Cerberus reports a tree of errors; this module turns it into one line per
problem: the host, the full key path (with list indices), the bad value (a
secret's value is never shown) and what is allowed there, e.g.::

    xmpp1.example.com: layer01_transport.ports.c2s_ports[0]: 70000 is out of range (allowed: 1 to 65535)

Besides the schemas it checks what no single schema can see: a module
switched on by one topic and off by another, a name used by two domains or
components, an external component without the component listener.
"""

import difflib
import ipaddress
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError
from cerberus import Validator, errors
from cerberus.platform import _int_types
from cerberus.schema import SchemaError
from cerberus.validator import TypeDefinition

# Filter plugins are loaded one file at a time; the dependency graph's
# vocabulary (a check's @edges) is shared by importing it from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from prosody_dependencies import Node, edges, needs

DOCUMENTATION = r"""
name: prosody_schema_errors
short_description: Problems in one host's merged settings, checked against Cerberus schemas
description:
  - Validates every settings block of the merged settings (C(prosody_merged)) against
    its schema and returns one message per problem, all at once; an empty list means
    the settings are valid.
  - Each message names the host, the full key path with list indices, the bad value
    (values of secret keys such as C(password) or C(component_secret) are hidden) and
    what is allowed there, for example
    C(xmpp1.example.com: layer01_transport.ports.c2s_ports[0]: 70000 is out of range (allowed: 1 to 65535)).
  - An unknown option is reported with the options allowed in that place, the topic it
    belongs to when it is another topic's option, or the nearest known name.
  - Also refused, across blocks: a module switched on by one topic and off by another
    (topics that are off do not count, as in C(prosody_modules)); a domain or component
    name used twice; an external component while C(layer07_interfaces.components) is off.
options:
  _input:
    description: Merged settings, C({block: settings}); every block must have a schema.
    type: dict
    required: true
  schemas:
    description:
      - C({block: schema}). A mapping block (a layer, C(prosody_environment_settings)) has a
        Cerberus schema, C({key: rules}). A list block (C(prosody_domains)) has a Cerberus
        rules set for the whole list, recognised by its C(type) rule.
      - A block listed here but missing from the settings is checked as empty.
    type: dict
    required: true
  host:
    description: The host's name, written at the start of every message.
    type: str
    required: true
---
name: prosody_schema_report
short_description: All hosts' schema problems in one message
description:
  - Joins the lists returned by C(prosody_schema_errors) for every host into one text,
    a count line then one problem per line; an empty text when no host has a problem.
options:
  _input:
    description: C({host: [messages]}), or a list of message lists.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the merged settings of this host
  ansible.builtin.set_fact:
    prosody_schema_problems: "{{ prosody_merged | prosody_schema_errors(prosody_schemas, inventory_hostname) }}"
  # => ['xmpp1.example.com: layer01_transport.tls.tls_profile: "strong" is not allowed
  #      (allowed: modern, intermediate, old, legacy)']

- name: Stop the run with every host's problems in one message
  ansible.builtin.fail:
    msg: "{{ report }}"
  when: report | length > 0
  run_once: true
  vars:
    report: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'prosody_schema_problems')))
         | prosody_schema_report }}
"""

RETURN = r"""
_value:
  description:
    - prosody_schema_errors, one message per problem (empty when valid).
    - prosody_schema_report, one text (empty when no host has a problem).
  type: raw
"""

# Keys whose values are secrets (same rule as prosody_secret_values in prosody_config.py).
SECRET_KEY = re.compile(r"(password|secret|key|token|credentials)$")
RESERVED_TOPIC_KEYS = ("enabled", "modules")
VALUE_WIDTH = 60
DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MODULE_NAME = re.compile(r"^[a-z0-9_]+$")
PERIOD = re.compile(r"^[0-9]+ ?(d|days?|w|weeks?|y|years?)$")
JID_NODE = re.compile(r"^[^\s@/\"&'<>:]+$")
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
DID_YOU_MEAN_CUTOFF = 0.75

# Options other Prosody roles get wrong (notes/prosody-config-facts.md): what to write instead.
KNOWN_MISTAKES = {
    **{
        f"{service}_port": (f"Prosody never reads {service}_port", f"{service}_ports")
        for service in ("c2s", "s2s", "http", "https", "component", "proxy65", "c2s_direct_tls", "s2s_direct_tls")
    },
    **{
        f"legacy_ssl_{suffix}": (f"legacy_ssl_{suffix} is deprecated", f"c2s_direct_tls_{suffix}")
        for suffix in ("ports", "interfaces", "ssl")
    },
    "require_encryption": ("require_encryption is obsolete", "c2s_require_encryption"),
    "daemonize": ("daemonize is obsolete (prosodyctl check config refuses it; systemd runs Prosody)", None),
    "use_libevent": ("use_libevent is obsolete (prosodyctl check config refuses it)", None),
    "cross_domain_bosh": ("cross_domain_bosh is obsolete", "access_control_allow_origins"),
    "cross_domain_websocket": ("cross_domain_websocket is obsolete", "access_control_allow_origins"),
    # prosody_merge drops state only when it merges the item with a lower level's.
    "state": ("state: absent removes a domain or component a lower level declares, and no lower level does", None),
}

# What each custom format accepts, for "allowed:" texts.
FORMATS = {
    "dns_name": "a DNS name (labels of letters, digits and hyphens, separated by dots)",
    "ip_address": 'an IP address, or "*" for every IPv4 address',
    "ip_network": "an IP address or network (CIDR)",
    "jid": "a bare JID, user@domain",
    "url": "an http:// or https:// URL",
    "uri": "a URI such as mailto:, xmpp: or https:",
    "period": 'seconds, "never", or a count of days, weeks or years such as "2d", "1w", "1y"',
    "module_name": "a module name: lowercase letters, digits and _, without the mod_ prefix",
    "store_name": "a store name: lowercase letters, digits and _",
    "component_needs": None,
}


def _is_mapping(value):
    return isinstance(value, Mapping)


def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _plain(value):
    """Plain Python containers and scalars (Ansible hands over lazy or tagged ones)."""
    if _is_mapping(value):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if _is_list(value):
        return [_plain(item) for item in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _is_secret(path):
    names = [part for part in path if isinstance(part, str)]
    return bool(names) and bool(SECRET_KEY.search(names[-1]))


def _show(value, path=()):
    """The value as the inventory would write it (JSON), shortened; secrets hidden."""
    # A key checked by keysrules arrives as its own value: keys are never secret.
    is_key = isinstance(value, str) and bool(path) and path[-1] == value
    if _is_secret(path) and value is not None and not _is_mapping(value) and not is_key:
        return "(secret value, not shown)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _bare(value):
    """An allowed value in a list: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


KINDS = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (Mapping, "a mapping"),
    ((list, tuple), "a list"),
)


def _kind(value):
    if value is None:
        return "null"
    return next((name for kind, name in KINDS if isinstance(value, kind)), f"a {type(value).__name__}")


def _path_text(path):
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# ---------------------------------------------------------------- formats


def _dns_name_problem(value):
    if len(value) > 253:
        return "is longer than 253 characters"
    labels = value.split(".")
    for label in labels:
        if not DNS_LABEL.fullmatch(label):
            if not label:
                return "has an empty label"
            if len(label) > 63:
                return "has a label longer than 63 characters"
            return f"has an invalid label {json.dumps(label, ensure_ascii=False)}"
    return None


def _uri_problem(value, schemes=None):
    scheme, _, rest = value.partition(":")
    if not rest or not URI_SCHEME.fullmatch(scheme) or (schemes and scheme.lower() not in schemes):
        return "is not a valid URI" if not schemes else "is not a valid URL"
    if any(char.isspace() for char in value):
        return "contains white space"
    if schemes:
        parts = urlsplit(value)
        if not parts.hostname:
            return "has no host"
    return None


def _ip_address_problem(value):
    if value == "*":
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address"
    return None


def _ip_network_problem(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "is not an IP address or network"
    return None


def _jid_problem(value):
    node, at, domain = value.partition("@")
    if not at or not JID_NODE.fullmatch(node) or _dns_name_problem(domain):
        return "is not a bare JID"
    return None


def _period_problem(value):
    if isinstance(value, int):
        return None if value > 0 else "is not a positive number of seconds"
    if value == "never" or PERIOD.fullmatch(value):
        return None
    return "is not a period both Prosody series read alike"


def _module_name_problem(value):
    if value.startswith("mod_"):
        return "starts with mod_"
    return None if MODULE_NAME.fullmatch(value) else "is not a module name"


FORMAT_CHECKS = {
    "dns_name": _dns_name_problem,
    "ip_address": _ip_address_problem,
    "ip_network": _ip_network_problem,
    "jid": _jid_problem,
    "url": lambda value: _uri_problem(value, ("http", "https")),
    "uri": _uri_problem,
    "period": _period_problem,
    "module_name": _module_name_problem,
    "store_name": lambda value: None if MODULE_NAME.fullmatch(value) else "is not a store name",
}


def _format_problem(name, value):
    """Why `value` does not have format `name`, or None when it does."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None  # the type rule reports it
    if isinstance(value, int) and name != "period":
        return None
    return FORMAT_CHECKS[name](value)


class _SettingsValidator(Validator):
    """Cerberus with strict number types and the formats of prosody-stack's settings."""

    types_mapping = Validator.types_mapping.copy()
    # YAML's true/false are not numbers here (Python's bool is an int).
    types_mapping["integer"] = TypeDefinition("integer", (_int_types,), (bool,))
    types_mapping["float"] = TypeDefinition("float", (float, _int_types), (bool,))

    def _check_format(self, name, field, value):
        problem = _format_problem(name, value)
        if problem:
            shown = _show(value, (*self.document_path, field))
            self._error(field, f"{shown} {problem} (allowed: {FORMATS[name]})")

    def _check_with_dns_name(self, field, value):
        self._check_format("dns_name", field, value)

    def _check_with_ip_address(self, field, value):
        self._check_format("ip_address", field, value)

    def _check_with_ip_network(self, field, value):
        self._check_format("ip_network", field, value)

    def _check_with_jid(self, field, value):
        self._check_format("jid", field, value)

    def _check_with_url(self, field, value):
        self._check_format("url", field, value)

    def _check_with_uri(self, field, value):
        self._check_format("uri", field, value)

    def _check_with_period(self, field, value):
        self._check_format("period", field, value)

    def _check_with_module_name(self, field, value):
        self._check_format("module_name", field, value)

    def _check_with_store_name(self, field, value):
        self._check_format("store_name", field, value)

    # A component type -> the option it cannot work without, and why.
    COMPONENT_NEEDS: ClassVar[dict] = {
        "external": ("component_secret", "the shared secret the component logs in with"),
        "rest": ("rest_callback_url", "the URL messages to the component are POSTed to"),
    }

    def _check_with_component_needs(self, field, value):
        """On a component's type: the option that type cannot work without."""
        option, why = self.COMPONENT_NEEDS.get(value, (None, None))
        if option and option not in self.document:
            self._error(option, f"missing (required when type is {value}: {why})")


# ---------------------------------------------------------------- rules and descriptions


def _walk(node, path):
    for part in path:
        found = (_is_mapping(node) and part in node) or (
            _is_list(node) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not found:
            return None
        node = node[part]
    return node


def _rules_for(schema, schema_path):
    """The rules set holding the failed rule (schema_path ends with the rule's name)."""
    rules = _walk(schema, schema_path[:-1])
    return rules if _is_mapping(rules) else {}


def _field_rules(schema, schema_path):
    """The rules of the field itself, above any *of branch."""
    path = list(schema_path[:-1])
    while len(path) >= 2 and isinstance(path[-1], int) and path[-2] in ("anyof", "oneof", "allof", "noneof"):
        path = path[:-2]
    rules = _walk(schema, path)
    return rules if _is_mapping(rules) else {}


def _range_text(rules):
    low, high = rules.get("min"), rules.get("max")
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"{low} or more"
    if high is not None:
        return f"at most {high}"
    return None


def _describe(rules):
    """What a rules set accepts, in words."""
    meta = rules.get("meta") or {}
    if meta.get("allowed"):
        return meta["allowed"]
    if "allowed" in rules:
        return ", ".join(_bare(value) for value in rules["allowed"])
    if rules.get("check_with") in FORMATS and FORMATS[rules["check_with"]]:
        return FORMATS[rules["check_with"]]
    if "anyof" in rules:
        return ", or ".join(_describe({**rules, "anyof": None, **branch}) for branch in rules["anyof"] if branch)
    types = rules.get("type") or []
    types = [types] if isinstance(types, str) else list(types)
    parts = []
    for kind in types:
        if kind == "boolean":
            parts.append("true or false")
        elif kind in ("integer", "number", "float"):
            word = "an integer" if kind == "integer" else "a number"
            span = _range_text(rules)
            parts.append(f"{word} from {span}" if span and " to " in span else f"{word} ({span})" if span else word)
        elif kind == "string" and rules.get("regex"):
            parts.append(f"a string matching {rules['regex']}")
        elif kind == "string":
            parts.append("a non-empty string" if rules.get("empty") is False else "a string")
        elif kind == "list":
            item = rules.get("schema")
            parts.append(f"a list, each item {_describe(item)}" if _is_mapping(item) else "a list")
        elif kind == "dict":
            parts.append("a mapping")
        else:
            parts.append(kind)
    return " or ".join(parts) if parts else "see the schema"


def _allowed_keys(schema, schema_path):
    """The keys a mapping may hold; an unknown key's schema_path ends at its mapping's schema."""
    keys = _walk(schema, schema_path)
    return sorted(keys) if _is_mapping(keys) else []


# ---------------------------------------------------------------- messages


class _Context:
    """What the messages need besides the error: the schema, the document, where options live."""

    def __init__(self, schema, document, owners):
        self.schema = schema
        self.document = document
        self.owners = owners


def _unknown_message(error, context):
    path = error.document_path
    name = path[-1]
    allowed = _allowed_keys(context.schema, error.schema_path)
    what = _key_kind(path)
    hint = ""
    places = [place for place in context.owners.get(name, []) if not _same_place(place, path)]
    if name in KNOWN_MISTAKES:
        text, instead = KNOWN_MISTAKES[name]
        hint = f"; {text}"
        if instead:
            owners = context.owners.get(instead)
            hint += f": use {instead}" + (f" in {' or '.join(owners)}" if owners else "")
    elif places:
        hint = f" here; it belongs in {' and '.join(places)}"
    else:
        close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=DID_YOU_MEAN_CUTOFF)
        if not close:
            close = difflib.get_close_matches(str(name), list(context.owners), n=1, cutoff=DID_YOU_MEAN_CUTOFF)
            if close:
                close = [f"{close[0]} (in {' and '.join(context.owners[close[0]])})"]
        if close:
            hint = f"; did you mean {close[0]}?"
    listed = ", ".join(allowed) if allowed else "nothing"
    return f"unknown {what}{hint} (allowed here: {listed})"


def _key_kind(path):
    """Topic, option or key, by where the unknown key sits."""
    block = path[0]
    depth = len(path)
    if block == "prosody_domains":
        return "option" if depth in (3, 5) else "key"
    if block == "prosody_environment_settings":
        return "option" if depth == 2 else "key"
    if depth == 2:
        return "topic"
    return "option" if depth == 3 else "key"


def _same_place(place, path):
    return place == _path_text(path[:2]) or place == path[0]


def _dependency_message(error, context):
    container = _walk(context.document, error.document_path[:-1])
    problems = []
    for name, values in (error.constraint or {}).items():
        wanted = [values] if isinstance(values, (str, bool, int)) else list(values)
        have = container.get(name) if _is_mapping(container) else None
        where = f"when {name} is {_bare(have)}" if have is not None else f"without {name}"
        problems.append((where, f"only when {name} is {' or '.join(_bare(w) for w in wanted)}"))
    where = "; ".join(p[0] for p in problems)
    allowed = "; ".join(p[1] for p in problems)
    return f"not allowed {where} (allowed: {allowed})"


def _range_message(error, facts):
    return f"{facts['shown']} is out of range (allowed: {_range_text(facts['rules'])})"


def _unallowed_values_message(error, facts):
    bad = ", ".join(_bare(value) for value in error.info[0])
    return f"{facts['shown']} holds {bad}, which is not allowed (allowed: {facts['described']})"


def _length_message(error, facts):
    size = "short" if error.code == errors.MIN_LENGTH.code else "long"
    return f"{facts['shown']} is too {size} (allowed: {facts['described']})"


# Cerberus error code -> message (facts: shown value, rules, what is allowed, context).
MESSAGES = {
    # Our formats and cross-field checks write whole messages.
    errors.CUSTOM.code: lambda error, facts: error.info[0],
    errors.UNKNOWN_FIELD.code: lambda error, facts: _unknown_message(error, facts["context"]),
    errors.REQUIRED_FIELD.code: lambda error, facts: f"missing (required: {facts['required']})",
    errors.BAD_TYPE.code: lambda error, facts: (
        f"{facts['shown']} is {_kind(error.value)} (allowed: {facts['described']})"
    ),
    errors.BAD_TYPE_FOR_SCHEMA.code: lambda error, facts: (
        f"{facts['shown']} is {_kind(error.value)} (allowed: {facts['described']})"
    ),
    errors.MIN_VALUE.code: _range_message,
    errors.MAX_VALUE.code: _range_message,
    errors.UNALLOWED_VALUE.code: lambda error, facts: (
        f"{facts['shown']} is not allowed (allowed: {facts['described']})"
    ),
    errors.UNALLOWED_VALUES.code: _unallowed_values_message,
    errors.REGEX_MISMATCH.code: lambda error, facts: f"{facts['shown']} is not valid (allowed: {facts['described']})",
    errors.EMPTY_NOT_ALLOWED.code: lambda error, facts: f"{facts['shown']} is empty (allowed: {facts['described']})",
    errors.MIN_LENGTH.code: _length_message,
    errors.MAX_LENGTH.code: _length_message,
    errors.DEPENDENCIES_FIELD_VALUE.code: lambda error, facts: _dependency_message(error, facts["context"]),
    errors.NOT_NULLABLE.code: lambda error, facts: f"null is not a value (allowed: {facts['described']})",
}


def _message(error, context):
    """One error (not a group) as (path, message)."""
    rules = _rules_for(context.schema, error.schema_path)
    field_rules = _field_rules(context.schema, error.schema_path)
    facts = {
        "context": context,
        "rules": rules,
        "shown": _show(error.value, error.document_path),
        "described": (rules.get("meta") or {}).get("allowed")
        or (field_rules.get("meta") or {}).get("allowed")
        or _describe(rules),
    }
    field = _walk(context.schema, error.schema_path[:-1]) if error.code == errors.REQUIRED_FIELD.code else None
    if _is_mapping(field) and "allowed" in field and not (field.get("meta") or {}).get("allowed"):
        facts["required"] = "one of " + facts["described"]
    else:
        facts["required"] = facts["described"]
    write = MESSAGES.get(
        error.code,
        lambda error, facts: f"{facts['shown']} breaks the rule {error.rule} (allowed: {facts['described']})",
    )
    path = error.document_path
    if "keysrules" in error.schema_path:
        # A bad key: name the mapping that holds it (the message shows the key).
        path = path[:-1]
    return _path_text(path), write(error, facts)


def _type_errors(errors_list, path):
    return [e for e in errors_list if e.document_path == path and e.code == errors.BAD_TYPE.code]


def _leaves(error_list, context):
    """Flatten Cerberus' error tree into (path, message) pairs."""
    for error in error_list:
        if error.is_logic_error:
            yield from _logic_leaves(error, context)
        elif error.is_group_error:
            yield from _leaves(error.child_errors, context)
        else:
            yield _message(error, context)


def _logic_leaves(error, context):
    """*of rules: report the branch whose type fits the value, or the type problem."""
    branches = error.definitions_errors
    definitions = error.constraint or []
    fitting = [
        index
        for index in range(len(definitions))
        if not _type_errors(_flat(branches.get(index, [])), error.document_path)
    ]
    for index in fitting:
        if branches.get(index):
            yield from _leaves(branches[index], context)
            return
    if fitting:
        return
    rules = _field_rules(context.schema, error.schema_path)
    described = (rules.get("meta") or {}).get("allowed") or _describe(rules)
    yield (
        _path_text(error.document_path),
        f"{_show(error.value, error.document_path)} is {_kind(error.value)} (allowed: {described})",
    )


def _flat(error_list):
    for error in error_list:
        if error.is_group_error and not error.is_logic_error:
            yield from _flat(error.child_errors)
        else:
            yield error


# ---------------------------------------------------------------- checks across blocks


def _topic_enabled(settings):
    return not (_is_mapping(settings) and settings.get("enabled", True) is False)


def _module_conflicts(merged, topics):
    """Like prosody_modules: the first topic in Include order sets a module; another may not contradict it."""
    problems = []
    seen = {}
    for block, names in topics.items():
        layer = merged.get(block)
        if not _is_mapping(layer):
            continue
        for topic in names:
            settings = layer.get(topic)
            if not (_is_mapping(settings) and _topic_enabled(settings) and _is_mapping(settings.get("modules"))):
                continue
            for module, on in sorted(settings["modules"].items()):
                if not isinstance(on, bool):
                    continue
                where = f"{block}.{topic}.modules.{module}"
                if module in seen and seen[module][0] != on:
                    problems.append(
                        (
                            where,
                            f"{json.dumps(on)} here but {json.dumps(seen[module][0])} in {seen[module][1]} "
                            "(allowed: switch a module on or off in one topic only)",
                        )
                    )
                seen.setdefault(module, (on, where))
    return problems


def _name_clashes(domains):
    problems = []
    used = {}
    for d_index, domain in enumerate(domains if _is_list(domains) else []):
        if not _is_mapping(domain):
            continue
        entries = [((d_index,), domain)]
        components = domain.get("components")
        if _is_list(components):
            entries += [((d_index, c_index), c) for c_index, c in enumerate(components) if _is_mapping(c)]
        for where, entry in entries:
            name = entry.get("name")
            if not isinstance(name, str):
                continue
            path = _domain_path(where)
            if name in used:
                problems.append(
                    (
                        f"{path}.name",
                        f"{json.dumps(name)} is already the name of {used[name]} "
                        "(allowed: each domain and component name once)",
                    )
                )
            else:
                used[name] = path
    return problems


def _domain_path(where):
    path = f"prosody_domains[{where[0]}]"
    return path if len(where) == 1 else f"{path}.components[{where[1]}]"


@edges(needs(Node.component("external", "layer07_interfaces"), Node.topic("layer07_interfaces.components")))
def _external_without_listener(merged):
    interfaces = merged.get("layer07_interfaces")
    listener = interfaces.get("components") if _is_mapping(interfaces) else None
    if _is_mapping(listener) and _topic_enabled(listener):
        return []
    problems = []
    domains = merged.get("prosody_domains")
    for d_index, domain in enumerate(domains if _is_list(domains) else []):
        components = domain.get("components") if _is_mapping(domain) else None
        for c_index, component in enumerate(components if _is_list(components) else []):
            if _is_mapping(component) and component.get("type") == "external":
                problems.append(
                    (
                        f"{_domain_path((d_index, c_index))}.type",
                        '"external" needs the component listener, but layer07_interfaces.components is off '
                        "(allowed: layer07_interfaces.components.enabled: true, or another type)",
                    )
                )
    return problems


# ---------------------------------------------------------------- the filters


def _option_owners(schemas):
    """{option: [where it belongs]} over the mapping blocks' schemas (layers and environment)."""
    owners = {}
    for block, schema in schemas.items():
        if not _is_mapping(schema) or "type" in schema:
            continue
        for key, rules in schema.items():
            inner = rules.get("schema") if _is_mapping(rules) else None
            if _is_mapping(inner) and rules.get("type") == "dict" and block.startswith("layer"):
                for option in inner:
                    if option not in RESERVED_TOPIC_KEYS:
                        owners.setdefault(option, []).append(f"{block}.{key}")
            else:
                owners.setdefault(key, []).append(block)
    return owners


def _block_rules(block, schema):
    if not _is_mapping(schema):
        raise AnsibleFilterError(f"prosody_schema_errors: the schema of {block} must be a mapping, got {_kind(schema)}")
    if isinstance(schema.get("type"), str):
        return dict(schema)
    return {"type": "dict", "schema": schema, "allow_unknown": False}


def prosody_schema_errors(merged, schemas, host):
    """One message per problem in `merged`; see DOCUMENTATION."""
    if not _is_mapping(merged):
        raise AnsibleFilterError(
            f"prosody_schema_errors: expected the merged settings as a mapping, got {_kind(merged)}"
        )
    if not _is_mapping(schemas) or not schemas:
        raise AnsibleFilterError(
            f"prosody_schema_errors: schemas must be a non-empty mapping {{block: schema}}, got {_kind(schemas)}"
        )
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError(f"prosody_schema_errors: host must be the host's name, got {host!r}")
    merged, schemas = _plain(merged), _plain(schemas)
    missing = sorted(set(merged) - set(schemas))
    if missing:
        raise AnsibleFilterError(
            f"prosody_schema_errors: no schema for {', '.join(missing)} (schemas given for {', '.join(schemas)})"
        )
    schema = {block: _block_rules(block, block_schema) for block, block_schema in schemas.items()}
    document = {}
    for block, rules in schema.items():
        value = merged.get(block, [] if rules.get("type") == "list" else {})
        # prosody_merge returns {} when no level sets anything, also for a list block.
        document[block] = [] if value == {} and rules.get("type") == "list" else value
    try:
        validator = _SettingsValidator(schema, allow_unknown=False)
        validator.validate(document)
    except SchemaError as error:
        raise AnsibleFilterError(f"prosody_schema_errors: the schemas themselves are invalid: {error}") from error
    context = _Context(validator.schema, document, _option_owners(schemas))
    # _errors: Cerberus' flat ErrorList, group errors holding their children.
    problems = list(_leaves(validator._errors, context))
    # Topics in Include order: the layer schemas list them in catalogue order.
    topics = {block: list(schemas[block]) for block in schemas if block.startswith("layer")}
    problems += _module_conflicts(document, topics)
    problems += _name_clashes(document.get("prosody_domains"))
    if "layer07_interfaces" in document:
        problems += _external_without_listener(document)
    unique = list(dict.fromkeys(problems))
    return [f"{host}: {path}: {text}" for path, text in unique]


def prosody_schema_report(problems):
    """All hosts' problems in one text, or '' when there are none; see DOCUMENTATION."""
    if _is_mapping(problems):
        entries = [(f"host {host}", messages) for host, messages in problems.items()]
    elif _is_list(problems):
        entries = [(f"entry {index}", messages) for index, messages in enumerate(problems)]
    else:
        raise AnsibleFilterError(
            f"prosody_schema_report: expected {{host: [messages]}} or a list of message lists, got {_kind(problems)}"
        )
    lines = []
    hosts = 0
    for label, messages in entries:
        if messages is None:
            continue
        if not _is_list(messages) or not all(isinstance(message, str) for message in messages):
            raise AnsibleFilterError(
                f"prosody_schema_report: {label} must have a list of messages (strings), got {messages!r}"
            )
        hosts += bool(messages)
        lines.extend(messages)
    if not lines:
        return ""
    count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''} in the merged settings of "
    count += f"{hosts} host{'s' if hosts != 1 else ''}; nothing was deployed:"
    return "\n".join([count, *lines])


class FilterModule:
    """Schema validation of the merged settings."""

    def filters(self):
        return {
            "prosody_schema_errors": prosody_schema_errors,
            "prosody_schema_report": prosody_schema_report,
        }
