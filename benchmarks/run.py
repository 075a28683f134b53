"""prosody-stack benchmark suite: `make bench` runs this (see benchmarks/README.md).

  .venv/bin/python benchmarks/run.py            # the default run (about 25 minutes), results in benchmarks/results/
  .venv/bin/python benchmarks/run.py --quick    # fewer repetitions and sizes, results in benchmarks/results/dev/
  .venv/bin/python benchmarks/run.py --only startup --only render   # some parts only (results/dev/)

Parts: render (controller-side render against the Jinja2 floor), converge
(one host over SSH: ours against the per-file baseline, linear and Mitogen),
fleet (1, 2, 4, 8 hosts), startup (Prosody with the 32-file tree against one
file).  Every container the run starts is removed at the end, also on
Ctrl-C or a failure.
"""

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from suite import converge, machine, render, results, startup
from suite.common import BenchmarkError, attempt, progress
from suite.containers import ADDRESSES, IMAGES, SSH_PORT, Containers
from suite.hosts import HostFactory, make_ssh_key

PARTS = ("render", "converge", "fleet", "startup")
# Repetitions and sizes: the default run must stay under 25 minutes on a 2-core machine.
SETTINGS = {
    "default": {
        "render_sizes": [1, 10, 100],
        "render_reps": 3,
        "render_reps_largest": 1,
        "converge_reps": 3,
        "mitogen_reps": 2,
        "fleet_sizes": [1, 2, 4, 8],
        "fleet_reps": 1,
        "startup_runs": 15,
    },
    "quick": {
        "render_sizes": [1, 10],
        "render_reps": 1,
        "render_reps_largest": 1,
        "converge_reps": 1,
        "mitogen_reps": 1,
        "fleet_sizes": [1, 2],
        "fleet_reps": 1,
        "startup_runs": 5,
    },
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, render 1 and 10 hosts, fleet 1 and 2")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    return parser.parse_args()


def check_prerequisites():
    """The images exist and no one else uses the benchmark's addresses."""
    for name in IMAGES.values():
        if attempt(["podman", "image", "exists", name]).returncode:
            raise BenchmarkError(f"image {name} is missing: run `make setup` (molecule/images/build.sh)")
    busy = [f"{address}:{port}" for address in ADDRESSES for port in (SSH_PORT, 5222) if _listening(address, port)]
    if busy:
        raise BenchmarkError(f"something already listens on {', '.join(busy)}: another benchmark run?")


def _listening(address, port):
    import socket  # noqa: PLC0415 - only needed for this check

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


class Run:
    """One run's shared state: its containers, work directory, settings, and the figures so far."""

    def __init__(self, containers, workdir, settings):
        self.containers, self.workdir, self.settings = containers, workdir, settings
        self.private_dir = workdir / "private"  # dumps with vaulted secrets (workdir itself is 0700 too)
        self.private_dir.mkdir(mode=0o700)
        self.measured, self.loads, self.minutes = {}, {}, {}
        self.hosts = None

    def host_factory(self):
        """Fresh SSH hosts from the project's bookworm image (Prosody 0.12)."""
        if self.hosts is None:
            self.hosts = HostFactory(self.containers, make_ssh_key(self.workdir / "ssh"), IMAGES["0.12"])
        return self.hosts

    def render(self):
        sizes = self.settings["render_sizes"]
        reps = {size: self.settings["render_reps_largest" if size == max(sizes) else "render_reps"] for size in sizes}
        return render.run_part(self.workdir / "render", self.private_dir / "render", sizes, reps)

    def converge(self):
        dump_dir = self.private_dir / "converge"
        dump_dir.mkdir(mode=0o700)
        reps = {"linear": self.settings["converge_reps"], "mitogen": self.settings["mitogen_reps"]}
        return converge.run_single_host(self.host_factory(), self.workdir / "converge", dump_dir, reps)

    def fleet(self):
        single_host = (self.measured.get("converge") or {}).get("linear")
        sizes, reps = self.settings["fleet_sizes"], self.settings["fleet_reps"]
        return converge.run_fleet(self.host_factory(), self.workdir / "fleet", sizes, reps, single_host)

    def startup(self):
        return startup.run_part(self.containers, self.workdir / "startup", self.settings["startup_runs"])

    def part(self, name):
        """Run one part, with the load average when it started and how long it took."""
        self.loads[name] = machine.load_average()
        progress(f"== part {name} (load average {self.loads[name]}) ==")
        began = time.monotonic()
        self.measured[name] = getattr(self, name)()
        self.minutes[name] = round((time.monotonic() - began) / 60, 1)


def report_of(run_state, mode, began, load_start, started):
    report = {
        "machine": machine.describe(),
        "run": {
            "started": started,
            "mode": mode,
            "duration_s": round(time.monotonic() - began, 1),
            "minutes_per_part": run_state.minutes,
            "load_start": load_start,
            "load_end": machine.load_average(),
            "load_at_part_start": run_state.loads,
            "repetitions": run_state.settings,
        },
        "parts": run_state.measured,
    }
    report["targets"] = results.evaluate_targets(run_state.measured, report["machine"]["ansible_forks"])
    return report


def main():
    args = parse_args()
    mode = "quick" if args.quick else "default"
    settings = SETTINGS[mode]
    parts = [part for part in PARTS if not args.only or part in args.only]
    # Ctrl-C and kill (SIGTERM) both end in the finally below, which removes the containers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    containers = Containers()
    began, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M %Z")
    load_start = machine.load_average()
    try:
        check_prerequisites()
        progress(f"{mode} run of {', '.join(parts)}")
        with tempfile.TemporaryDirectory(prefix="prosody-stack-bench-") as workdir:
            run_state = Run(containers, Path(workdir), settings)
            for part in parts:
                run_state.part(part)
    except BenchmarkError as error:
        print(f"[bench] FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    finally:
        containers.remove_all()
    report = report_of(run_state, mode, began, load_start, started)
    out_dir = results.results_dir(args.quick, args.only)
    print()
    print(results.write(report, out_dir))
    progress(
        f"results in {out_dir}/ (results.md, results.json, results.png); {report['run']['duration_s'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
