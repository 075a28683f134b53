"""explain: where one option's value on one host comes from (no host is contacted).

OPTION is a Prosody option's name, or its path in the merged settings:
  archive_expires_after                               a name: every place it is set on the host
  layer02_stream.encryption.s2s_secure_auth           a layer topic's option (deeper too: ...limits.c2s)
  prosody_environment_settings.log                    an option of environments/<env>.cfg.lua
  prosody_domains[example.com].allow_registration     a domain's option (its VirtualHost section)
  prosody_domains[example.com].components[conference.example.com].max_history_messages
Domains and components are named in brackets because their names contain
dots.  A name set in several places (a global topic and a domain, several
domains) is explained in each place, one after the other.

Prints the value the build merges for the host (secrets masked), the file
and section of the host's tree it is written to (and whether its topic is
switched off: then Prosody never sees it), and the sources, lowest
precedence first: role default, environment profile, then the inventory
variables <block>, <block>_group and <block>_host, each with the file (and
line) Ansible takes it from.  The value is confirmed against the settings
the build merges (playbooks/render.yml renders the host, or --rendered DIR
reuses an earlier `prosody-stack render`).

explain exits 1 when the option, domain or host does not exist, and when
the build refuses the host (the sources are still shown).
"""

import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import FAILED, OK, ROOT, CannotRun, emit, filter_plugin, inventory_path, progress, render, scratch
from .options import DOMAINS, TOPIC_RESERVED, Catalogue, Item, WrongOption, format_path, option_key, option_length
from .sources import Inventory, plain, reach

HELP = "where an option's value on one host comes from: value, file and section, every level that sets it"
# A value the merged settings do not hold (None is a value: JSON null).
ABSENT = object()


def add_arguments(parser):
    parser.add_argument("option", metavar="OPTION", help="an option name, or its path (see above)")
    parser.add_argument("--host", required=True, help="the Prosody host of the inventory to explain it for")
    parser.add_argument("inventory", metavar="INVENTORY", help="inventory folder, or the name of one in inventories/")
    parser.add_argument(
        "--rendered",
        type=Path,
        metavar="DIR",
        help="reuse DIR/<host>.settings.json of an earlier `prosody-stack render` instead of rendering again",
    )


def masked(value, key):
    """The project's secret rule (prosody_masked): values under keys ending in password|secret|key|token|credentials."""
    return filter_plugin("prosody_config").prosody_masked(value, key)


def lookup(settings, steps):
    """The value at `steps` in merged settings, or ABSENT."""
    value = settings
    for step in steps:
        if isinstance(step, Item):
            items = value if isinstance(value, list) else []
            value = next((item for item in items if isinstance(item, dict) and item.get("name") == step.name), ABSENT)
        else:
            value = value.get(step, ABSENT) if isinstance(value, dict) else ABSENT
        if value is ABSENT:
            return ABSENT
    return value


@dataclass
class Host:
    """One host: its levels, and its settings merged by the build and (again, here) from the levels."""

    name: str
    inventory: Inventory
    catalogue: Catalogue
    built: dict | None = None  # the build's merged settings (secrets masked); None when it refused the host
    problems: list = field(default_factory=list)
    _levels: dict = field(default_factory=dict)
    _merged: dict = field(default_factory=dict)

    @property
    def environment(self):
        return self.inventory.environment(self.name)

    def levels(self, block):
        if block not in self._levels:
            self._levels[block] = self.inventory.levels(self.name, block)
        return self._levels[block]

    def from_levels(self, block):
        """The block merged here from the templated levels, as the play merges it; None when that fails."""
        if block not in self._merged:
            self._merged[block] = self._merge(block)
        return self._merged[block]

    def _merge(self, block):
        pairs = []
        for level in self.levels(block):
            value = self.inventory.template(self.name, level.value) if level.defined else {}
            if value is None and level.value is not None:
                return None  # a template this process cannot render: only the build knows
            pairs.append([level.label, plain(value) if value is not None else {}])
        try:
            return filter_plugin("prosody_merge").prosody_merge(pairs, block)
        except Exception:  # a merge error: the build reports it with its own message
            return None

    def merged(self, block):
        """The build's merged block, else the one merged here (secrets masked either way)."""
        if self.built is not None:
            return self.built.get(block)
        merged = self.from_levels(block)
        return None if merged is None else masked(merged, block)


