"""Read `prosodyctl check config` and mod_firewall's compiler output strictly.

`check config` exits 0 on many problems (modules that fail to load, warnings,
deprecations) and never mentions unknown option names.  A release is only
activated when the exit code is 0 AND the output holds nothing but the list
of loaded files and the success lines, AND every file of the tree is in that
list.
"""

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prosody_check_findings
short_description: Problems in the output of C(prosodyctl check config)
description:
  - Returns a list of findings, empty when the check passed strictly.
  - A finding is the non-zero exit code, any output line other than the
    header, the list of loaded files and the success lines, or a file of the
    tree that Prosody did not load.
options:
  _input:
    description: Combined stdout and stderr of C(prosodyctl --config FILE check config),
      as one text or as a list of lines.
    type: raw
    required: true
  rc:
    description: Exit code of the check.
    type: int
    required: true
  expected_files:
    description: Absolute paths Prosody must report as loaded.
    type: list
    elements: str
    default: []
---
name: prosody_firewall_findings
short_description: Scripts mod_firewall could not compile, with its reason
description:
  - Reads the registered results of a loop running C(prosodyctl mod_firewall SCRIPT) (which
    compiles the script and exits non-zero on an error) and returns one finding per failed
    script, e.g. C(mod_firewall cannot compile firewall/x.pfw: Unknown condition on line 3: SUBSCRIBD).
options:
  _input:
    description: The loop's C(results); each item is the script path relative to the release.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail on anything but a clean check
  ansible.builtin.assert:
    that: findings | length == 0
    fail_msg: "{{ findings | join('\n') }}"
  vars:
    findings: "{{ (check.stdout_lines + check.stderr_lines) | prosody_check_findings(check.rc, expected) }}"
"""

RETURN = r"""
_value:
  description: Findings, one string each; empty when the check (or every script) passed.
  type: list
  elements: str
"""

BENIGN_LINES = (
    re.compile(r"^Checking config\.\.\.$"),
    re.compile(r"^The following configuration files have been loaded:$"),
    re.compile(r"^Done\.$"),
    re.compile(r"^All checks passed, congratulations!$"),
    # 13.0 adds this hint whenever a host lacks an optional feature (push,
    # A/V relays, ...); features are judged by `prosodyctl check features`.
    re.compile(r"^Some of your hosts may be missing features due to a lack of configuration\.$"),
    re.compile(r"^For more details, use the 'prosodyctl check features' command\.$"),
)
LOADED_FILE = re.compile(r"^-\s+(?P<path>/\S.*)$")
# prosodyctl reports a failed module command as
# "Failed to execute command: Error: /usr/lib/.../mod_firewall.lua:791: <reason>".
COMMAND_ERROR = re.compile(r"Failed to execute command: (?:Error: )?(?:\S+\.lua:[0-9]+: )?(?P<reason>.+)$")


def prosody_check_findings(output, rc, expected_files=None):
    """Findings in a `check config` run; see DOCUMENTATION."""
    if isinstance(output, str):
        lines = output.splitlines()
    elif isinstance(output, list) and all(isinstance(line, str) for line in output):
        lines = output
    else:
        raise AnsibleFilterError(
            f"prosody_check_findings: expected the check's output as text or a list of lines, got {output!r}"
        )
    findings = [] if rc == 0 else [f"prosodyctl check config exited with {rc} (0 means passed)"]
    loaded = set()
    for raw in lines:
        line = raw.strip()
        match = LOADED_FILE.match(line)
        if match:
            loaded.add(match.group("path"))
        elif line and not any(pattern.match(line) for pattern in BENIGN_LINES):
            findings.append(line)
    findings.extend(f"not loaded by Prosody: {path}" for path in expected_files or [] if path not in loaded)
    return findings


def prosody_firewall_findings(results):
    """Findings for the scripts mod_firewall refused; see DOCUMENTATION."""
    if not isinstance(results, list) or not all(isinstance(result, dict) for result in results):
        raise AnsibleFilterError(
            f"prosody_firewall_findings: expected a loop's results (a list of mappings), got {results!r}"
        )
    findings = []
    for result in results:
        if result.get("rc") == 0:
            continue
        lines = (result.get("stdout") or "").splitlines() + (result.get("stderr") or "").splitlines()
        reasons = [match.group("reason") for match in map(COMMAND_ERROR.search, lines) if match]
        reason = reasons[0] if reasons else f"prosodyctl exited with {result.get('rc')}"
        findings.append(f"mod_firewall cannot compile {result.get('item')}: {reason}")
    return findings


class FilterModule:
    """Strict reading of Prosody's own checks."""

    def filters(self):
        return {
            "prosody_check_findings": prosody_check_findings,
            "prosody_firewall_findings": prosody_firewall_findings,
        }
