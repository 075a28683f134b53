"""validate: schema, rules and policies for every host, then real Prosody's strict check of each tree."""

from .common import FAILED, OK, emit, inventory_path, progress, render, scratch
from .prosody import check_trees

HELP = "check every host: schemas, rules, policies, then prosodyctl check config on its rendered tree"


def add_arguments(parser):
    parser.add_argument("inventory", help="inventory folder, or the name of one in inventories/")


def run(args):
    inventory = inventory_path(args.inventory)
    with scratch("validate") as work:
        trees = work / "trees"
        progress(f"building {inventory.name}: merge, schemas, rules, policies, render")
        problems = render(inventory, trees)
        built = sorted(host for host, found in problems.items() if not found and (trees / host).is_dir())
        checked = check_trees(trees, built) if built else {}
        findings = {host: result["findings"] for host, result in checked.items()}
    results = [
        {
            "host": host,
            "ok": not problems[host] and host in findings and not findings[host],
            "build": problems[host],
            "prosody": findings.get(host),
        }
        for host in sorted(problems)
    ]
    lines = []
    for result in results:
        if result["ok"]:
            lines.append(f"ok    {result['host']}: schemas, rules, policies, prosodyctl check config")
        elif result["prosody"] is None and not result["build"]:
            lines.append(f"SKIP  {result['host']}: not checked: the build stops for every host when one fails")
        else:
            step = "build" if result["build"] else "prosodyctl check config"
            lines.append(f"FAIL  {result['host']}: {step}")
            lines.extend(f"        {problem}" for problem in result["build"] or result["prosody"])
    failed = sum(not result["ok"] for result in results)
    lines.append(f"{len(results) - failed} of {len(results)} hosts valid")
    emit(args, "\n".join(lines), {"inventory": str(inventory), "hosts": results, "ok": not failed})
    return FAILED if failed else OK
