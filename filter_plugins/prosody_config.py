"""Write Prosody's configuration: Lua literals, topic files, module lists.

Prosody's configuration files are Lua chunks: every value we write must be a
Lua literal that evaluates to exactly the value the inventory holds, whatever
characters it contains.  Strings are always written as double-quoted Lua
strings with every control byte escaped, so no inventory value can end the
literal early or inject code; table keys are sorted so the output is
deterministic.
"""

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ansible.errors import AnsibleFilterError

# The digest is computed on hosts too (module prosody_host_state): one
# implementation in module_utils/, imported from the checkout here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "module_utils"))
from prosody_tree_files import entries_digest

DOCUMENTATION = r"""
name: to_lua
short_description: Write a value as a Prosody (Lua) configuration literal
description:
  - Converts booleans, integers, floats, strings, lists and mappings to Lua.
  - Strings are double-quoted; backslash, double quote and every byte below
    0x20 or equal to 0x7f are escaped as Lua decimal escapes.  Non-ASCII text
    is written as UTF-8.
  - Mapping keys are sorted; keys that are not Lua identifiers (or are Lua
    keywords) are written as C(["key"]).
  - Lists shorter than 73 characters are written on one line, longer ones one
    item per line.
options:
  _input:
    description: The value to write.
    type: raw
    required: true
  indent:
    description: Indentation level (four spaces each) for multi-line output.
    type: int
    default: 0
---
name: prosody_option
short_description: Write one Prosody option assignment
description:
  - Returns C(name = <lua literal>); the name must be a Lua identifier.
options:
  _input:
    description: The option's value.
    type: raw
    required: true
  name:
    description: The Prosody option name.
    type: str
    required: true
---
name: prosody_modules
short_description: Collect the global module lists from the merged layers
description:
  - Walks the layers in catalogue order and returns which modules are enabled
    (with the topic file that asks for them) and which autoloaded modules are
    disabled.  A topic with C(enabled: false) contributes nothing.
  - A module set to true by one topic and false by another is an error naming
    both files.
options:
  _input:
    description: Merged layers, C({layer_name: {topic: settings}}).
    type: dict
    required: true
  catalogue:
    description: The layer catalogue, C([{name, directory, topics}]).
    type: list
    required: true
---
name: prosody_duplicate_options
short_description: Refuse an option that two files of the tree would set
description:
  - Prosody reads all files into the same global section, so the same option
    set in two files silently keeps the later value.  Returns the mapping
    option -> file, or fails naming the option and both files.
  - Reserved keys (C(enabled), C(modules)) are not options.  The loader's own
    options are passed as C(loader_options) so a topic cannot set them.
options:
  _input:
    description: Merged layers, C({layer_name: {topic: settings}}).
    type: dict
    required: true
  catalogue:
    description: The layer catalogue, C([{name, directory, topics}]).
    type: list
    required: true
  other_files:
    description: Further global-section files, C({path: [option names]}).
    type: dict
    default: {}
---
name: prosody_topic_options
short_description: The Prosody options of one topic (reserved keys removed)
options:
  _input:
    description: One topic's merged settings.
    type: dict
    required: true
---
name: prosody_topic_lua
short_description: The Lua body of one topic file
description:
  - A status line, the modules the topic asks for, then one sorted
    C(option = value) line per option.  A topic that is off says so and
    shows, commented out, what it would set.
options:
  _input:
    description: One topic's merged settings.
    type: dict
    required: true
  setting_path:
    description: Where the topic lives in the inventory, for the how-to hint.
    type: str
    required: true
  environment:
    description: The environment name shown in the status line.
    type: str
    required: true
---
name: prosody_certificate_files
short_description: The two files of one domain certificate
description:
  - Turns C({name, certificate, key}) into the C(<name>.crt) and C(<name>.key)
    entries Prosody's certificate directory expects, for M(prosody_tree).
options:
  _input:
    description: One certificate, C({name, certificate, key}) with PEM texts.
    type: dict
    required: true
---
name: prosody_listeners
short_description: The addresses and ports Prosody will listen on
description:
  - Derives, from the merged settings, every C(address:port) the server binds
    (client, direct TLS, server-to-server, HTTP, HTTPS, external components,
    SOCKS5 proxy), following Prosody's rules for which services are loaded.
  - Used by tests to prove the server listens exactly there and nowhere else.
options:
  _input:
    description: The merged settings (C(prosody_merged)).
    type: dict
    required: true
  catalogue:
    description: The layer catalogue, C([{name, directory, topics}]).
    type: list
    required: true
---
name: prosody_secret_values
short_description: Every secret string in the merged settings
description:
  - Collects the string values of keys that name secrets (password, secret,
    key, token, credentials), at any depth, so diffs and logs can mask them.
options:
  _input:
    description: The merged settings (C(prosody_merged)).
    type: raw
    required: true
---
name: prosody_masked
short_description: The merged settings with every secret replaced by ********
description:
  - Same rule as M(prosody_secret_values) for what is a secret; for review
    files and reports that must not carry the vault's values.
options:
  _input:
    description: The merged settings (C(prosody_merged)).
    type: raw
    required: true
---
name: prosody_sql_clients
short_description: The Prosody hosts whose SQL connection names one database server
description:
  - From each Prosody host's merged settings, the PostgreSQL database, user
    and password it uses, and the address it connects from
    (C(prosody_listen_address)), for the hosts whose C(sql.host) is the
    given server address.
  - The storage setting does not matter: a host that names a database gets
    it, whether every store, some stores or none yet (before
    playbooks/migrate-storage.yml moves data there) are kept in SQL.
options:
  _input:
    description: The Prosody hosts' variables (C(hostvars) entries), built by playbooks/build.yml.
    type: list
    required: true
  server:
    description: The database server's address.
    type: str
    required: true
---
name: prosody_section_options
short_description: The Prosody options of one domain or component entry
description:
  - Drops the keys that are not Prosody options (C(name), C(modules),
    C(components) of a domain; C(name), C(type), C(modules) of a component).
options:
  _input:
    description: One entry of prosody_domains, or one of its components.
    type: dict
    required: true
  kind:
    description: C(VirtualHost) or C(Component).
    type: str
    required: true
---
name: prosody_option_manifest
short_description: A fingerprint of every option in every section of a tree
description:
  - Maps each section (C(global), C(VirtualHost <name>), C(Component <name>))
    to its options, each with a short SHA-256 of its value, exactly where the
    templates write them (loader options and module lists, enabled topics,
    environment settings, domains and components).
  - Stored in each release (release.json) so a later deploy can tell which
    options changed without keeping any value; see prosody_apply_method.
options:
  _input:
    description: The merged settings (prosody_merged).
    type: dict
    required: true
  catalogue:
    description: The layer catalogue (prosody_layers).
    type: list
    required: true
  loader_options:
    description: Options the loader writes itself (pidfile, plugin_paths).
    type: dict
    required: true
---
name: prosody_render_plan
short_description: Which file of a host's tree comes from which template
description:
  - Lists every file of the tree in the order Prosody reads them - the
    topic files of each layer (template C(<roles_dir>/<layer>/templates/<topic>.cfg.lua.j2)
    with C(topic) and C(topic_path)), one file per domain (C(domain)), the
    environment file and the loader - then the firewall scripts, copied.
  - The action C(prosody_render) turns the plan into the tree.
options:
  _input:
    description: The merged settings (C(prosody_domains) names the domains).
    type: dict
    required: true
  catalogue:
    description: The layer catalogue (C(prosody_layers)).
    type: list
    required: true
  roles_dir:
    description: Directory holding the layer roles and the prosody role.
    type: path
    required: true
  environment_file:
    description: Path of the environment file in the tree.
    type: str
    required: true
  firewall_files:
    description: The firewall scripts the tree ships (paths of C(<name>.pfw) files), copied to C(firewall/).
    type: list
    default: []
---
name: prosody_tree_digest
short_description: SHA-256 fingerprint of a rendered tree
description:
  - Hashes every file's path, mode and content in path order.  Identical
    trees give identical digests; it names release directories.
options:
  _input:
    description: Files as C([{path, content, mode}]).
    type: list
    required: true
"""