def _where(origin, fallback):
    """(file, line) of an Origin, else of the level's file; paths relative to the checkout when inside it."""
    path, line = (origin.path, origin.line_num) if origin is not None and origin.path else (fallback, None)
    if path is None:
        return None, None
    try:
        return str(Path(path).resolve().relative_to(ROOT)), line
    except ValueError:
        return str(path), line


def _file_line(origin, fallback):
    file, line = _where(origin, fallback)
    return {"file": file, "line": line}


def trace(host, steps):
    """What each level of the path's block says about it, lowest precedence first (JSON-ready dicts)."""
    key = option_key(steps)
    sources = []
    for level in host.levels(steps[0]):
        said = reach(level.value, steps[1:]) if level.defined else None
        file, line = _where((said and said.origin) or level.origin, level.file)
        source = {
            "level": level.kind,
            "label": level.label,
            "variable": level.variable,
            "defined": level.defined,
            "file": file,
            "line": line,
            "says": said.status if said else "silent",
            "final": False,
            "ignored_definitions": [_file_line(origin, path) for path, origin in level.shadowed],
        }
        if said and said.status == "sets":
            templated = host.inventory.template(host.name, said.value)
            source["written"] = masked(plain(said.value), key)
            source["value"] = source["written"] if templated is None else masked(plain(templated), key)
        elif said and said.status == "removes":
            source["removes"] = said.why
        sources.append(source)
    return sources


def _merging(sources):
    """The levels whose values merge into the final one: those that set it after the last removal."""
    removals = [index for index, source in enumerate(sources) if source["says"] == "removes"]
    after = sources[removals[-1] + 1 :] if removals else sources
    return [source for source in after if source["says"] == "sets"]


def _mark_final(sources, value):
    """Mark the level that decides: the last one that says anything, unless several mappings merge."""
    speaking = [source for source in sources if source["says"] != "silent"]
    if speaking and not (isinstance(value, dict) and len(_merging(sources)) > 1):
        speaking[-1]["final"] = True


def _last_setter(host, steps):
    """'file:line' of the last level that sets `steps`, or None."""
    setters = [source for source in trace(host, steps) if source["says"] == "sets"]
    if not setters:
        return None
    last = setters[-1]
    return f"{last['file']}:{last['line']}" if last["line"] else last["file"]


def switched_off(host, steps):
    """{path, by} when the topic (or VirtualHost) that holds the option is switched off, else None."""
    if steps[0] == DOMAINS and option_length(steps) == 3:
        # A disabled VirtualHost; its Components are hosts of their own.
        switch = (DOMAINS, steps[1], "enabled")
    elif host.catalogue.layer(steps[0]) is not None:
        switch = (*steps[:2], "enabled")
    else:
        return None
    if steps[len(switch) - 1] == "enabled" or lookup(host.merged(steps[0]), switch[1:]) is not False:
        return None
    return {"path": format_path(switch), "by": _last_setter(host, switch)}


def overridden_in(host, steps):
    """Paths of the domains and components that set their own value of a global option."""
    if host.catalogue.layer(steps[0]) is None or len(steps) != 3 or steps[2] in TOPIC_RESERVED:
        return []
    option, found = steps[2], []
    for domain in host.merged(DOMAINS) or []:
        domain_path = (DOMAINS, Item(domain["name"]))
        if option in domain:
            found.append(format_path((*domain_path, option)))
        found += [
            format_path((*domain_path, "components", Item(component["name"]), option))
            for component in domain.get("components") or []
            if option in component
        ]
    return found


def agreement(host, steps, value):
    """Whether the five levels, merged here, give the build's value: (agree, note or None)."""
    if host.built is None:
        return False, None
    if host.from_levels(steps[0]) is None:
        return False, "not checked against the levels: a template there needs the play to render it"
    recomputed = lookup(masked(host.from_levels(steps[0]), steps[0]), steps[1:])
    if recomputed == value:
        return True, None
    seen = "nothing" if recomputed is ABSENT else _json(recomputed)
    # Something outside the five levels changed it, or the render is not of this inventory as it is now.
    return False, (
        f"the levels merge to {seen}, but the build merged the value above: a variable set outside the "
        "five levels (extra vars, role vars), or --rendered DIR rendered an older inventory?"
    )


