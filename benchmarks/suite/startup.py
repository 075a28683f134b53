"""Part 4: Prosody start-up and `prosodyctl check config` with the 32-file tree against one file.

The layered tree is what render.yml writes for a development-like host.  The
single file holds the same settings: the loader's own lines (its Include
lines left out), then every included file that stays in the global section
(layers, environment), then the files that open a VirtualHost or Component
section last (they would capture every option after them).  Prosody's own
parser (tools/prosody-config-dump.lua) must read the same sections from
both, or the part fails.  The timing runs inside each container
(benchmarks/guest/startup_timer.py) to keep `podman exec` out of it.
"""

import json
import re
import shutil
from pathlib import Path

from .common import BENCH_DIR, ROOT, BenchmarkError, ansible_playbook, median, progress, ratio
from .containers import IMAGES, container_name, host_name
from .inventories import converge_inventory

HOSTS = {"0.12": "127.0.0.81", "13.0": "127.0.0.82"}
SINGLE_FILE = "prosody-single.cfg.lua"
INCLUDE = re.compile(r'^Include\s+"(?P<path>[^"\\]+)"\s*$')
OPENS_SECTION = re.compile(r"^\s*(VirtualHost|Component)\s", re.MULTILINE)
GUEST = "/bench"


def single_file_config(tree):
    """Write tree/prosody-single.cfg.lua from the loader and the files it includes; return its path."""
    tree = Path(tree)
    own_lines, included = [], []
    for line in (tree / "prosody.cfg.lua").read_text().splitlines(keepends=True):
        match = INCLUDE.match(line)
        if match:
            included.append(match["path"])
        elif line.lstrip().startswith("Include"):
            raise BenchmarkError(f"{tree}/prosody.cfg.lua: cannot follow {line.strip()!r}")
        else:
            own_lines.append(line)
    contents = {path: (tree / path).read_text() for path in included}
    global_files = [path for path in included if not OPENS_SECTION.search(contents[path])]
    section_files = [path for path in included if OPENS_SECTION.search(contents[path])]
    parts = ["".join(own_lines)]
    parts += [f"\n-- ===== {path} =====\n{contents[path]}" for path in global_files + section_files]
    (tree / SINGLE_FILE).write_text("".join(parts))
    return tree / SINGLE_FILE


def render_trees(workdir):
    """Render one development-like host per series; {series: tree directory}, readable by Prosody."""
    inventory = converge_inventory(
        workdir / "inventory", list(HOSTS.values()), ssh_dir=None, series=_series_by_address()
    )
    render_dir = workdir / "trees"
    ansible_playbook(ROOT / "playbooks" / "render.yml", inventory, "-e", f"render_dir={render_dir}")
    # Prosody reads the trees as its own user inside the containers (they were written 0640/0750).
    for path in [render_dir, *render_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return render_dir, {series: render_dir / host_name(address) for series, address in HOSTS.items()}


def _series_by_address():
    return {address: series for series, address in HOSTS.items()}


def _client_listener(tree):
    """(address, port) of the first client listener, from the release description the build wrote."""
    listener = json.loads((Path(tree) / "release.json").read_text())["client_listeners"][0]
    address, port = listener.rsplit(":", 1)
    return address, int(port)


def _parsed_sections(containers, address, config):
    """Prosody's own reading of a configuration: its sections, as JSON-able data."""
    done = containers.exec(address, "lua5.4", f"{GUEST}/tools/prosody-config-dump.lua", config)
    return json.loads(done.stdout)["sections"]


def prove_same_settings(containers, address, layered, single):
    if _parsed_sections(containers, address, layered) != _parsed_sections(containers, address, single):
        raise BenchmarkError(f"{single} does not hold the same settings as {layered} (prosody-config-dump.lua)")


def _measure_series(containers, series, tree, render_dir, runs):
    address = HOSTS[series]
    name = container_name(address)
    containers.start(
        address,
        IMAGES[series],
        volumes={render_dir: f"{GUEST}/trees", ROOT / "tools": f"{GUEST}/tools", BENCH_DIR / "guest": f"{GUEST}/guest"},
    )
    guest_tree = f"{GUEST}/trees/{Path(tree).name}"
    layered, single = f"{guest_tree}/prosody.cfg.lua", f"{guest_tree}/{SINGLE_FILE}"
    prove_same_settings(containers, address, layered, single)
    listen_address, port = _client_listener(tree)
    progress(f"startup: Prosody {series} ({name}), {runs} start-ups and checks of each config, alternating ...")
    done = containers.exec(
        address,
        "python3",
        f"{GUEST}/guest/startup_timer.py",
        "--runs",
        str(runs),
        "--address",
        listen_address,
        "--port",
        str(port),
        layered,
        single,
    )
    times = json.loads(done.stdout)
    containers.remove(address)
    if times[layered]["check_exit"] != times[single]["check_exit"]:
        raise BenchmarkError(f"Prosody {series}: check config answers differently for the layered and the single file")
    return _summary(series, times[layered], times[single])


def _summary(series, layered, single):
    figures = {"series": series, "check_exit": layered["check_exit"], "layered": layered, "single": single}
    for measure in ("startup", "check"):
        figures[f"{measure}_layered"] = median(layered[measure])
        figures[f"{measure}_single"] = median(single[measure])
        figures[f"{measure}_ratio"] = ratio(figures[f"{measure}_layered"], figures[f"{measure}_single"])
    progress(
        f"startup: Prosody {series}: start-up {figures['startup_layered'] * 1000:.0f} ms layered, "
        f"{figures['startup_single'] * 1000:.0f} ms single (x{figures['startup_ratio']:.2f}); check config "
        f"{figures['check_layered'] * 1000:.0f} / {figures['check_single'] * 1000:.0f} ms"
    )
    return figures


def run_part(containers, workdir, runs):
    """{series: figures} for Prosody 0.12 and 13.0."""
    workdir.mkdir(parents=True, exist_ok=True)
    progress("startup: rendering the layered trees and building the single files ...")
    render_dir, trees = render_trees(workdir)
    for tree in trees.values():
        single_file_config(tree).chmod(0o644)
    try:
        return {series: _measure_series(containers, series, tree, render_dir, runs) for series, tree in trees.items()}
    finally:
        shutil.rmtree(render_dir, ignore_errors=True)  # the trees hold the development vault's secrets