EXAMPLES = r"""
- name: A list of ports
  ansible.builtin.debug:
    msg: "{{ [5222, 5223] | to_lua }}"   # => { 5222, 5223 }

- name: A mapping, keys sorted
  ansible.builtin.debug:
    msg: "{{ {'rate': '10kb/s', 'burst': '2s'} | to_lua }}"
    # => { burst = "2s", rate = "10kb/s" }

- name: A string with a quote and a newline
  ansible.builtin.debug:
    msg: "{{ 'say \"hi\"\n' | to_lua }}"   # => "say \"hi\"\010"

- name: One option line
  ansible.builtin.debug:
    msg: "{{ 'intermediate' | prosody_option('tls_profile') }}"
    # => tls_profile = "intermediate"

- name: Modules for the loader
  ansible.builtin.debug:
    msg: "{{ prosody_stack.layers | prosody_modules(prosody_stack_layers) }}"
  # => {'enabled': [{'module': 'tls', 'file': 'stack/02-stream/encryption.cfg.lua'}],
  #     'disabled': [{'module': 's2s', 'file': 'stack/03-stanza/routing.cfg.lua'}]}

- name: Option owners (fails on a duplicate)
  ansible.builtin.debug:
    msg: "{{ prosody_stack.layers | prosody_duplicate_options(prosody_stack_layers) }}"
  # => {'c2s_ports': 'stack/01-transport/ports.cfg.lua', ...}

- name: Options of a component entry
  ansible.builtin.debug:
    msg: "{{ {'name': 'conference.example.com', 'type': 'muc', 'max_history_messages': 50}
             | prosody_section_options('Component') }}"
  # => {'max_history_messages': 50}

- name: Which options a release sets, fingerprinted
  ansible.builtin.debug:
    msg: "{{ prosody_merged | prosody_option_manifest(prosody_layers, {'pidfile': '/run/prosody/prosody.pid'}) }}"
  # => {'global': {'c2s_ports': '5d2f0b6a3c1e9f47', ...}, 'VirtualHost example.com': {...}}

- name: Release name
  ansible.builtin.debug:
    msg: "{{ (files | prosody_tree_digest)[:12] }}"   # => 3f1c0a9b2d4e

- name: The render plan of a host
  ansible.builtin.debug:
    msg: >-
      {{ prosody_merged | prosody_render_plan(prosody_layers, roles_dir='roles',
                                              environment_file='environments/production.cfg.lua') | first }}
    # => {path: stack/01-transport/ports.cfg.lua, template: roles/layer01_transport/templates/ports.cfg.lua.j2,
    #     vars: {topic: {...}, topic_path: layer01_transport.ports}}
"""

