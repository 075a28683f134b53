"""profile: where the time of building an inventory goes, per phase and per layer.

Renders the inventory once with a timing callback (callback_plugins/
prosody_timing.py) and reads each task's phase from its tag in
roles/prosody/tasks/main.yml (merge, validate, render); then times real
Prosody parsing each tree (prosodyctl check config, one container per
series).  Seconds are wall-clock on this machine: compare runs made here.
"""

import json
import time

import yaml

from .common import FAILED, OK, ROOT, emit, inventory_path, progress, render, scratch
from .prosody import check_trees

HELP = "time per phase (merge, validate, render, Prosody parse) and per layer, as a table"
PHASES = ("merge", "validate", "render")
PHASE_TAG = "prosody_phase_"
# The timing callback runs next to the rollout summary ansible.cfg enables.
CALLBACKS = "prosody_rollout_summary,prosody_timing"


def add_arguments(parser):
    parser.add_argument("inventory", help="inventory folder, or the name of one in inventories/")


def _phase(task):
    tags = [tag[len(PHASE_TAG) :] for tag in task["tags"] if tag.startswith(PHASE_TAG)]
    return tags[0] if tags else None


def phase_seconds(timing):
    """{phase: wall seconds} over the tagged tasks; "other" is the rest of the run."""
    seconds = dict.fromkeys(PHASES, 0.0)
    for task in timing["tasks"]:
        phase = _phase(task)
        if phase in seconds:
            seconds[phase] += task["end"] - task["start"]
    seconds["other"] = timing["seconds"] - sum(seconds.values())
    return seconds


def _layer_directories():
    """{layer name: tree directory} from the layer catalogue (roles/prosody/vars/main.yml)."""
    catalogue = yaml.safe_load((ROOT / "roles" / "prosody" / "vars" / "main.yml").read_text())
    return {layer["name"]: layer["directory"] for layer in catalogue["prosody_layers"]}


def _part_of_tree(label, directories):
    """Where a loop item belongs: a layer's directory, domains/, firewall/, or a settings block."""
    if label in directories:
        return directories[label]
    parts = label.split("/")
    if parts[0] == "stack":
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else label


def layer_seconds(timing, hosts):
    """{part of the tree: {phase: seconds per host}} from the items of the merge and render tasks.

    Items are loop items, or for the render task the files it rendered.
    """
    directories = _layer_directories()
    table = {}
    for task in timing["tasks"]:
        phase = _phase(task)
        if phase not in ("merge", "render"):
            continue
        for item in task["items"]:
            # A no_log loop (the domain files hold secrets) hides its labels: name the task instead.
            label = item["label"] if item["label"] != "None" else task["name"].split(" : ")[-1]
            row = table.setdefault(_part_of_tree(label, directories), {})
            row[phase] = row.get(phase, 0.0) + item["seconds"] / max(hosts, 1)
    return table


def _table(phases, layers, parse, wall, hosts):
    lines = [f"{'phase':<22}{'seconds':>9}", f"{'ansible start-up':<22}{wall['startup']:>9.2f}"]
    lines += [f"{name:<22}{phases[name]:>9.2f}" for name in (*PHASES, "other")]
    lines.append(f"{'prosody parse':<22}{sum(parse.values()):>9.2f}  ({len(parse)} tree(s), check config)")
    lines.append(f"{'total':<22}{wall['total'] + sum(parse.values()):>9.2f}  ({hosts} host(s))")
    width = max(len(name) for name in layers) + 2 if layers else 22
    lines += ["", f"{'layer / part of the tree':<{width}}{'merge s/host':>13}{'render s/host':>14}"]
    for layer in sorted(layers):
        row = layers[layer]
        merge = f"{row['merge']:.3f}" if "merge" in row else "-"
        render_time = f"{row['render']:.3f}" if "render" in row else "-"
        lines.append(f"{layer:<{width}}{merge:>13}{render_time:>14}")
    return "\n".join(lines)


def run(args):
    inventory = inventory_path(args.inventory)
    with scratch("profile") as work:
        timing_file = work / "timing.json"
        progress(f"rendering {inventory.name} with timings")
        began = time.monotonic()
        problems = render(
            inventory,
            work / "trees",
            env={"ANSIBLE_CALLBACKS_ENABLED": CALLBACKS, "PROSODY_TIMING_JSON": str(timing_file)},
        )
        total = time.monotonic() - began
        if any(problems.values()):
            emit(args, "the inventory does not build: run prosody-stack validate", {"problems": problems})
            return FAILED
        timing = json.loads(timing_file.read_text())
        hosts = sorted(problems)
        parse = {host: result["seconds"] for host, result in check_trees(work / "trees", hosts).items()}
    phases = phase_seconds(timing)
    layers = layer_seconds(timing, len(hosts))
    wall = {"total": total, "startup": total - timing["seconds"]}
    data = {"hosts": hosts, "wall": wall, "phases": phases, "layers": layers, "prosody_parse": parse}
    emit(args, _table(phases, layers, parse, wall, len(hosts)), data)
    return OK
