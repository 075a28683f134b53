"""deps: which feature needs or excludes which other, each drawn in its layer.

The edges are those the build's checks carry (@edges on the rules of
filter_plugins/prosody_dependencies.py, and on the checks across settings
blocks of prosody_schema.py): the graph shows exactly what a build refuses.
To follow them, it also shows which topic loads a module they name (the
layers' role defaults).  Formats: text (one line per edge, grouped by the layer of the feature that
needs), dot (Graphviz source), png (drawn by Graphviz's dot; needs -o).
"""

import shutil
import subprocess
import sys

import yaml

from .common import OK, ROOT, USAGE, CannotRun, emit, filter_plugin, layer_catalogue, layer_label

HELP = "the dependency graph between features and layers: text, Graphviz dot, or a PNG drawn by dot"
FORMATS = ("text", "dot", "png")
# Graphviz shape per kind of feature (the legend in the drawing says so too).
SHAPES = {"topic": "box", "option": "note", "module": "ellipse", "component type": "component"}
FONT = "DejaVu Sans"
SERIES_FILL, SERIES_FILL_NAME = "#ffd8a8", "orange"


def add_arguments(parser):
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), dot or png")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the graph to FILE (png needs it)")


def checks_with_edges():
    """[(module name, check)] for every check of filter_plugins/ that carries @edges, in file order."""
    found = []
    for path in sorted((ROOT / "filter_plugins").glob("*.py")):
        module = filter_plugin(path.stem)
        for value in vars(module).values():
            # Defined here, not imported from another plugin: each check is listed once.
            if callable(value) and getattr(value, "edges", None) and value.__module__ == path.stem:
                found.append((path.stem, value))
    return found


def topic_modules():
    """{(layer, topic): [modules it loads]} from the layers' role defaults."""
    loads = {}
    for layer in layer_catalogue():
        defaults_file = ROOT / "roles" / layer["name"] / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text())[f"{layer['name']}_defaults"]
        for topic, settings in defaults.items():
            loads[layer["name"], topic] = [name for name, on in (settings.get("modules") or {}).items() if on]
    return loads


def graph_edges():
    """[{source, relation, target, check}] with each end a Node (layer, kind, name).

    Besides the checks' edges: which topic loads a module those edges name
    (its role defaults), so "topic oauth loads module http_oauth2, which
    needs Prosody 13.0" can be followed.
    """
    found = [
        {"source": edge.source, "relation": edge.relation, "target": edge.target, "check": f"{name}.{check.__name__}"}
        for name, check in checks_with_edges()
        for edge in check.edges
    ]
    named = {node for edge in found for node in (edge["source"], edge["target"]) if node.kind == "module"}
    node = filter_plugin("prosody_dependencies").Node
    loads = [
        {
            "source": node.topic(f"{layer}.{topic}"),
            "relation": "loads",
            "target": module,
            "check": f"roles/{layer}/defaults/main.yml",
        }
        for (layer, topic), modules in topic_modules().items()
        for module in (node.module(name, layer) for name in modules)
        if module in named
    ]
    return loads + found


def _labels():
    """{layer name: "01-transport"}, and "" (a Prosody series) labelled as such."""
    return {layer["name"]: layer_label(layer) for layer in layer_catalogue()} | {"": "Prosody series"}


def _node_text(node, home, labels):
    """How a line names a feature; its layer is added when it is not the line's layer."""
    text = f"Prosody {node.name}" if node.kind == "series" else f"{node.kind} {node.name}"
    return text if node.layer in (home, "") else f"{text} ({labels[node.layer]})"


def as_text(found):
    """One line per edge under the layer of the feature that needs (or excludes) the other."""
    labels = _labels()
    lines = []
    width = max(len(_node_text(edge["source"], edge["source"].layer, labels)) for edge in found)
    for layer in layer_catalogue():
        lines.append(f"{layer_label(layer)} ({layer['name']})")
        mine = [edge for edge in found if edge["source"].layer == layer["name"]]
        lines += [
            f"  {_node_text(edge['source'], layer['name'], labels):<{width}}  {edge['relation']:<8}  "
            f"{_node_text(edge['target'], layer['name'], labels)}"
            for edge in mine
        ] or ["  (no dependency rule)"]
    checks = {edge["check"] for edge in found if edge["relation"] != "loads"}
    loads = sum(edge["relation"] == "loads" for edge in found)
    lines.append(f"{len(found) - loads} edges from {len(checks)} checks of filter_plugins/, {loads} from role defaults")
    return "\n".join(lines)