RETURN = r"""
_value:
  description: Lua source text that evaluates to the input value.
  type: str
"""

LUA_KEYWORDS = frozenset(
    [
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "goto",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
    ]
)
LUA_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: "$" would accept a trailing newline
LUA_INTEGER_MIN, LUA_INTEGER_MAX = -(2**63), 2**63 - 1
ONE_LINE_LIMIT = 72
INDENT = "    "


def is_lua_identifier(name):
    """True when `name` can be written bare, as `name = value`."""
    return isinstance(name, str) and bool(LUA_IDENTIFIER.match(name)) and name not in LUA_KEYWORDS


def lua_string(text):
    """A double-quoted Lua string literal for `text` (any Unicode text)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0xD800 <= code <= 0xDFFF:
            raise AnsibleFilterError(f"to_lua: {text!r} holds a lone surrogate (U+{code:04X}), which is not text")
        elif code < 0x20 or code == 0x7F:
            # A decimal escape with three digits cannot run into a following digit.
            out.append(f"\\{code:03d}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _lua_number(value, path):
    if isinstance(value, int):
        if not LUA_INTEGER_MIN <= value <= LUA_INTEGER_MAX:
            raise AnsibleFilterError(
                f"to_lua: {path}: integer {value} is outside Lua's 64-bit range [{LUA_INTEGER_MIN}, {LUA_INTEGER_MAX}]"
            )
        if value == LUA_INTEGER_MIN:
            # Lua reads "-9223372036854775808" as minus a too-large integer,
            # which becomes a float; this expression stays an integer.
            return f"({LUA_INTEGER_MIN + 1} - 1)"
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise AnsibleFilterError(f"to_lua: {path}: {value!r} has no Lua literal; use a finite number")
    text = repr(value)
    # Lua reads "1e+300" and "1.5" as floats already; "2.0" must stay a float too.
    return text


def _lua_key(key, path):
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise AnsibleFilterError(
            f"to_lua: {path}: table key {key!r} is a {type(key).__name__}; keys must be strings or integers"
        )
    if isinstance(key, int):
        return f"[{_lua_number(key, path)}]"
    return key if is_lua_identifier(key) else f"[{lua_string(key)}]"


def _sort_key(key):
    # Integers before strings, each group in natural order: deterministic output.
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


def to_lua(value, indent=0, path="value"):
    """Return Lua source for `value`; see DOCUMENTATION."""
    if value is None:
        raise AnsibleFilterError(
            f"to_lua: {path}: null has no place in Prosody's configuration; "
            "remove the key instead (null in a higher level removes an inherited option)"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _lua_number(value, path)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, Mapping):
        items = [
            f"{_lua_key(key, path)} = {to_lua(value[key], indent + 1, f'{path}.{key}')}"
            for key in sorted(value, key=_sort_key)
        ]
        return _lua_table(items, indent)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = [to_lua(item, indent + 1, f"{path}[{index}]") for index, item in enumerate(value)]
        return _lua_table(items, indent)
    raise AnsibleFilterError(f"to_lua: {path}: cannot write a {type(value).__name__} ({value!r}) as Lua")


def _lua_table(items, indent):
    if not items:
        return "{}"
    one_line = "{ " + ", ".join(items) + " }"
    if len(one_line) <= ONE_LINE_LIMIT and "\n" not in one_line:
        return one_line
    inner = INDENT * (indent + 1)
    return "{\n" + "".join(f"{inner}{item};\n" for item in items) + INDENT * indent + "}"


def prosody_option(value, name):
    """Return `name = <value as Lua>` for one Prosody option."""
    if not is_lua_identifier(name):
        raise AnsibleFilterError(
            f"prosody_option: option name {name!r} is not a Lua identifier "
            "(letters, digits and underscores, not starting with a digit, not a Lua keyword)"
        )
    return f"{name} = {to_lua(value, path=name)}"


RESERVED_TOPIC_KEYS = frozenset({"enabled", "modules"})
# Prosody loads these on every host unless modules_disabled names them
# (core/modulemanager.lua, identical on 0.12 and 13.0).
AUTOLOADED_MODULES = frozenset({"presence", "message", "iq", "offline", "c2s", "s2s", "s2s_auth_certs"})


def topic_enabled(settings):
    """A topic is on unless it says `enabled: false`."""
    return settings.get("enabled", True) is not False


def prosody_topic_options(settings):
    """One topic's options without the reserved keys; see DOCUMENTATION."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"prosody_topic_options: expected a mapping, got {settings!r}")
    return {key: value for key, value in settings.items() if key not in RESERVED_TOPIC_KEYS}


