"""Where a Prosody option lives: the option catalogue, paths into the merged settings, files and sections.

The catalogue is read from the project's own sources of truth: the layer
catalogue (roles/prosody/vars/main.yml: which topic file each topic renders
to), the layer schemas (roles/layer*/vars/main.yml: which topic owns which
option) and schemas/ (domain, component and environment options).

A path is a tuple of steps into the merged settings: strings are mapping
keys, `Item`s pick one entry of a list of named mappings (domains,
components).  It is written `layer02_stream.encryption.s2s_secure_auth`, or
with the entry's name in brackets, because domain names contain dots:
`prosody_domains[example.com].allow_registration`,
`prosody_domains[example.com].components[conference.example.com].max_history_messages`.
"""

import difflib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from .common import ROOT, filter_plugin

DOMAINS = "prosody_domains"
ENVIRONMENT = "prosody_environment_settings"
# Keys of a topic, domain or component that are ours, not Prosody options.
TOPIC_RESERVED = ("enabled", "modules")
DOMAIN_RESERVED = ("name", "components")
COMPONENT_RESERVED = ("name", "type")
EXAMPLES = (
    "c2s_require_encryption, layer02_stream.encryption.s2s_secure_auth, "
    "prosody_domains[example.com].allow_registration, "
    "prosody_domains[example.com].components[conference.example.com].max_history_messages"
)


class WrongOption(Exception):
    """The option or path asked for does not exist: wrong input, exit code 1."""


@dataclass(frozen=True)
class Item:
    """One entry of a list of named mappings (a domain, a component), by name."""

    name: str


def format_path(steps):
    """`layer02_stream.encryption.s2s_secure_auth`, `prosody_domains[example.com].allow_registration`."""
    text = ""
    for step in steps:
        text += f"[{step.name}]" if isinstance(step, Item) else (f".{step}" if text else step)
    return text


def option_key(steps):
    """The last mapping key of a path: the name the secret-key rule looks at."""
    return next((step for step in reversed(steps) if isinstance(step, str)), "")


def option_length(steps):
    """How many steps of a path lead to its option (more steps are keys inside the option's value)."""
    if steps[0] == DOMAINS:
        return 5 if len(steps) > 2 and steps[2] == "components" else 3
    return 2 if steps[0] == ENVIRONMENT else 3


def _load(path):
    return yaml.safe_load(Path(path).read_text())


