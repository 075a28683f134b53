"""Part 1: controller-side render of the whole stack for N hosts, against the plain Jinja2 floor.

render.yml's wall time (build: merge, validation, render; then writing
every tree) for N production-like hosts, against the time plain Jinja2 needs
to render the same templates with the same variables in one process
(suite/floor.py), which must produce the same bytes.
"""

import json
import shutil
from pathlib import Path

from .common import BENCH_DIR, ROOT, ansible_playbook, median, progress, ratio
from .floor import compare_with_rendered, render_hosts
from .inventories import render_host_name, render_inventory

FLOOR_REPS = 5  # the floor takes milliseconds: more repetitions cost nothing


def _dump_inputs(inventory, dump_dir):
    """Every host's render plan and template variables (benchmarks/playbooks/render-inputs.yml)."""
    ansible_playbook(
        BENCH_DIR / "playbooks" / "render-inputs.yml",
        inventory,
        "-e",
        f"bench_dump_dir={dump_dir}",
        what="render-inputs.yml",
    )
    return json.loads((Path(dump_dir) / "render-inputs.json").read_text())


def _time_render_yml(inventory, out_dir, size, reps):
    """Wall times of render.yml; the last repetition's trees stay in out_dir for the comparison."""
    seconds = []
    for rep in range(1, reps + 1):
        shutil.rmtree(out_dir, ignore_errors=True)
        took, _done = ansible_playbook(ROOT / "playbooks" / "render.yml", inventory, "-e", f"render_dir={out_dir}")
        seconds.append(took)
        progress(f"render: render.yml, {size} host(s), run {rep}/{reps} ... {took:.1f} s")
    return seconds


def _time_floor(dumps, out_dir, size):
    """Wall times of the Jinja2 floor for the first `size` hosts, checked against render.yml's trees."""
    hosts = {name: dumps[name] for name in (render_host_name(index) for index in range(1, size + 1))}
    seconds = []
    for _rep in range(FLOOR_REPS):
        took, trees = render_hosts(hosts)
        seconds.append(took)
    files = compare_with_rendered(trees, out_dir)
    progress(f"render: Jinja2 floor, {size} host(s) ... {median(seconds) * 1000:.0f} ms, {files} files identical")
    return seconds, files


def run_part(workdir, private_dir, sizes, reps):
    """{size: figures}; reps: {size: repetitions}.  The dump (secrets) goes to private_dir, trees to workdir."""
    workdir = Path(workdir)
    inventories = {size: render_inventory(workdir / f"inventory-{size}", size) for size in sizes}
    largest = max(sizes)
    progress(f"render: dumping render plans and variables of {largest} hosts (not timed) ...")
    # Host k is the same in every inventory size, so the largest one's dump serves every size.
    private_dir.mkdir(mode=0o700)
    dumps = _dump_inputs(inventories[largest], private_dir)
    results = {}
    for size in sizes:
        out_dir = workdir / f"rendered-{size}"
        render_seconds = _time_render_yml(inventories[size], out_dir, size, reps[size])
        floor_seconds, files = _time_floor(dumps, out_dir, size)
        shutil.rmtree(out_dir, ignore_errors=True)  # the trees hold the production vault's secrets
        results[size] = {
            "render": render_seconds,
            "render_median": median(render_seconds),
            "floor": floor_seconds,
            "floor_median": median(floor_seconds),
            "files_compared": files,
            "ratio": ratio(median(render_seconds), median(floor_seconds)),
        }
    return results