def _topic_files(layers, catalogue):
    """Yield (file path, topic settings) in Include order."""
    for layer in catalogue:
        settings = layers.get(layer["name"]) or {}
        for topic in layer["topics"]:
            yield f"{layer['directory']}/{topic}.cfg.lua", settings.get(topic) or {}


def prosody_modules(layers, catalogue):
    """Global modules_enabled / modules_disabled; see DOCUMENTATION."""
    wanted = {}
    for path, settings in _topic_files(layers, catalogue):
        if not topic_enabled(settings):
            continue
        for module, on in sorted((settings.get("modules") or {}).items()):
            if module in wanted and wanted[module][0] != bool(on):
                first_state, first_path = wanted[module]
                raise AnsibleFilterError(
                    f"prosody_modules: module {module!r} is {'enabled' if first_state else 'disabled'} by "
                    f"{first_path} and {'enabled' if on else 'disabled'} by {path}; set it in one topic only"
                )
            wanted.setdefault(module, (bool(on), path))
    return {
        "enabled": [{"module": m, "file": p} for m, (on, p) in wanted.items() if on],
        "disabled": [{"module": m, "file": p} for m, (on, p) in wanted.items() if not on and m in AUTOLOADED_MODULES],
    }


def prosody_duplicate_options(layers, catalogue, other_files=None):
    """Map each option to the one file that sets it; see DOCUMENTATION."""
    owners = {}
    problems = []

    def claim(option, path):
        if option in owners:
            problems.append(f"{option!r} is set by both {owners[option]} and {path}")
        else:
            owners[option] = path

    for path, options in sorted((other_files or {}).items()):
        for option in options:
            claim(option, path)
    for path, settings in _topic_files(layers, catalogue):
        if topic_enabled(settings):
            for option in prosody_topic_options(settings):
                claim(option, path)
    if problems:
        raise AnsibleFilterError(
            "prosody_duplicate_options: Prosody would silently keep only the later value: "
            + "; ".join(problems)
            + ". Move each option to the one topic that owns it."
        )
    return owners


