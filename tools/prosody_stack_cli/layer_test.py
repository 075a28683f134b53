"""layer-test: one layer on its own, checked by real Prosody of each series.

Every topic of LAYER is switched on (also those off by default) and every
topic of the other layers off (enabled: false: its file sets nothing),
except layer01_transport.tls, which every layer was found to need: without
it Prosody finds no certificates and, from layer 03 on, no mod_tls for the
encryption it requires of clients (--alone leaves it off too, to see that).
A topic that loads a module of another Prosody series (see `prosody-stack
deps`) stays off on a host of this one, and the result says so.

The inventory is made in a scratch folder: one host per layer and series,
each with one domain and the development profile (which claims no policy),
as tests/broken/_baseline.  Each host is built (schemas, rules), then its
tree is read strictly by `prosodyctl check config`, one container per series.
LAYER is 01-transport, layer01_transport or transport (and so on), or all.
"""

import argparse

import yaml

from .common import FAILED, OK, emit, layer_catalogue, layer_label, progress, render, scratch
from .deps import graph_edges
from .prosody import IMAGES, check_trees

HELP = "render one layer alone on a minimal inventory and have real Prosody of each series check it"
DOMAIN = "example.test"
# What any layer needs from another, found by rendering each layer alone and
# running `prosodyctl check config` on both series (--alone does it again).
# Without layer01_transport.tls, Prosody looks for certificates in the
# config's own folder ("Error indexing certificate directory .../certs") and,
# from layer 03 on, refuses the encryption it requires of clients by default
# without mod_tls ("You require encryption but mod_tls is not enabled").
# Nothing else was needed: each layer passes alone with this one topic.
GIVEN = (("layer01_transport", "tls"),)
# Values the build's rules require once a topic is on (prosody_dependencies:
# rule_ldap, rule_oauth).  Placeholders: nothing is contacted, and the trees
# stay in the private scratch folder.
REQUIRED = {
    ("layer08_integration", "ldap"): {"ldap_base": "ou=people,dc=example,dc=test"},
    ("layer08_integration", "oauth"): {"oauth2_registration_key": "layer-test-placeholder"},
}


def _layer_names(catalogue):
    """{accepted name: layer}: 01-transport, layer01_transport and transport for each layer."""
    names = {}
    for layer in catalogue:
        for name in (layer_label(layer), layer["name"], layer["name"].split("_", 1)[1]):
            names[name] = layer
    return names


def layer_argument(value):
    """A LAYER argument: one layer's name in any of its spellings, or all."""
    catalogue = layer_catalogue()
    if value == "all":
        return catalogue
    found = _layer_names(catalogue).get(value)
    if found is None:
        allowed = ", ".join(layer_label(layer) for layer in catalogue)
        raise argparse.ArgumentTypeError(
            f"unknown layer {value!r} (allowed: {allowed}, all; or e.g. layer01_transport, transport)"
        )
    return [found]


def add_arguments(parser):
    parser.add_argument("layers", nargs="+", type=layer_argument, metavar="LAYER", help="a layer, or all")
    parser.add_argument(
        "--series", action="append", choices=list(IMAGES), help="Prosody series to check with (default: both)"
    )
    parser.add_argument("--alone", action="store_true", help="leave off what the layer is given from others too")


def _series_topics():
    """{(layer, topic): series} for topics that need a Prosody series, or load a module that does."""
    edges = graph_edges()
    needs = {edge["source"]: edge["target"].name for edge in edges if edge["target"].kind == "series"}
    topics = {}
    for edge in edges:
        source, target = edge["source"], edge["target"]
        if source.kind == "topic" and source in needs:
            topics[source.layer, source.name] = needs[source]
        elif source.kind == "topic" and edge["relation"] == "loads" and target in needs:
            topics[source.layer, source.name] = needs[target]
    return topics


def plan(layer, series, alone, series_topics):
    """What one host switches on, off (and why) and is given: {on, off: {topic: why}, given}."""
    off = {
        topic: f"needs Prosody {needed}"
        for topic in layer["topics"]
        if (needed := series_topics.get((layer["name"], topic))) and needed != series
    }
    given = [] if alone else [f"{name}.{topic}" for name, topic in GIVEN if name != layer["name"]]
    return {"on": [topic for topic in layer["topics"] if topic not in off], "off": off, "given": given}


