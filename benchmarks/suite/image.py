"""The benchmark's host image: localhost/prosody-stack:bookworm plus python3-apt, built offline.

Ansible's apt module needs python3-apt on the host and installs it from the
Debian archive when it is missing, which every fresh container of the
project's image would do during the measured converge.  A benchmark only
talks to loopback, so the image gets python3-apt (and the two packages it
depends on) repacked from the controller's own installation instead: the
controller runs Debian 12 like the bookworm image.  The image is rebuilt
only when its recipe (base image, package versions, Containerfile) changes.
"""

import hashlib
import shutil
import tempfile
from pathlib import Path

from .common import BENCH_DIR, BenchmarkError, attempt, progress, run

BASE_IMAGE = "localhost/prosody-stack:bookworm"
BENCH_IMAGE = "localhost/prosody-stack-bench:bookworm"
PACKAGES = ("python3-apt", "python-apt-common", "distro-info-data")
RECIPE_LABEL = "prosody-stack.bench-recipe"
CONTAINERFILE = BENCH_DIR / "images" / "Containerfile"


def _installed_version(package):
    done = attempt(["dpkg-query", "--show", "--showformat", "${Status} ${Version}", package])
    words = done.stdout.split()
    if done.returncode != 0 or words[:3] != ["install", "ok", "installed"]:
        raise BenchmarkError(
            f"{package} is not installed on this machine: run `make setup` (apt-get install python3-apt)"
        )
    return words[3]


def _control_file(package):
    """The package's control data as dpkg knows it, without the fields only an installed package has."""
    status = run(["dpkg-query", "--status", package]).stdout
    fields, keep = [], True
    for line in status.splitlines():
        if not line.startswith((" ", "\t")):
            keep = line.split(":", 1)[0] not in {"Status", "Conffiles", "Config-Version"}
        if keep:
            fields.append(line)
    return "\n".join(fields) + "\n"


def _repack(package, out_dir):
    """Rebuild an installed package's .deb from its files (what dpkg-repack does)."""
    root = out_dir / package
    for name in run(["dpkg-query", "--listfiles", package]).stdout.splitlines():
        source = Path(name)
        if name in {"", "/."}:
            continue
        target = root / name.lstrip("/")
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
        elif source.exists() or source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(_control_file(package))
    run(["dpkg-deb", "--root-owner-group", "--build", root, out_dir / f"{package}.deb"], what=f"dpkg-deb {package}")
    shutil.rmtree(root)


def _recipe_digest():
    base_id = run(["podman", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE], what="podman image inspect").stdout
    versions = [f"{package}={_installed_version(package)}" for package in PACKAGES]
    return hashlib.sha256("\n".join([base_id.strip(), *versions, CONTAINERFILE.read_text()]).encode()).hexdigest()


def ensure_bench_image():
    """Build BENCH_IMAGE unless it is current; returns its name."""
    if not Path("/etc/debian_version").read_text().startswith("12"):
        raise BenchmarkError("the benchmark image repacks this machine's python3-apt: it needs Debian 12 (bookworm)")
    digest = _recipe_digest()
    label = attempt(
        ["podman", "image", "inspect", "--format", f'{{{{ index .Labels "{RECIPE_LABEL}" }}}}', BENCH_IMAGE]
    )
    if label.returncode == 0 and label.stdout.strip() == digest:
        return BENCH_IMAGE
    progress(f"building {BENCH_IMAGE} ({BASE_IMAGE} + {', '.join(PACKAGES)} from this machine, no network) ...")
    with tempfile.TemporaryDirectory(prefix="prosody-stack-bench-image-") as context:
        debs = Path(context) / "debs"
        debs.mkdir()
        for package in PACKAGES:
            _repack(package, debs)
        run(
            [
                "podman",
                "build",
                "--network",
                "none",
                "--build-arg",
                f"BASE={BASE_IMAGE}",
                "--label",
                f"{RECIPE_LABEL}={digest}",
                "-t",
                BENCH_IMAGE,
                "-f",
                CONTAINERFILE,
                context,
            ],
            what="podman build",
        )
    return BENCH_IMAGE