def prosody_certificate_files(certificate):
    """[{path: <name>.crt, ...}, {path: <name>.key, ...}]; see DOCUMENTATION."""
    missing = [key for key in ("name", "certificate", "key") if not certificate.get(key)]
    if missing:
        raise AnsibleFilterError(
            f"prosody_certificate_files: certificate {certificate.get('name', '?')!r} lacks {', '.join(missing)}; "
            "each entry needs name, certificate (PEM) and key (PEM)"
        )
    name = certificate["name"]
    return [
        {"path": f"{name}.crt", "content": certificate["certificate"].rstrip("\n") + "\n"},
        {"path": f"{name}.key", "content": certificate["key"].rstrip("\n") + "\n"},
    ]


# Modules that serve HTTP: with any of them loaded, mod_http opens its ports.
HTTP_MODULES = frozenset(
    {"bosh", "websocket", "http_file_share", "http_oauth2", "rest", "http_openmetrics", "http_files"}
)


def _global_options(merged, catalogue):
    options = {}
    for _path, settings in _topic_files(merged, catalogue):
        if topic_enabled(settings):
            options.update(prosody_topic_options(settings))
    return options


def prosody_listeners(merged, catalogue):
    """Sorted "address:port" strings Prosody binds; see DOCUMENTATION."""
    options = _global_options(merged, catalogue)
    modules = prosody_modules(merged, catalogue)
    enabled = {entry["module"] for entry in modules["enabled"]}
    disabled = {entry["module"] for entry in modules["disabled"]}
    components = [c for d in merged.get("prosody_domains", []) for c in d.get("components", [])]
    types = {component["type"] for component in components}
    interfaces = options.get("interfaces", ["*", "::"])
    local = options.get("local_interfaces", ["127.0.0.1", "::1"])
    services = [("c2s", [5222], interfaces), ("c2s_direct_tls", [], interfaces)]
    if "s2s" not in disabled:
        services += [("s2s", [5269], interfaces), ("s2s_direct_tls", [], interfaces)]
    if enabled & HTTP_MODULES or types & {"http_file_share"}:
        services += [("http", [5280], local), ("https", [5281], interfaces)]
    if "external" in types:
        services.append(("component", [5347], local))
    if "proxy65" in types:
        services.append(("proxy65", [5000], interfaces))
    return sorted(
        f"{address}:{port}"
        for name, default_ports, default_interfaces in services
        for port in options.get(f"{name}_ports", default_ports)
        for address in options.get(f"{name}_interfaces", default_interfaces)
    )


