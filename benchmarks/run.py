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

from suite import converge, image, machine, render, results, startup
from suite.common import BenchmarkError, attempt, progress
from suite.containers import ADDRESSES, IMAGES, SSH_PORT, Containers
from suite.hosts import HostFactory, make_ssh_key

PARTS = ("render", "converge", "fleet", "startup")
# Repetitions and sizes: the default run must stay under 25 minutes on a 2-core machine.
SETTINGS = {
    "default": {
        "render_sizes": [1, 10, 100],
        "render_reps": 3,
        "render_reps_largest": 2,
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


def run_parts(parts, settings, containers, workdir):
    """{part: results} of every part asked for, in the order of PARTS."""
    private_dir = workdir / "private"  # dumps with vaulted secrets; workdir itself is 0700
    private_dir.mkdir(mode=0o700)
    hosts = None
    if {"converge", "fleet"} & set(parts):
        hosts = HostFactory(containers, make_ssh_key(workdir / "ssh"), image.ensure_bench_image())
    measured, loads = {}, {}
    for part in parts:
        loads[part] = machine.load_average()
        progress(f"== part {part} (load average {loads[part]}) ==")
        if part == "render":
            reps = {
                size: settings["render_reps_largest"]
                if size == max(settings["render_sizes"])
                else settings["render_reps"]
                for size in settings["render_sizes"]
            }
            measured[part] = render.run_part(workdir / "render", private_dir / "render", settings["render_sizes"], reps)
        elif part == "converge":
            dump_dir = private_dir / "converge"
            dump_dir.mkdir(mode=0o700)
            reps = {"linear": settings["converge_reps"], "mitogen": settings["mitogen_reps"]}
            measured[part] = converge.run_single_host(hosts, workdir / "converge", dump_dir, reps)
        elif part == "fleet":
            measured[part] = converge.run_fleet(
                hosts, workdir / "fleet", settings["fleet_sizes"], settings["fleet_reps"]
            )
        else:
            measured[part] = startup.run_part(containers, workdir / "startup", settings["startup_runs"])
    return measured, loads


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
        progress(f"{mode} run of {', '.join(parts)}; machine: {machine.describe()['cpu_model']}")
        with tempfile.TemporaryDirectory(prefix="prosody-stack-bench-") as workdir:
            measured, loads = run_parts(parts, settings, containers, Path(workdir))
    except BenchmarkError as error:
        print(f"[bench] FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    finally:
        containers.remove_all()
    report = {
        "machine": machine.describe(),
        "run": {
            "started": started,
            "mode": mode,
            "duration_s": round(time.monotonic() - began, 1),
            "load_start": load_start,
            "load_end": machine.load_average(),
            "load_at_part_start": loads,
            "repetitions": settings,
        },
        "parts": measured,
    }
    report["targets"] = results.evaluate_targets(measured, report["machine"]["ansible_forks"])
    out_dir = results.results_dir(args.quick, args.only)
    print()
    print(results.write(report, out_dir))
    progress(
        f"results written to {out_dir.relative_to(Path.cwd()) if out_dir.is_relative_to(Path.cwd()) else out_dir}/"
        f" (results.md, results.json, results.png) in {report['run']['duration_s'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
