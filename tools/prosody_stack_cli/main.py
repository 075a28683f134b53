"""prosody-stack: validate, render, diff, explain and profile an inventory without touching any host unless asked;
test one layer alone; draw the dependency graph between features.

Exit codes:
  0  success (diff: no differences)
  1  the inventory failed a check (diff: the trees differ; explain: no
     such option, domain or host; layer-test: a layer's tree failed)
  2  wrong usage (unknown subcommand, option or layer)
  3  the tool could not run: not set up (run `make setup`), no such
     inventory, podman, git or Graphviz failed, an inventory to diff does
     not build

Output is plain text on stdout, JSON with --json; progress goes to stderr.
"""

import argparse
import sys

from . import deps, diff, explain, layer_test, profile, render, validate
from .common import CANNOT_RUN, CannotRun

SUBCOMMANDS = {
    "validate": validate,
    "render": render,
    "diff": diff,
    "explain": explain,
    "profile": profile,
    "layer-test": layer_test,
    "deps": deps,
}


def parser():
    top = argparse.ArgumentParser(
        prog="prosody-stack",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, module in SUBCOMMANDS.items():
        sub = commands.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            epilog=__doc__.split("\n\n", 1)[1],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        module.add_arguments(sub)
        sub.set_defaults(module=module)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.module.run(args)
    except CannotRun as error:
        print(f"prosody-stack {args.command}: {error}", file=sys.stderr)
        return CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