SECRET_KEY = re.compile(r"(password|secret|key|token|credentials)$")


def prosody_secret_values(settings, key=""):
    """Sorted secret strings found anywhere in `settings`; see DOCUMENTATION."""
    found = set()
    if isinstance(settings, Mapping):
        for name, value in settings.items():
            found.update(prosody_secret_values(value, str(name)))
    elif isinstance(settings, Sequence) and not isinstance(settings, str):
        for item in settings:
            found.update(prosody_secret_values(item, key))
    elif isinstance(settings, str) and settings and SECRET_KEY.search(key):
        found.add(settings)
    return sorted(found)


def prosody_sql_clients(hosts, server):
    """[{database, username, password, source}] stored on `server`; see DOCUMENTATION."""
    clients = []
    for host in hosts:
        backends = ((host.get("prosody_merged") or {}).get("layer06_storage") or {}).get("backends") or {}
        sql = backends.get("sql") or {}
        if sql.get("driver") == "PostgreSQL" and sql.get("host") == server:
            clients.append(
                {
                    "database": sql["database"],
                    "username": sql["username"],
                    "password": sql["password"],
                    "source": host["prosody_listen_address"],
                }
            )
    return clients


def prosody_masked(settings, key=""):
    """A copy of `settings` with every secret string replaced by ********; see DOCUMENTATION."""
    if isinstance(settings, Mapping):
        return {name: prosody_masked(value, str(name)) for name, value in settings.items()}
    if isinstance(settings, Sequence) and not isinstance(settings, str):
        return [prosody_masked(item, key) for item in settings]
    if isinstance(settings, str) and settings and SECRET_KEY.search(key):
        return "********"
    return settings


def prosody_tree_digest(files):
    """SHA-256 over the tree's paths, modes and contents; see DOCUMENTATION."""
    return entries_digest(files)


def prosody_render_plan(merged, catalogue, roles_dir, environment_file, firewall_files=()):
    """Every file of a host's tree and where it comes from; see DOCUMENTATION."""
    if not isinstance(merged, Mapping):
        raise AnsibleFilterError(f"prosody_render_plan: expected the merged settings (a mapping), got {merged!r}")
    prosody_templates = f"{roles_dir}/prosody/templates"
    plan = [
        {
            "path": f"{layer['directory']}/{topic}.cfg.lua",
            "template": f"{roles_dir}/{layer['name']}/templates/{topic}.cfg.lua.j2",
            "vars": {
                "topic": (merged.get(layer["name"]) or {}).get(topic) or {},
                "topic_path": f"{layer['name']}.{topic}",
            },
        }
        for layer in catalogue
        for topic in layer["topics"]
    ]
    plan += [
        {
            "path": f"domains/{domain['name']}.cfg.lua",
            "template": f"{prosody_templates}/domain.cfg.lua.j2",
            "vars": {"domain": domain},
        }
        for domain in merged.get("prosody_domains") or []
    ]
    plan += [
        {"path": environment_file, "template": f"{prosody_templates}/environment.cfg.lua.j2"},
        {"path": "prosody.cfg.lua", "template": f"{prosody_templates}/prosody.cfg.lua.j2"},
    ]
    plan += [{"path": f"firewall/{os.path.basename(source)}", "copy": source} for source in firewall_files]
    return plan


SECTION_RESERVED_KEYS = {
    "VirtualHost": frozenset({"name", "modules", "components"}),
    "Component": frozenset({"name", "type", "modules"}),
}


def prosody_section_options(entry, kind):
    """A domain's or component's Prosody options; see DOCUMENTATION."""
    if kind not in SECTION_RESERVED_KEYS:
        raise AnsibleFilterError(f"prosody_section_options: kind is {kind!r}; allowed: VirtualHost, Component")
    if not isinstance(entry, Mapping):
        raise AnsibleFilterError(f"prosody_section_options: expected a mapping, got {entry!r}")
    return {key: value for key, value in entry.items() if key not in SECTION_RESERVED_KEYS[kind]}