def _quoted(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _node_id(node):
    return _quoted(f"{node.layer}/{node.kind}/{node.name}")


def _dot_node(node, series):
    """A feature; one that needs a Prosody series is filled and says so instead of an edge to it."""
    label = {"module": f"mod_{node.name}", "component type": f"{node.name}\ncomponent"}.get(node.kind, node.name)
    style = "rounded,filled" if node.kind == "topic" else "filled"
    fill = ""
    if node in series:
        label += f"\n(needs Prosody {series[node]})"
        fill = f", fillcolor={_quoted(SERIES_FILL)}"
    return f"    {_node_id(node)} [label={_quoted(label)}, shape={SHAPES[node.kind]}, style={_quoted(style)}{fill}];"


def _dot_edge(edge, order):
    ends = f"{_node_id(edge['source'])} -> {_node_id(edge['target'])}"
    # An edge back to an earlier layer does not rank its target: layers stay in stack order.
    back = ", constraint=false" if order[edge["target"].layer] < order[edge["source"].layer] else ""
    if edge["relation"] == "loads":
        return f"  {ends} [style=dotted, arrowhead=vee{back}];"
    if edge["relation"] == "excludes":
        # A conflict has no direction: a dashed red line with a bar at each end.
        return f'  {ends} [style=dashed, color="#b22222", dir=both, arrowhead=tee, arrowtail=tee{back}];'
    return f"  {ends} [{back.lstrip(', ')}];" if back else f"  {ends};"


def _dot_cluster(layer, members, series):
    """A layer's box; an invisible anchor (or a note when it has no rule) keeps the stack's order."""
    anchor = _quoted(f"anchor/{layer['name']}")
    lines = [
        f"  subgraph {_quoted('cluster_' + layer['name'])} {{",
        f'    label={_quoted(layer_label(layer))}; style=rounded; color="#7a7a7a";',
    ]
    if members:
        lines.append(f"    {anchor} [shape=point, style=invis];")
    else:
        lines.append(f'    {anchor} [label="no dependency rule", shape=plaintext];')
    lines += [_dot_node(node, series) for node in members]
    lines.append("  }")
    return lines


def _stack_order(layers, nodes):
    """Invisible edges that draw each layer's features below its anchor and above the next layer's."""
    lines = []
    for index, layer in enumerate(layers):
        anchor = _quoted(f"anchor/{layer['name']}")
        below = _quoted(f"anchor/{layers[index + 1]['name']}") if index + 1 < len(layers) else None
        members = [_node_id(node) for node in nodes if node.layer == layer["name"]]
        lines += [f"  {anchor} -> {member} [style=invis];" for member in members]
        if below:
            lines += [f"  {member} -> {below} [style=invis];" for member in members or [anchor]]
    return lines


def as_dot(found):
    """Graphviz source: the layers top to bottom as boxes holding their features.

    Edges to a Prosody series are drawn as a mark on the feature that needs
    it: a dozen arrows into one node would hide everything else.
    """
    series = {edge["source"]: edge["target"].name for edge in found if edge["target"].kind == "series"}
    drawn = [edge for edge in found if edge["target"].kind != "series"]
    nodes = list(dict.fromkeys(node for edge in found for node in (edge["source"], edge["target"])))
    layers = layer_catalogue()
    order = {layer["name"]: index for index, layer in enumerate(layers)}
    lines = [
        "digraph dependencies {",
        f'  graph [rankdir=TB, fontname="{FONT}", fontsize=12, labelloc=t, newrank=true, nodesep=0.3, '
        'label="prosody-stack deps: what needs what (arrow), loads (dots) or excludes (red dashes), by layer\\n'
        f"box: topic   note: option   ellipse: module   component: component type   {SERIES_FILL_NAME}: needs a "
        'Prosody series"];',
        f'  node [fontname="{FONT}", fontsize=10, style=filled, fillcolor="#f4f4f4"];',
        '  edge [color="#333333"];',
    ]
    for layer in layers:
        members = [node for node in nodes if node.layer == layer["name"]]
        lines += _dot_cluster(layer, members, series)
    lines += _stack_order(layers, nodes)
    lines += [_dot_edge(edge, order) for edge in drawn]
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_png(source, output):
    """Have Graphviz's dot draw the source into output."""
    dot = shutil.which("dot")
    if not dot:
        raise CannotRun("Graphviz's dot is missing (Debian package graphviz): run `make setup`")
    done = subprocess.run([dot, "-Tpng", "-o", output], input=source, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CannotRun(f"dot could not draw the graph: {done.stderr.strip()}")


def _as_json(found, written):
    def node(item):
        return {"layer": item.layer, "kind": item.kind, "name": item.name}

    edges = [{**edge, "source": node(edge["source"]), "target": node(edge["target"])} for edge in found]
    return {"edges": edges, "written": written}


def run(args):
    if args.format == "png" and not args.output:
        print("prosody-stack deps: --format png needs -o FILE", file=sys.stderr)
        return USAGE
    found = graph_edges()
    result = as_text(found) if args.format == "text" else as_dot(found)
    if args.format == "png":
        draw_png(result, args.output)
    elif args.output:
        with open(args.output, "w") as out:
            out.write(result if result.endswith("\n") else result + "\n")
    text = f"wrote {args.output} ({len(found)} edges)" if args.output else result.rstrip("\n")
    emit(args, text, _as_json(found, args.output))
    return OK