def host_settings(layer, series, planned, catalogue):
    """The host's variables: its series, and every topic of every layer on or off."""
    settings = {"prosody_series": series, "ansible_host": "192.0.2.10"}  # TEST-NET-1: nothing answers there
    for other in catalogue:
        settings[other["name"]] = {topic: {"enabled": False} for topic in other["topics"]}
    for topic in planned["on"]:
        settings[layer["name"]][topic] = {"enabled": True, **REQUIRED.get((layer["name"], topic), {})}
    for path in planned["given"]:
        name, topic = path.split(".")
        settings[name][topic] = {"enabled": True}
    return settings


def write_inventory(folder, hosts):
    """A scratch inventory: hosts.yml, one domain for all, host_vars per host."""
    (folder / "group_vars" / "all").mkdir(parents=True)
    (folder / "host_vars").mkdir()
    common = {"prosody_environment": "development", "prosody_domains": [{"name": DOMAIN}]}
    (folder / "group_vars" / "all" / "main.yml").write_text("---\n" + yaml.safe_dump(common))
    (folder / "hosts.yml").write_text("---\n" + yaml.safe_dump({"prosody": {"hosts": dict.fromkeys(hosts)}}))
    for host, settings in hosts.items():
        (folder / "host_vars" / f"{host}.yml").write_text("---\n" + yaml.safe_dump(settings))


def build(inventory, trees, hosts):
    """{host: [build problems]}.  A failing host stops the others (any_errors_fatal): they are built again."""
    problems, pending = {}, list(hosts)
    while pending:
        found = render(inventory, trees, extra=("--limit", ",".join(pending)))
        problems.update({host: found.get(host, []) for host in pending})
        if not any(found.values()):
            break
        pending = [host for host in pending if not problems[host] and not (trees / host).is_dir()]
        if pending:
            progress(f"building again without the failed: {', '.join(pending)}")
    return problems


def _cases(args):
    """One case per layer and series asked for, in catalogue order: {host, layer, series, settings, on, off, given}."""
    catalogue = layer_catalogue()
    wanted = {layer["name"] for group in args.layers for layer in group}
    series_topics = _series_topics()
    cases = []
    for layer in (layer for layer in catalogue if layer["name"] in wanted):
        for series in dict.fromkeys(args.series or IMAGES):
            planned = plan(layer, series, args.alone, series_topics)
            host = f"{layer_label(layer)}-{series}"
            settings = host_settings(layer, series, planned, catalogue)
            cases.append({"host": host, "layer": layer_label(layer), "series": series, "settings": settings, **planned})
    return cases


def _summary(case):
    """What was tested: the topics on, those off and why, what was given."""
    text = f"{', '.join(case['on'])} on"
    reasons = {}
    for topic, why in case["off"].items():
        reasons.setdefault(why, []).append(topic)
    text += "".join(f"; {', '.join(topics)} off ({why})" for why, topics in reasons.items())
    if case["given"]:
        text += f"; given {', '.join(case['given'])}"
    return text


def _lines(results):
    """The text result: a line per layer and series, findings under a failed one, then the count."""
    lines = []
    for result in results:
        where = f"{result['series']:<5} {result['layer']}"
        if result["ok"]:
            lines.append(f"ok    {where}: {_summary(result)}")
        elif result["prosody"] is None and not result["build"]:
            lines.append(f"SKIP  {where}: not checked (not built)")
        else:
            step = "build" if result["build"] else "prosodyctl check config"
            lines.append(f"FAIL  {where}: {step} ({_summary(result)})")
            lines.extend(f"        {finding}" for finding in result["build"] or result["prosody"])
    passed = sum(result["ok"] for result in results)
    lines.append(f"{passed} of {len(results)} layer trees pass")
    return lines


def run(args):
    cases = _cases(args)
    with scratch("layer-test") as work:
        write_inventory(work / "inventory", {case["host"]: case["settings"] for case in cases})
        progress(f"building {len(cases)} tree(s), each with one layer on: {', '.join(c['host'] for c in cases)}")
        problems = build(work / "inventory", work / "trees", [case["host"] for case in cases])
        built = [case for case in cases if not problems[case["host"]] and (work / "trees" / case["host"]).is_dir()]
        checked = check_trees(work / "trees", [case["host"] for case in built]) if built else {}
        findings = {host: result["findings"] for host, result in checked.items()}
    results = [
        {
            **{key: case[key] for key in ("layer", "series", "on", "off", "given")},
            "ok": not problems[case["host"]] and findings.get(case["host"]) == [],
            "build": problems[case["host"]],
            "prosody": findings.get(case["host"]),
        }
        for case in cases
    ]
    ok = all(result["ok"] for result in results)
    emit(args, "\n".join(_lines(results)), {"results": results, "ok": ok})
    return OK if ok else FAILED
