"""Broken inventories are refused on the controller, before any host is contacted.

Each folder of tests/broken/ is a one-host (or two-host) inventory with one
mistake, and expected.txt: every non-empty line of it must appear in
ansible-playbook's output.  An optional not-expected.txt lists text that must
not appear (a secret's value).  tests/broken/_baseline/ is the valid inventory
the cases start from: it must render, so each case fails for its own mistake.

Rendering writes nothing until every host's tree is built: a refused
inventory leaves the render directory absent, and the play that writes it
never starts.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, ansible_playbook

BROKEN = ROOT / "tests" / "broken"
BASELINE = "_baseline"
CASES = sorted(path.name for path in BROKEN.iterdir() if (path / "expected.txt").is_file())
WRITE_PLAY = "PLAY [Write the rendered trees]"


def _lines(path):
    return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


@pytest.fixture(scope="session")
def renders(tmp_path_factory):
    """{case: (finished process, render_dir)} for every case and the baseline, run side by side."""
    base = tmp_path_factory.mktemp("broken")

    def render(case):
        render_dir = base / case / "render"
        done = ansible_playbook("playbooks/render.yml", "-i", str(BROKEN / case), "-e", f"render_dir={render_dir}")
        return case, (done, render_dir)

    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return dict(pool.map(render, [BASELINE, *CASES]))


def test_corpus_is_large_enough_and_every_case_says_what_to_expect():
    assert len(CASES) >= 30
    for case in CASES:
        assert _lines(BROKEN / case / "expected.txt"), f"{case}: expected.txt is empty"
        assert (BROKEN / case / "hosts.yml").is_file(), case


def test_baseline_renders(renders):
    done, render_dir = renders[BASELINE]
    assert done.returncode == 0, done.stdout + done.stderr
    assert (render_dir / "xmpp.example.test" / "prosody.cfg.lua").is_file()


@pytest.mark.parametrize("case", CASES)
def test_broken_inventory_is_refused_before_any_host(renders, case):
    done, render_dir = renders[case]
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"{case} was accepted:\n{output}"
    for line in _lines(BROKEN / case / "expected.txt"):
        assert line in output, f"{case}: {line!r} not in the output:\n{output}"
    for line in _lines(BROKEN / case / "not-expected.txt"):
        assert line not in output, f"{case}: {line!r} must not appear in the output"
    assert not Path(render_dir).exists(), f"{case}: {render_dir} was written"
    assert WRITE_PLAY not in output, f"{case}: the play that writes trees started"
    assert "UNREACHABLE" not in output, f"{case}: a host was contacted"
