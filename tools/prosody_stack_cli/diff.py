"""diff: what would change, as a unified diff of rendered trees (secrets masked).

Three comparisons: two inventories; an inventory at a git revision (the
whole checkout at that revision renders it) and now (or a second
revision); an inventory's rendered tree and what is live on one host,
fetched read-only over the inventory's normal connection.
"""

import difflib
import subprocess

from .common import (
    ROOT,
    CannotRun,
    ansible,
    emit,
    inventory_path,
    mask_secrets,
    progress,
    render,
    scratch,
)

HELP = "unified diff between two inventories, two git revisions, or a rendered tree and a live host"
# release.json holds option fingerprints for reload-or-restart decisions, not configuration.
IGNORED = {"release.json"}
SAME, DIFFERENT = 0, 1


def add_arguments(parser):
    parser.add_argument("inventory", help="inventory folder, or the name of one in inventories/")
    parser.add_argument("other", nargs="?", help="a second inventory to compare with")
    parser.add_argument(
        "--rev", action="append", default=[], metavar="REV", help="git revision (once: REV against now; twice: A B)"
    )
    parser.add_argument("--live", metavar="HOST", help="compare HOST's rendered tree with its live release")


def _built(inventory, dest, root=ROOT, what=None):
    progress(f"rendering {what or inventory.name}")
    problems = render(inventory, dest, root=root)
    broken = {host: found for host, found in problems.items() if found}
    if broken:
        details = "; ".join(f"{host}: {found[0]}" for host, found in sorted(broken.items()))
        raise CannotRun(f"{what or inventory.name} does not build: {details}")
    return sorted(path.name for path in dest.iterdir() if path.is_dir())


def _files(tree):
    return {
        str(path.relative_to(tree)): path
        for path in sorted(tree.rglob("*"))
        if path.is_file() and path.name not in IGNORED
    }


def tree_diff(old_tree, new_tree, old_label, new_label):
    """Unified diff lines between two trees, secrets masked."""
    old, new = _files(old_tree), _files(new_tree)
    lines = []
    for name in sorted(set(old) | set(new)):
        before = mask_secrets(old[name].read_text()).splitlines(keepends=True) if name in old else []
        after = mask_secrets(new[name].read_text()).splitlines(keepends=True) if name in new else []
        lines += difflib.unified_diff(before, after, f"{old_label}/{name}", f"{new_label}/{name}")
    return lines


def _pairs(old_hosts, new_hosts):
    common = sorted(set(old_hosts) & set(new_hosts))
    if common:
        return [(host, host) for host in common]
    if len(old_hosts) == len(new_hosts) == 1:
        return [(old_hosts[0], new_hosts[0])]
    raise CannotRun(
        f"no host in common ({', '.join(old_hosts)} / {', '.join(new_hosts)}): compare inventories of the same hosts, "
        "or of one host each"
    )


def _checkout(revision, dest):
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), revision],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CannotRun(f"git revision {revision!r}: {done.stderr.strip()}")


def _remove_checkout(dest):
    command = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(dest)]
    subprocess.run(command, capture_output=True, check=False)


def _at_revision(inventory, revision, work, name):
    """Render the inventory as the checkout at `revision` would; its trees' folder."""
    checkout = work / f"checkout-{name}"
    _checkout(revision, checkout)
    try:
        relative = inventory.relative_to(ROOT)
    except ValueError as error:
        _remove_checkout(checkout)
        raise CannotRun(f"--rev needs an inventory inside this checkout, not {inventory}") from error
    try:
        _built(checkout / relative, work / name, root=checkout, what=f"{relative} at {revision}")
    finally:
        _remove_checkout(checkout)
    return work / name


def _live(inventory, host, work):
    progress(f"fetching the live release of {host} (read-only)")
    done = ansible(
        "ansible-playbook",
        "playbooks/fetch-live.yml",
        "-i",
        str(inventory),
        "--limit",
        host,
        "-e",
        f"fetch_dir={work / 'live'}",
    )
    if done.returncode != 0:
        raise CannotRun(f"could not fetch the live release of {host}:\n{done.stdout[-2000:]}{done.stderr[-1000:]}")
    return work / "live"


def _comparisons(args, inventory, work):
    """[(old tree, new tree, old label, new label)] for the comparison asked for."""
    if args.live:
        _built(inventory, work / "rendered")
        if not (work / "rendered" / args.live).is_dir():
            raise CannotRun(f"{args.live} is not a Prosody host of {inventory.name}")
        live = _live(inventory, args.live, work)
        return [(live, work / "rendered" / args.live, f"live/{args.live}", f"rendered/{args.live}")]
    if args.rev:
        if len(args.rev) > 2:
            raise CannotRun("--rev takes one revision (against now) or two")
        old = _at_revision(inventory, args.rev[0], work, "old")
        if len(args.rev) == 2:
            new, new_name = _at_revision(inventory, args.rev[1], work, "new"), args.rev[1]
        else:
            new, new_name = work / "new", "now"
            _built(inventory, new)
        hosts = _pairs(sorted(p.name for p in old.iterdir()), sorted(p.name for p in new.iterdir()))
        return [(old / a, new / b, f"{args.rev[0]}/{a}", f"{new_name}/{b}") for a, b in hosts]
    if not args.other:
        raise CannotRun("say what to compare with: a second inventory, --rev REV or --live HOST")
    other = inventory_path(args.other)
    old_hosts = _built(inventory, work / "a")
    new_hosts = _built(other, work / "b")
    return [
        (work / "a" / a, work / "b" / b, f"{inventory.name}/{a}", f"{other.name}/{b}")
        for a, b in _pairs(old_hosts, new_hosts)
    ]


def run(args):
    inventory = inventory_path(args.inventory)
    with scratch("diff") as work:
        results = []
        for old, new, old_label, new_label in _comparisons(args, inventory, work):
            results.append({"old": old_label, "new": new_label, "diff": tree_diff(old, new, old_label, new_label)})
    text = "".join(line for result in results for line in result["diff"])
    changed = [result for result in results if result["diff"]]
    summary = f"{len(changed)} of {len(results)} tree(s) differ" if changed else "no differences"
    emit(args, text + summary, {"comparisons": [{**r, "diff": "".join(r["diff"])} for r in results]})
    return DIFFERENT if changed else SAME
