"""Targets, the results table (results.md), results.json and the plot (results.png)."""

import json
import math

from .common import BENCH_DIR

# The targets of the issue: (key, text).  Each is reported met / not met with its measured figure.
TARGET_NOOP_SPEEDUP = 5.0
TARGET_FULL_SPEEDUP = 3.0
TARGET_RENDER_RATIO = 10.0
TARGET_RENDER_HOSTS = 100
TARGET_STARTUP_RATIO = 1.10


def _fmt(value, digits=1, unit=""):
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _verdict(met):
    return "n/a" if met is None else ("**met**" if met else "**not met**")


def _target(name, measured, met):
    return {"target": name, "measured": measured, "met": met}


def evaluate_targets(parts, forks):
    """[{target, measured, met}] for every target whose part ran (met None: could not be measured)."""
    targets = []
    converge = (parts.get("converge") or {}).get("linear")
    if converge:
        noop, full = converge["noop_speedup"], converge["full_speedup"]
        targets.append(
            _target(
                f"no-op re-run on one host >= {TARGET_NOOP_SPEEDUP:g}x faster than the per-file baseline",
                f"{_fmt(noop, 2)}x",
                None if noop is None else noop >= TARGET_NOOP_SPEEDUP,
            )
        )
        targets.append(
            _target(
                f"full converge on one host >= {TARGET_FULL_SPEEDUP:g}x faster than the per-file baseline",
                f"{_fmt(full, 2)}x",
                None if full is None else full >= TARGET_FULL_SPEEDUP,
            )
        )
    render = (parts.get("render") or {}).get(TARGET_RENDER_HOSTS)
    if render:
        targets.append(
            _target(
                f"render for {TARGET_RENDER_HOSTS} hosts within {TARGET_RENDER_RATIO:g}x of the Jinja2-only floor",
                f"{_fmt(render['ratio'], 0)}x",
                render["ratio"] <= TARGET_RENDER_RATIO,
            )
        )
    targets += _fleet_targets(parts.get("fleet"), forks)
    for series, figures in (parts.get("startup") or {}).items():
        ratio = figures["startup_ratio"]
        targets.append(
            _target(
                f"Prosody {series}: layered start-up within {TARGET_STARTUP_RATIO - 1:.0%} of the single file",
                f"x{_fmt(ratio, 3)}",
                ratio <= TARGET_STARTUP_RATIO,
            )
        )
    return targets


def fleet_bound(size, forks):
    """Growth allowed by the target: Ansible works on `forks` hosts at a time, so time may grow with ceil(N / forks)."""
    return math.ceil(size / forks)


def _fleet_targets(fleet, forks):
    if not fleet or 1 not in fleet or len(fleet) < 2:
        return []
    targets = []
    for key, label in (("full_median", "full converge"), ("noop_median", "no-op re-run")):
        growths = {size: figures[key] / fleet[1][key] for size, figures in fleet.items()}
        worst = max(growths, key=lambda size: growths[size] / fleet_bound(size, forks))
        measured = ", ".join(f"{size} hosts x{growth:.2f}" for size, growth in sorted(growths.items()))
        met = all(growths[size] <= fleet_bound(size, forks) for size in growths)
        targets.append(
            _target(
                f"fleet {label} grows no worse than hosts / forks (time(N) <= time(1) x ceil(N / {forks} forks))",
                f"{measured} (worst: {worst} hosts)",
                met,
            )
        )
    return targets


