"""results.png: one figure, one subplot per part (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .results import fleet_bound


def _render(axis, render):
    sizes = sorted(render)
    axis.plot(sizes, [render[size]["render_median"] for size in sizes], "o-", label="render.yml")
    axis.plot(sizes, [render[size]["floor_median"] for size in sizes], "s--", label="Jinja2 floor")
    for size in sizes:
        axis.annotate(
            f"{render[size]['ratio']:.0f}x",
            (size, render[size]["render_median"]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
    axis.set(xscale="log", yscale="log", xlabel="hosts", ylabel="seconds (log)", title="1. Render (controller)")
    axis.legend(fontsize=8)


def _converge(axis, converge):
    labels, ours, baseline = [], [], []
    for strategy, figures in converge.items():
        if "error" in figures:
            continue
        for key, run in (("full", "full"), ("noop", "no-op")):
            labels.append(f"{strategy}\n{run}")
            ours.append(figures["ours"][f"{key}_median"])
            baseline.append(figures["baseline"][f"{key}_median"])
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], ours, width=0.4, label="ours (site.yml)")
    axis.bar([p + 0.2 for p in positions], baseline, width=0.4, label="per-file baseline")
    axis.set_xticks(list(positions), labels, fontsize=8)
    title = "2. One host over SSH"
    if "error" in converge.get("mitogen", {}):
        title += " (Mitogen did not run)"
    axis.set(ylabel="seconds", title=title)
    axis.legend(fontsize=8)


def _fleet(axis, fleet, forks):
    sizes = sorted(fleet)
    for key, label in (("full_median", "full converge"), ("noop_median", "no-op re-run")):
        axis.plot(sizes, [fleet[size][key] for size in sizes], "o-", label=label)
    if 1 in fleet:
        one = fleet[1]["full_median"]
        axis.plot(sizes, [one * size for size in sizes], ":", color="grey", label="full, linear in hosts")
        bound = [one * fleet_bound(size, forks) for size in sizes]
        axis.plot(sizes, bound, "--", color="green", label=f"full, target: ceil(N / {forks} forks)")
    axis.set(xlabel="hosts", ylabel="seconds", title="3. Fleet converge", xticks=sizes)
    axis.legend(fontsize=8)


def _startup(axis, startup):
    labels, layered, single = [], [], []
    for series, figures in startup.items():
        for key, run in (("startup", "start-up"), ("check", "check config")):
            labels.append(f"{series}\n{run}")
            layered.append(figures[f"{key}_layered"] * 1000)
            single.append(figures[f"{key}_single"] * 1000)
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], layered, width=0.4, label="32-file tree")
    axis.bar([p + 0.2 for p in positions], single, width=0.4, label="one file")
    axis.set_xticks(list(positions), labels, fontsize=8)
    axis.set(ylabel="milliseconds", title="4. Prosody start-up / check config")
    axis.legend(fontsize=8)


def plot(report, path):
    parts, forks = report["parts"], report["machine"]["ansible_forks"]
    all_drawers = {
        "render": _render,
        "converge": _converge,
        "fleet": lambda axis, fleet: _fleet(axis, fleet, forks),
        "startup": _startup,
    }
    drawers = [(key, draw) for key, draw in all_drawers.items() if key in parts]
    columns = 2 if len(drawers) > 1 else 1
    rows = (len(drawers) + 1) // 2 if len(drawers) > 1 else 1
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.5 * rows), squeeze=False)
    for axis, (key, draw) in zip(axes.flat, drawers, strict=False):
        draw(axis, parts[key])
    for axis in list(axes.flat)[len(drawers) :]:
        axis.set_visible(False)
    machine = report["machine"]
    figure.suptitle(
        f"prosody-stack benchmarks: {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"ansible-core {machine['ansible_core']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