def _notes(host, steps, value, sources):
    """What else matters for this value: domains that override it, ignored definitions, mappings that merge."""
    notes = [f"{other} sets its own value, which applies there instead" for other in overridden_in(host, steps)]
    for source in sources:
        for ignored in source["ignored_definitions"]:
            where = f"{ignored['file']}:{ignored['line']}" if ignored["line"] else ignored["file"]
            notes.append(
                f"{where} also defines {source['variable']}, ignored: Ansible takes the whole variable from "
                f"{source['file']}"
            )
    if isinstance(value, dict) and len(_merging(sources)) > 1:
        notes.append(f"a mapping: the levels that set it merge key by key (explain {format_path(steps)}.KEY)")
    return notes


def explain_place(host, steps):
    """Everything explain says about one path on one host (a JSON-ready dict)."""
    value = lookup(host.merged(steps[0]), steps[1:])
    sources = trace(host, steps)
    _mark_final(sources, value)
    file, section = host.catalogue.written_to(steps, host.environment, None if value is ABSENT else value)
    agree, disagreement = agreement(host, steps, value)
    return {
        "path": format_path(steps),
        "set": value is not ABSENT,
        "value": None if value is ABSENT else value,
        "from_build": host.built is not None,
        "confirmed": agree,
        "file": file,
        "section": section,
        "switched_off": switched_off(host, steps),
        "sources": sources,
        "notes": ([disagreement] if disagreement else []) + _notes(host, steps, value, sources),
    }


def check_host(inventory, host):
    """Refuse a host the inventory does not have, or that runs no Prosody."""
    hosts = inventory.prosody_hosts()
    if host in hosts:
        return
    if host in inventory.all_hosts():
        raise WrongOption(
            f"{host} is in {inventory.path.name} but is no Prosody host (not in the group prosody); "
            f"Prosody hosts: {', '.join(hosts)}"
        )
    near = difflib.get_close_matches(host, hosts, n=3, cutoff=0.6)
    hint = f"; nearest: {', '.join(near)}" if near else ""
    raise WrongOption(f"no host {host!r} in {inventory.path.name} (Prosody hosts: {', '.join(hosts)}{hint})")


def check_names(host, steps):
    """Refuse a domain or component the host's levels never name (before a long render)."""
    domains = host.from_levels(DOMAINS) if steps[0] == DOMAINS else None
    if domains is None:
        return  # not a domain path, or levels this process cannot merge: the build will say why
    domain = lookup(domains, steps[1:2])
    named = any(reach(level.value, steps[1:2]).status != "silent" for level in host.levels(DOMAINS) if level.defined)
    if domain is ABSENT and not named:
        names = ", ".join(entry["name"] for entry in domains) or "none"
        raise WrongOption(f"{host.name} has no domain {steps[1].name!r} (its domains: {names})")
    if len(steps) > 3 and steps[2] == "components" and isinstance(domain, dict):
        components = [component["name"] for component in domain.get("components") or []]
        if steps[3].name not in components:
            raise WrongOption(
                f"domain {steps[1].name} of {host.name} has no component {steps[3].name!r} "
                f"(its components: {', '.join(components) or 'none'})"
            )


def check_keys(host, steps, place):
    """Refuse a key below an option that no level and no merged value has (a typo, not an unset option)."""
    said = any(source["says"] != "silent" for source in place["sources"])
    if len(steps) <= option_length(steps) or place["set"] or said:
        return
    parent = lookup(host.merged(steps[0]), steps[1:-1])
    keys = sorted(parent) if isinstance(parent, dict) else []
    near = difflib.get_close_matches(str(steps[-1]), keys, n=3, cutoff=0.6)
    hint = f"nearest: {', '.join(near)}" if near else f"its keys: {', '.join(keys) or 'none'}"
    raise WrongOption(f"{format_path(steps[:-1])} has no key {steps[-1]!r} on {host.name} ({hint})")