def _render_table(render):
    lines = [
        "| hosts | render.yml (s) | Jinja2 floor (ms) | render.yml / floor | files compared (identical) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, figures in sorted(render.items()):
        lines.append(
            f"| {size} | {_fmt(figures['render_median'], 1)} | {_fmt(figures['floor_median'] * 1000, 0)} | "
            f"{_fmt(figures['ratio'], 0)}x | {figures['files_compared']} |"
        )
    return lines


def _converge_rows(label, figures):
    if "error" in figures:
        return [f"| {label} | - | - | - | - | did not run: {figures['error']} |"]
    rows = []
    for run, key in (("full converge, fresh host", "full"), ("no-op re-run", "noop")):
        note = ""
        if key == "noop":
            changed = {
                variant: ", ".join(map(str, figures[variant]["noop_changed"])) for variant in ("ours", "baseline")
            }
            note = f"tasks changed: ours {changed['ours']}; baseline {changed['baseline']}"
        rows.append(
            f"| {label} | {run} | {_fmt(figures['ours'][f'{key}_median'])} | "
            f"{_fmt(figures['baseline'][f'{key}_median'])} | {_fmt(figures[f'{key}_speedup'], 2)}x | {note} |"
        )
    return rows


def _converge_table(converge):
    lines = [
        "| strategy | run | ours (s) | per-file baseline (s) | baseline / ours | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    for label, figures in converge.items():
        lines += _converge_rows(label, figures)
    linear, mitogen = converge.get("linear"), converge.get("mitogen")
    if linear and mitogen and "error" not in mitogen:
        for key, run in (("full", "full converge"), ("noop", "no-op re-run")):
            gain = linear["ours"][f"{key}_median"] / mitogen["ours"][f"{key}_median"]
            lines.append(f"| Mitogen gain (ours) | {run} | | | {gain:.2f}x | linear / mitogen |")
    return lines


def _fleet_table(fleet, forks):
    lines = [
        "| hosts | full converge (s) | per host (s) | growth vs 1 host | no-op re-run (s) | per host (s) | "
        "growth vs 1 host | allowed growth (ceil(N/forks)) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    one = fleet.get(1)
    for size, figures in sorted(fleet.items()):
        cells = [f"{size} (part 2, ours linear)" if figures.get("source") == "part 2" else str(size)]
        for key in ("full", "noop"):
            growth = figures[f"{key}_median"] / one[f"{key}_median"] if one else None
            cells += [_fmt(figures[f"{key}_median"]), _fmt(figures[f"{key}_per_host"]), f"x{_fmt(growth, 2)}"]
        cells.append(f"x{fleet_bound(size, forks)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _startup_table(startup):
    lines = [
        "| Prosody | start-up layered (ms) | start-up single file (ms) | layered / single | "
        "check config layered (ms) | check config single (ms) | layered / single |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for series, figures in startup.items():
        cells = [series]
        for measure in ("startup", "check"):
            cells += [_fmt(figures[f"{measure}_layered"] * 1000, 0), _fmt(figures[f"{measure}_single"] * 1000, 0)]
            cells.append(f"x{_fmt(figures[f'{measure}_ratio'], 3)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _machine_lines(machine, run_info):
    prosody = ", ".join(f"{series}: {version}" for series, version in machine["prosody"].items())
    return [
        f"- CPU: {machine['cpu_model']}, {machine['cpu_cores']} cores; memory {machine['memory_gib']} GiB",
        f"- system: {machine['debian']}, kernel {machine['kernel']}, {machine['podman']}",
        f"- Python {machine['python']}, ansible-core {machine['ansible_core']}, Jinja2 {machine['jinja2']}, "
        f"mitogen {machine['mitogen'] or 'not installed'}; ansible.cfg forks={machine['ansible_forks']}",
        f"- Prosody (Debian packages in the images): {prosody}",
        f"- run: {run_info['started']}, {run_info['mode']} mode, {run_info['duration_s'] / 60:.1f} min; "
        f"load average (1, 5, 15 min) at start {run_info['load_start']}, at end {run_info['load_end']}",
        "- each part: "
        + "; ".join(
            f"{part} {run_info['minutes_per_part'][part]} min, load {loads[0]} when it started"
            for part, loads in run_info["load_at_part_start"].items()
        ),
        "- repetitions and sizes: " + ", ".join(f"{name} {value}" for name, value in run_info["repetitions"].items()),
    ]


def markdown(report):
    """results.md: machine, one table per part, targets."""
    parts, machine = report["parts"], report["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Produced by `make bench` (benchmarks/run.py); see benchmarks/README.md "
        "for what each figure measures.  Times are medians of the repetitions; every repetition is in results.json.",
        "",
        "## Machine",
        "",
        *_machine_lines(machine, report["run"]),
        "",
    ]
    sections = (
        ("render", "1. Controller-side render of the full stack", lambda part: _render_table(part)),
        ("converge", "2. One host over SSH: ours (site.yml) against the per-file baseline", _converge_table),
        (
            "fleet",
            "3. Fleet converge (site.yml, fresh hosts)",
            lambda part: _fleet_table(part, machine["ansible_forks"]),
        ),
        ("startup", "4. Prosody start-up and check config: 32-file tree against one file", _startup_table),
    )
    for key, title, table in sections:
        if key in parts:
            lines += [f"## {title}", "", *table(parts[key]), ""]
    lines += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {item['target']} | {item['measured']} | {_verdict(item['met'])} |" for item in report["targets"]]
    return "\n".join(lines) + "\n"


def write(report, out_dir):
    """results.md, results.json and results.png in out_dir; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (out_dir / "results.md").write_text(text)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    from .plot import plot  # noqa: PLC0415 - matplotlib loads slowly; only needed here

    plot(report, out_dir / "results.png")
    return text


def results_dir(quick, only):
    """Committed results come from full default runs only: --quick and --only write under results/dev/."""
    base = BENCH_DIR / "results"
    return base / "dev" if quick or only else base
