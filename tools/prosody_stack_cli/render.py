"""render: every host's tree, written locally as it would be on the server."""

from pathlib import Path

from .common import FAILED, OK, emit, inventory_path, progress, render

HELP = "render every host's tree into a local folder (no host is contacted)"


def add_arguments(parser):
    parser.add_argument("inventory", help="inventory folder, or the name of one in inventories/")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder to write <host>/ trees into")


def run(args):
    inventory = inventory_path(args.inventory)
    output = args.output.resolve()
    progress(f"rendering {inventory.name} into {output}")
    problems = render(inventory, output)
    failed = {host: found for host, found in problems.items() if found}
    written = sorted(str(path) for path in output.glob("*/prosody.cfg.lua")) if not failed else []
    lines = [f"wrote {path}" for path in written] or ["nothing written:"]
    lines += [f"  {host}: {problem}" for host, found in sorted(failed.items()) for problem in found]
    emit(args, "\n".join(lines), {"written": written, "problems": failed})
    return FAILED if failed else OK