def build(args, inventory_dir, host):
    """(merged settings or None, problems): from --rendered DIR, or from rendering this host alone."""
    if args.rendered:
        settings = args.rendered / f"{host}.settings.json"
        if not settings.is_file():
            raise CannotRun(f"{settings} not found: render with `prosody-stack render INVENTORY -o {args.rendered}`")
        return json.loads(settings.read_text()), []
    with scratch("explain") as work:
        progress(f"building {inventory_dir.name} for {host}: merge, schemas, rules, policies, render")
        problems = render(inventory_dir, work, extra=("--limit", host)).get(host, [])
        settings = work / f"{host}.settings.json"
        if problems or not settings.is_file():
            return None, problems or ["the build wrote no settings"]
        return json.loads(settings.read_text()), []


def explain(args, inventory_dir):
    """The JSON-ready answer; WrongOption for an option, host or domain that does not exist."""
    catalogue = Catalogue()
    bare = catalogue.is_bare(args.option)
    if bare:
        catalogue.check_bare(args.option)
    else:
        steps = catalogue.parse(args.option)
    progress(f"reading the variables of {args.host} in {inventory_dir.name}")
    inventory = Inventory(inventory_dir)
    check_host(inventory, args.host)
    host = Host(args.host, inventory, catalogue)
    if not bare:
        check_names(host, steps)
    host.built, host.problems = build(args, inventory_dir, args.host)
    paths = catalogue.places_of(args.option, {DOMAINS: host.merged(DOMAINS) or []}) if bare else [steps]
    places = [explain_place(host, path) for path in paths]
    if not bare:
        check_keys(host, steps, places[0])
    return {
        "inventory": str(inventory_dir),
        "host": args.host,
        "option": args.option,
        "built": host.built is not None,
        "problems": host.problems,
        "places": places,
        "settable_as": [] if places else catalogue.where_settable(args.option),
    }


def run(args):
    inventory_dir = inventory_path(args.inventory)
    try:
        result = explain(args, inventory_dir)
    except WrongOption as error:
        print(f"prosody-stack explain: {error}", file=sys.stderr)
        return FAILED
    emit(args, as_text(result), result)
    return OK if result["built"] else FAILED


def _json(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _said(source):
    """What one level says, as text."""
    if source["says"] == "sets":
        said = _json(source["value"])
        if source["written"] != source["value"]:
            said = f"{_json(source['written'])} -> {said}"
        return said + ("  <- final" if source["final"] else "")
    if source["says"] == "removes":
        return f"{source['removes']}: removes the inherited value" + ("  <- final" if source["final"] else "")
    return "(does not set it)"


def place_text(place, host):
    """The text of one place: value, file and section, switch, sources, notes."""
    value = _json(place["value"]) if place["set"] else "not set (Prosody's own default applies)"
    lines = [f"{place['path']} on {host} = {value}", f"  written to {place['file']}, {place['section']}"]
    if place["switched_off"]:
        off = place["switched_off"]
        by = f" ({off['by']})" if off["by"] else ""
        lines.append(f"  switched off: {off['path']} is false{by}, so Prosody never sees it")
    shown = [source for source in place["sources"] if source["defined"]]
    if shown:
        wheres = [f"{s['file']}:{s['line']}" if s["line"] else (s["file"] or "(file unknown)") for s in shown]
        label_width = max(len(source["label"]) for source in shown)
        where_width = max(len(where) for where in wheres)
        lines.append("  sources, lowest precedence first (the last that sets it wins):")
        lines += [
            f"    {source['label']:<{label_width}}  {where:<{where_width}}  {_said(source)}"
            for source, where in zip(shown, wheres, strict=True)
        ]
    else:
        lines.append("  no level defines its block")
    lines += [f"  note: {note}" for note in place["notes"]]
    return "\n".join(lines)


def as_text(result):
    """The whole answer as text: one block per place, then why the build refused the host, if it did."""
    host, places = result["host"], result["places"]
    blocks = []
    if len(places) > 1:
        paths = ", ".join(place["path"] for place in places)
        blocks.append(f"{result['option']} is set in {len(places)} places on {host}, each explained below: {paths}")
    if not places:
        blocks.append(
            f"{result['option']} is not set on {host}: it is an option of domains or components, "
            f"set as {' or '.join(result['settable_as'])}"
        )
    blocks += [place_text(place, host) for place in places]
    if not result["built"]:
        problems = "\n".join(f"  {problem}" for problem in result["problems"])
        blocks.append(f"the build refuses {host}, so the values above come from the levels only:\n{problems}")
    return "\n\n".join(blocks)
