"""Parts 2 and 3: converging fresh hosts over SSH, then a no-op re-run.

Part 2 (one host): our site.yml against the per-file baseline
(benchmarks/baseline/site.yml) on a fresh container each repetition, with
Ansible's linear strategy and, if it runs on this ansible-core, Mitogen.
Part 3 (fleet): our site.yml on 1, 2, 4, 8 fresh hosts at once.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

from .common import BENCH_DIR, ROOT, VENV_BIN, BenchmarkError, ansible_playbook, attempt, median, progress, ratio
from .containers import ADDRESSES, host_name
from .inventories import baseline_inventory, converge_inventory

OURS, BASELINE = "ours", "baseline"
PLAYBOOKS = {OURS: ROOT / "site.yml", BASELINE: BENCH_DIR / "baseline" / "site.yml"}
BASELINE_CONFIG_DIR = "/etc/prosody"  # where the baseline writes the tree (benchmarks/baseline/site.yml)


def changed_count(output):
    """Sum of changed=N over the PLAY RECAP lines of ansible-playbook's output."""
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    return sum(int(word.split("=", 1)[1]) for word in recap.split() if word.startswith("changed="))


def mitogen_environment():
    """(environment for ansible-playbook, None) with Mitogen's linear strategy, or (None, why not)."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None:
        return None, "mitogen is not installed (pip install mitogen; make bench installs it)"
    strategies = Path(spec.origin).parent / "plugins" / "strategy"
    env = {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": str(strategies)}
    # A playbook of one task on the controller shows whether Mitogen loads on this ansible-core at all.
    probe = attempt([VENV_BIN / "ansible-playbook", BENCH_DIR / "playbooks" / "mitogen-probe.yml"], env=env)
    if probe.returncode != 0:
        return None, _failure_summary(probe.stdout + probe.stderr)
    return env, None


def _failure_summary(output):
    """The lines that say why a run failed (Ansible's ERROR/fatal lines, else the last lines)."""
    lines = [line for line in output.splitlines() if line.strip()]
    reasons = [line.strip() for line in lines if "ERROR" in line or "fatal:" in line or "Traceback" in line]
    return " / ".join((reasons or lines[-5:])[:6])[:1500]


class SingleHostConverge:
    """Part 2: ours vs the per-file baseline on one fresh host, full converge and no-op re-run."""

    def __init__(self, hosts, workdir):
        self.hosts, self.workdir = hosts, Path(workdir)
        self.address = ADDRESSES[0]
        self.inventories = {}
        self.tree = None

    def prepare(self, dump_dir):
        """Our inventory, the build's dump of its host, the baseline's inventory fed with that dump."""
        ours = converge_inventory(self.workdir / "inventory-ours", [self.address], self.hosts.ssh_dir)
        ansible_playbook(
            BENCH_DIR / "playbooks" / "render-inputs.yml",
            ours,
            "-e",
            f"bench_dump_dir={dump_dir}",
            what="render-inputs.yml (baseline variables)",
        )
        dump = json.loads((Path(dump_dir) / "render-inputs.json").read_text())[host_name(self.address)]
        self.tree = {entry["path"]: entry["content"] for entry in dump["tree"]}
        baseline = baseline_inventory(self.workdir / "inventory-baseline", {self.address: dump}, self.hosts.ssh_dir)
        self.inventories = {OURS: ours, BASELINE: baseline}

    def check_baseline_files(self):
        """The baseline wrote every file of the build's tree (release.json aside) with the same bytes."""
        paths = sorted(path for path in self.tree if path != "release.json")
        done = self.hosts.containers.exec(
            self.address, "sha256sum", *[f"{BASELINE_CONFIG_DIR}/{path}" for path in paths]
        )
        written = dict(reversed(line.split(None, 1)) for line in done.stdout.splitlines())
        differing = [
            path
            for path in paths
            if written.get(f"{BASELINE_CONFIG_DIR}/{path}") != hashlib.sha256(self.tree[path].encode()).hexdigest()
        ]
        if differing:
            raise BenchmarkError(
                f"the baseline wrote other content than the build rendered: {', '.join(differing[:5])}"
            )

    def measure(self, variant, label, env, run_number):
        """(full seconds, no-op seconds, changed in the no-op run) on a fresh host; run_number: (n, of)."""
        rep, reps = run_number
        self.hosts.fresh([self.address])
        # A new ControlPath directory: no SSH master connection survives from an earlier container.
        run_env = {**(env or {}), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / f"cp-{variant}-{label}-{rep}")}
        timings = []
        for phase in ("full", "no-op"):
            seconds, done = ansible_playbook(
                PLAYBOOKS[variant], self.inventories[variant], env=run_env, what=f"{variant} {phase} converge ({label})"
            )
            timings.append((seconds, changed_count(done.stdout)))
            host = "fresh host" if phase == "full" else "no-op re-run"
            progress(f"converge: {variant} ({label}), {host}, run {rep}/{reps} ... {seconds:.1f} s")
            if phase == "full":
                self.hosts.check_converged(self.address)
                if variant == BASELINE:
                    self.check_baseline_files()
        self.hosts.remove([self.address])
        return timings[0][0], timings[1][0], timings[1][1]

    def run_strategy(self, label, env, reps):
        """{variant: {full: [...], noop: [...], noop_changed: [...]}} for one strategy, variants interleaved."""
        figures = {variant: {"full": [], "noop": [], "noop_changed": []} for variant in PLAYBOOKS}
        for rep in range(1, reps + 1):
            for variant in PLAYBOOKS:
                full, noop, changed = self.measure(variant, label, env, (rep, reps))
                figures[variant]["full"].append(full)
                figures[variant]["noop"].append(noop)
                figures[variant]["noop_changed"].append(changed)
        return _with_medians(figures)


