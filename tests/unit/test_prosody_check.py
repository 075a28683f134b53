"""prosody_check_findings: strict reading of `prosodyctl check config`."""

import pytest
from ansible.errors import AnsibleFilterError

CLEAN = """Checking config...
    The following configuration files have been loaded:
      -  /r/prosody.cfg.lua
      -  /r/stack/01-transport/ports.cfg.lua
Done.

All checks passed, congratulations!
"""


@pytest.mark.parametrize(
    ("output", "rc", "expected", "findings"),
    [
        pytest.param(CLEAN, 0, ["/r/prosody.cfg.lua", "/r/stack/01-transport/ports.cfg.lua"], [], id="clean"),
        pytest.param(
            CLEAN,
            0,
            ["/r/prosody.cfg.lua", "/r/domains/a.cfg.lua"],
            ["not loaded by Prosody: /r/domains/a.cfg.lua"],
            id="file-not-loaded",
        ),
        pytest.param(
            CLEAN.replace("Done.", "    Configuration warning: mod_vcard_legacy conflicts\nDone."),
            0,
            [],
            ["Configuration warning: mod_vcard_legacy conflicts"],
            id="warning-with-exit-0",
        ),
        pytest.param(
            CLEAN.replace(
                "Done.",
                "    Some of your hosts may be missing features due to a lack of configuration.\n"
                "    For more details, use the 'prosodyctl check features' command.\nDone.",
            ),
            0,
            [],
            [],
            id="13.0-features-hint-is-not-a-problem",
        ),
        pytest.param(
            "Checking config...\n    Problems found, see above.\n",
            2,
            [],
            ["prosodyctl check config exited with 2 (0 means passed)", "Problems found, see above."],
            id="problems",
        ),
    ],
)
def test_findings(filters, output, rc, expected, findings):
    assert filters["prosody_check_findings"](output, rc, expected) == findings


def test_output_as_lines(filters):
    assert filters["prosody_check_findings"](CLEAN.splitlines(), 0, ["/r/prosody.cfg.lua"]) == []


@pytest.mark.parametrize("output", [None, 3, ["ok", 4]])
def test_output_must_be_text_or_lines(filters, output):
    with pytest.raises(AnsibleFilterError, match="expected the check's output as text or a list of lines, got"):
        filters["prosody_check_findings"](output, 0)


FIREWALL_RESULTS = [
    pytest.param([], [], id="no-scripts"),
    pytest.param(
        [{"item": "firewall/a.pfw", "rc": 0, "stdout": "do -- File a.pfw\nend", "stderr": ""}], [], id="compiled"
    ),
    pytest.param(
        [
            {"item": "firewall/a.pfw", "rc": 0, "stdout": "", "stderr": ""},
            {
                "item": "firewall/b.pfw",
                "rc": 1,
                "stdout": "do -- File /etc/prosody/releases/x/firewall/b.pfw\nFailed to execute command: Error: "
                "/usr/lib/prosody/modules/mod_firewall/mod_firewall.lua:791: Unknown condition on line 3: SUBSCRIBD\n"
                "stack traceback:",
                "stderr": "",
            },
        ],
        ["mod_firewall cannot compile firewall/b.pfw: Unknown condition on line 3: SUBSCRIBD"],
        id="unknown-condition",
    ),
    pytest.param(
        [{"item": "firewall/c.pfw", "rc": 1, "stdout": "", "stderr": "prosodyctl: no such module"}],
        ["mod_firewall cannot compile firewall/c.pfw: prosodyctl exited with 1"],
        id="no-reason-given",
    ),
]


@pytest.mark.parametrize(("results", "findings"), FIREWALL_RESULTS)
def test_firewall_findings(filters, results, findings):
    assert filters["prosody_firewall_findings"](results) == findings


@pytest.mark.parametrize("results", ["text", [1, 2], None])
def test_firewall_findings_refuse_what_is_not_a_loop_result(filters, results):
    with pytest.raises(AnsibleFilterError, match="expected a loop's results"):
        filters["prosody_firewall_findings"](results)