class Catalogue:
    """Every option Prosody can be given through the settings, and where each one goes."""

    def __init__(self, root=ROOT):
        self.root = root
        # The layer catalogue: [{name, directory, topics}] in Include order.
        self.layers = _load(root / "roles" / "prosody" / "vars" / "main.yml")["prosody_layers"]

    @cached_property
    def topic_options(self):
        """{(layer, topic): [option names]} from each layer's schema."""
        options = {}
        for layer in self.layers:
            schema = _load(self.root / "roles" / layer["name"] / "vars" / "main.yml")[f"{layer['name']}_schema"]
            for topic in layer["topics"]:
                keys = (schema.get(topic) or {}).get("schema") or {}
                options[layer["name"], topic] = [key for key in keys if key not in TOPIC_RESERVED]
        return options

    @cached_property
    def global_options(self):
        """{option: (layer, topic)}: the one topic that owns each global option."""
        return {option: owner for owner, names in self.topic_options.items() for option in names}

    @cached_property
    def environment_options(self):
        return list(_load(self.root / "schemas" / f"{ENVIRONMENT}.yml")[f"{ENVIRONMENT}_schema"])

    @cached_property
    def _domain_schema(self):
        return _load(self.root / "schemas" / f"{DOMAINS}.yml")[f"{DOMAINS}_schema"]["schema"]["schema"]

    @cached_property
    def domain_options(self):
        """VirtualHost options (modules included: a domain's own module switches)."""
        return [key for key in self._domain_schema if key not in DOMAIN_RESERVED]

    @cached_property
    def component_options(self):
        """{option: [component types that take it]} ([] when every type does)."""
        schema = self._domain_schema["components"]["schema"]["schema"]
        return {
            key: list((rules.get("dependencies") or {}).get("type") or [])
            for key, rules in schema.items()
            if key not in COMPONENT_RESERVED
        }

    @cached_property
    def blocks(self):
        return [layer["name"] for layer in self.layers] + [ENVIRONMENT, DOMAINS]

    def layer(self, name):
        return next((layer for layer in self.layers if layer["name"] == name), None)

    def known_names(self):
        """Every bare option name and every block, topic and global option path (for suggestions)."""
        names = set(self.global_options) | set(self.environment_options) | set(self.domain_options)
        names |= set(self.component_options) | set(self.blocks)
        names |= {f"{layer}.{topic}.{option}" for option, (layer, topic) in self.global_options.items()}
        names |= {f"{ENVIRONMENT}.{option}" for option in self.environment_options}
        return sorted(names - set(TOPIC_RESERVED))

    def nearest(self, text):
        """Close matches for a mistyped name or path (difflib), best first."""
        return difflib.get_close_matches(text, self.known_names(), n=5, cutoff=0.6)

    def unknown(self, text, why):
        """A WrongOption naming the nearest known options and the accepted forms."""
        near = self.nearest(text)
        hint = f"nearest: {', '.join(near)}" if near else f"for example: {EXAMPLES}"
        return WrongOption(f"{why} ({hint})")

    def is_bare(self, text):
        return not re.search(r"[.\[\]]", text)

    def check_bare(self, name):
        """Refuse a bare name that is no option, or that every topic has (enabled, modules)."""
        if name in TOPIC_RESERVED:
            raise WrongOption(
                f"{name!r} is in every topic, domain and component: name it by its path, "
                f"such as layer01_transport.compression.{name} or prosody_domains[example.com].{name}"
            )
        known = set(self.global_options) | set(self.environment_options) | set(self.domain_options)
        if name not in known | set(self.component_options):
            raise self.unknown(name, f"unknown option {name!r}")

    def parse(self, text):
        """The steps of a written path; WrongOption when it names nothing the settings hold."""
        tokens = _tokens(text)
        if tokens is None or not tokens or isinstance(tokens[0], Item):
            raise self.unknown(text, f"cannot read {text!r} as a path")
        block = tokens[0]
        if block == DOMAINS:
            return self._domain_path(text, tokens)
        if block == ENVIRONMENT:
            return self._checked(text, tokens, 1, self.environment_options, ENVIRONMENT)
        layer = self.layer(block)
        if layer is None:
            raise self.unknown(text, f"{block!r} is not a settings block (blocks: {', '.join(self.blocks)})")
        if len(tokens) < 2 or tokens[1] not in layer["topics"]:
            topics = ", ".join(layer["topics"])
            raise WrongOption(f"{text!r}: {block} has the topics {topics}; name one, then an option")
        options = self.topic_options[block, tokens[1]] + list(TOPIC_RESERVED)
        return self._checked(text, tokens, 2, options, f"{block}.{tokens[1]}")

    def _checked(self, text, tokens, at, options, owner):
        """Tokens whose token `at` is one of `options`, with plain keys after it."""
        if len(tokens) <= at:
            raise WrongOption(f"{text!r} names no option: add one of {owner}'s ({', '.join(sorted(options))})")
        if tokens[at] not in options:
            near = difflib.get_close_matches(str(tokens[at]), options, n=5, cutoff=0.6)
            hint = f"nearest: {', '.join(near)}" if near else f"allowed: {', '.join(sorted(options))}"
            raise WrongOption(f"{text!r}: {owner} has no option {tokens[at]!r} ({hint})")
        if any(isinstance(token, Item) for token in tokens[at + 1 :]):
            raise WrongOption(f"{text!r}: only domains and components are picked by [name]; use .key inside an option")
        return tuple(tokens)

    def _domain_path(self, text, tokens):
        """prosody_domains[D].OPTION or prosody_domains[D].components[C].OPTION."""
        if len(tokens) < 2 or not isinstance(tokens[1], Item):
            raise WrongOption(
                f"{text!r}: name the domain in brackets, because domain names contain dots: "
                "prosody_domains[example.com].allow_registration, "
                "prosody_domains[example.com].components[conference.example.com].max_history_messages"
            )
        if len(tokens) > 2 and tokens[2] == "components":
            if len(tokens) < 4 or not isinstance(tokens[3], Item):
                raise WrongOption(f"{text!r}: name the component in brackets: ...components[conference.example.com]")
            return self._checked(text, tokens, 4, list(self.component_options), "a component")
        return self._checked(text, tokens, 2, self.domain_options, "a domain")

    def places_of(self, name, merged):
        """Every path where the bare option `name` is (or would be) set on a host with these merged settings.

        A global option always has its one place, set or not; a domain or
        component option counts where the host's merged settings set it.
        """
        places = []
        if name in self.global_options:
            places.append((*self.global_options[name], name))
        if name in self.environment_options:
            places.append((ENVIRONMENT, name))
        for domain in merged.get(DOMAINS) or []:
            if name in self.domain_options and name in domain:
                places.append((DOMAINS, Item(domain["name"]), name))
            for component in domain.get("components") or []:
                if name in self.component_options and name in component:
                    places.append((DOMAINS, Item(domain["name"]), "components", Item(component["name"]), name))
        return places

    def where_settable(self, name):
        """Where a domain or component option could be set (for one that a host sets nowhere)."""
        forms = []
        if name in self.domain_options:
            forms.append(f"prosody_domains[DOMAIN].{name}")
        if name in self.component_options:
            types = self.component_options[name]
            kinds = f" (components of type {', '.join(types)})" if types else ""
            forms.append(f"prosody_domains[DOMAIN].components[COMPONENT].{name}{kinds}")
        return forms

    def written_to(self, steps, environment, value=None):
        """(file in the host's tree, section) where the option at `steps` (holding `value`) is written."""
        block = steps[0]
        if block == DOMAINS:
            domain = steps[1].name
            in_component = len(steps) > 3 and steps[2] == "components"
            section = f'Component "{steps[3].name}"' if in_component else f'VirtualHost "{domain}"'
            option_at = 4 if in_component else 2
            if steps[option_at] == "modules":
                section += f", {_module_list(steps[option_at + 1 :], value, autoloaded=())}"
            return f"domains/{domain}.cfg.lua", section
        if block == ENVIRONMENT:
            return f"environments/{environment}.cfg.lua", "global section"
        topic_file = f"{self.layer(block)['directory']}/{steps[1]}.cfg.lua"
        if steps[2] == "modules":
            # The loader collects every topic's modules into its own two lists.
            modules = _module_list(steps[3:], value, filter_plugin("prosody_config").AUTOLOADED_MODULES)
            return "prosody.cfg.lua", f"global section, {modules} (asked for by {topic_file})"
        if steps[2] == "enabled":
            return topic_file, "its status line (enabled is no Prosody option: it switches the file on or off)"
        return topic_file, "global section"


def _module_list(rest, value, autoloaded):
    """Which module list one module switch lands in: modules_enabled, modules_disabled, or neither."""
    if len(rest) != 1 or not isinstance(value, bool):
        return "modules_enabled / modules_disabled"
    if value:
        return "modules_enabled"
    # A domain's false always goes to its modules_disabled; a topic's only for an autoloaded module.
    if autoloaded and rest[0] not in autoloaded:
        return "no list (a module switched off is simply not loaded)"
    return "modules_disabled"


_TOKEN = re.compile(r"(?P<dot>^|\.)(?P<key>[^.\[\]]+)|\[(?:name=)?(?P<item>[^\[\]]+)\]")


def _tokens(text):
    """Keys and [items] of a written path, or None when it does not read as one."""
    tokens, position = [], 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            return None
        tokens.append(Item(match["item"]) if match["item"] is not None else match["key"])
        position = match.end()
    return tokens if position == len(text) else None