def _with_medians(figures):
    for variant_figures in figures.values():
        variant_figures["full_median"] = median(variant_figures["full"])
        variant_figures["noop_median"] = median(variant_figures["noop"])
    return {
        **figures,
        "full_speedup": ratio(figures[BASELINE]["full_median"], figures[OURS]["full_median"]),
        "noop_speedup": ratio(figures[BASELINE]["noop_median"], figures[OURS]["noop_median"]),
    }


def run_single_host(hosts, workdir, dump_dir, reps):
    """Part 2 results: linear strategy, and Mitogen or the reason it did not run; reps: {strategy: n}."""
    part = SingleHostConverge(hosts, workdir)
    progress("converge: building the host once to feed the baseline its merged variables ...")
    part.prepare(dump_dir)
    results = {"linear": part.run_strategy("linear", None, reps["linear"])}
    env, why_not = mitogen_environment()
    if env is None:
        progress(f"converge: Mitogen does not run here: {why_not}")
        results["mitogen"] = {"error": why_not}
        return results
    try:
        results["mitogen"] = part.run_strategy("mitogen", env, reps["mitogen"])
    except BenchmarkError as error:
        hosts.remove([part.address])
        progress(f"converge: a run with Mitogen failed: {error}")
        results["mitogen"] = {"error": _failure_summary(str(error))}
    return results


def _fleet_run(hosts, workdir, size, rep, reps):
    """(full seconds, no-op seconds, changed in the no-op run) of site.yml on `size` fresh hosts."""
    addresses = ADDRESSES[:size]
    inventory = converge_inventory(Path(workdir) / f"inventory-{size}-{rep}", addresses, hosts.ssh_dir)
    progress(f"fleet: {size} fresh host(s), run {rep}/{reps}: starting containers ...")
    hosts.fresh(addresses)
    env = {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(Path(workdir) / f"cp-{size}-{rep}")}
    timings = []
    for phase in ("full converge", "no-op re-run"):
        seconds, done = ansible_playbook(PLAYBOOKS[OURS], inventory, env=env, what=f"fleet of {size}: {phase}")
        timings.append((seconds, changed_count(done.stdout)))
        progress(f"fleet: {size} host(s), {phase}, run {rep}/{reps} ... {seconds:.1f} s")
        if phase == "full converge":
            for address in addresses:
                hosts.check_converged(address)
    hosts.remove(addresses)
    return timings[0][0], timings[1][0], timings[1][1]


def _fleet_figures(size, full, noop, changed, source):
    return {
        "full": full,
        "noop": noop,
        "noop_changed": changed,
        "source": source,
        "full_median": median(full),
        "noop_median": median(noop),
        "full_per_host": median(full) / size,
        "noop_per_host": median(noop) / size,
    }


def run_fleet(hosts, workdir, sizes, reps, single_host=None):
    """Part 3 results: {size: figures}.

    single_host: part 2's figures of our site.yml with the linear strategy,
    when part 2 ran: the very same measurement as a fleet of one host (same
    inventory, image and playbook, fresh host), so it is not run again.
    """
    results = {}
    for size in sizes:
        if size == 1 and single_host:
            ours = single_host[OURS]
            results[size] = _fleet_figures(size, ours["full"], ours["noop"], ours["noop_changed"], "part 2")
            continue
        runs = [_fleet_run(hosts, workdir, size, rep, reps) for rep in range(1, reps + 1)]
        full, noop, changed = (list(values) for values in zip(*runs, strict=True))
        results[size] = _fleet_figures(size, full, noop, changed, "measured")
    return results
