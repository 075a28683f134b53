"""prosody-stack profile: phases and layers timed on a real render and real Prosody."""

import json
import subprocess

from conftest import ROOT

CLI = ROOT / ".venv" / "bin" / "prosody-stack"


def test_profile_times_every_phase_and_layer():
    done = subprocess.run(
        [str(CLI), "profile", "development", "--json"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["hosts"] == ["prosody-dev"]
    assert all(result["phases"][phase] > 0 for phase in ("merge", "validate", "render"))
    layers = {
        f"stack/0{n}-{name}"
        for n, name in enumerate(
            ["transport", "stream", "stanza", "protocol", "services", "storage", "interfaces", "integration"], start=1
        )
    }
    assert layers <= set(result["layers"])
    assert all(result["layers"][layer]["render"] > 0 and result["layers"][layer]["merge"] > 0 for layer in layers)
    assert result["prosody_parse"]["prosody-dev"] > 0
    # The parts add up to the run: no phase is counted twice.
    assert abs(sum(result["phases"].values()) + result["wall"]["startup"] - result["wall"]["total"]) < 0.5


def test_profile_of_a_broken_inventory_says_so():
    done = subprocess.run(
        [str(CLI), "profile", str(ROOT / "tests" / "broken" / "bad-tls-profile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "the inventory does not build: run prosody-stack validate" in done.stdout