def _fingerprint(value):
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _section_modules(entry):
    modules = entry.get("modules") or {}
    lists = {
        "modules_enabled": sorted(name for name, on in modules.items() if on),
        "modules_disabled": sorted(name for name, on in modules.items() if not on),
    }
    return {name: value for name, value in lists.items() if value}


def prosody_option_manifest(merged, catalogue, loader_options):
    """{section: {option: fingerprint}} for a whole tree; see DOCUMENTATION."""
    modules = prosody_modules(merged, catalogue)
    global_options = {name: value for name, value in loader_options.items() if value not in (None, [], "")}
    global_options["modules_enabled"] = [entry["module"] for entry in modules["enabled"]]
    global_options["modules_disabled"] = [entry["module"] for entry in modules["disabled"]]
    global_options.update(_global_options(merged, catalogue))
    global_options.update(merged.get("prosody_environment_settings") or {})
    sections = {"global": global_options}
    for domain in merged.get("prosody_domains") or []:
        sections[f"VirtualHost {domain['name']}"] = {
            **_section_modules(domain),
            **prosody_section_options(domain, "VirtualHost"),
        }
        for component in domain.get("components") or []:
            sections[f"Component {component['name']}"] = {
                "component_type": component.get("type"),
                **_section_modules(component),
                **prosody_section_options(component, "Component"),
            }
    return {
        section: {name: _fingerprint(value) for name, value in sorted(options.items())}
        for section, options in sorted(sections.items())
    }


def _option_lines(options):
    return [prosody_option(options[name], name) for name in sorted(options)]


def prosody_topic_lua(settings, setting_path, environment):
    """The body of one topic file: status, modules and options; see DOCUMENTATION."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"prosody_topic_lua: {setting_path}: expected a mapping, got {settings!r}")
    options = prosody_topic_options(settings)
    modules = settings.get("modules") or {}
    loaded = sorted(name for name, on in modules.items() if on)
    dropped = sorted(name for name, on in modules.items() if not on)
    lines = []
    if not topic_enabled(settings):
        lines.append(f"-- Status: off in the {environment} environment; this file sets nothing.")
        lines.append(f"-- Switch it on with {setting_path}.enabled: true, which would load")
        lines.append(f"-- modules: {', '.join(loaded) or 'none'} and set:")
        lines.extend(f"--   {line}" for line in "\n".join(_option_lines(options)).splitlines() or ["(no options)"])
        return "\n".join(lines) + "\n"
    lines.append(f"-- Status: on in the {environment} environment.")
    if loaded:
        lines.append(f"-- Modules (listed in prosody.cfg.lua's modules_enabled): {', '.join(loaded)}")
    if dropped:
        lines.append(f"-- Modules switched off here: {', '.join(dropped)}")
    lines.append("")
    lines.extend(_option_lines(options) or ["-- No options: Prosody's defaults apply."])
    return "\n".join(lines) + "\n"


class FilterModule:
    """Filters that write Prosody's configuration."""

    def filters(self):
        return {
            "to_lua": to_lua,
            "prosody_option": prosody_option,
            "prosody_topic_lua": prosody_topic_lua,
            "prosody_topic_options": prosody_topic_options,
            "prosody_modules": prosody_modules,
            "prosody_duplicate_options": prosody_duplicate_options,
            "prosody_tree_digest": prosody_tree_digest,
            "prosody_render_plan": prosody_render_plan,
            "prosody_certificate_files": prosody_certificate_files,
            "prosody_listeners": prosody_listeners,
            "prosody_secret_values": prosody_secret_values,
            "prosody_masked": prosody_masked,
            "prosody_sql_clients": prosody_sql_clients,
            "prosody_section_options": prosody_section_options,
            "prosody_option_manifest": prosody_option_manifest,
        }
