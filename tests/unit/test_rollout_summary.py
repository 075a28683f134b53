"""The rollout summary table (callback_plugins/prosody_rollout_summary.py)."""

import importlib.util
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "callback_plugins" / "prosody_rollout_summary.py"


@pytest.fixture(scope="module")
def summary_lines():
    spec = importlib.util.spec_from_file_location("prosody_rollout_summary", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.summary_lines


def test_hosts_sorted_columns_aligned_gate_unpadded(summary_lines):
    lines = summary_lines(
        {
            "xmpp2.example.com": {"before": "aa", "after": "aa", "apply": "-", "seconds": 0, "gate": "not reached"},
            "xmpp1.example.com": {
                "before": "aa",
                "after": "bb",
                "apply": "restart",
                "seconds": 12.34,
                "gate": "passed",
            },
        }
    )
    assert lines == [
        "host               release before  release after  applied by  seconds  gate",
        "xmpp1.example.com  aa              bb             restart     12.3     passed",
        "xmpp2.example.com  aa              aa             -           0.0      not reached",
    ]


@pytest.mark.parametrize(
    ("entry", "row"),
    [
        pytest.param({}, "h     ?               ?              -           0.0      ?", id="nothing-recorded"),
        pytest.param(
            {"seconds": "7"}, "h     ?               ?              -           7.0      ?", id="seconds-as-text"
        ),
    ],
)
def test_missing_fields_are_shown_as_unknown(summary_lines, entry, row):
    assert summary_lines({"h": entry})[1] == row
