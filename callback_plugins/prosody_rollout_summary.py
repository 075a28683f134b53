"""Print the summary of a fleet rollout: one line per host, also on a halted run."""

import json
from pathlib import Path

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: prosody_rollout_summary
type: aggregate
short_description: Summary table of a prosody-stack rollout
description:
  - At the end of a run of playbooks/rollout.yml (also one that stopped at a
    failed health gate) prints, per host, the release before and after, how
    the change was applied (reload, restart or none), the gate result and
    the seconds the host took.  Hosts the rollout never reached say so.
  - Reads the custom statistic C(prosody_rollout) that roles/prosody_rollout
    records with ansible.builtin.set_stats; prints nothing for other runs.
options:
  json_file:
    description: Also write the summary as JSON to this file.
    env:
      - name: PROSODY_ROLLOUT_SUMMARY_JSON
    ini:
      - section: prosody_rollout_summary
        key: json_file
    type: path
"""

HEADINGS = ["host", "release before", "release after", "applied by", "seconds", "gate"]


def _row(host, entry):
    return [
        host,
        entry.get("before", "?"),
        entry.get("after", "?"),
        entry.get("apply", "-"),
        f"{float(entry.get('seconds', 0)):.1f}",
        str(entry.get("gate", "?")),
    ]


def summary_lines(rollout):
    """Plain-text table rows, hosts in name order; the last column (gate) is not padded."""
    rows = [HEADINGS] + [_row(host, rollout[host]) for host in sorted(rollout)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADINGS) - 1)]
    padded = ([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] for row in rows)
    return ["  ".join([*cells, row[-1]]) for cells, row in zip(padded, rows, strict=True)]


class CallbackModule(CallbackBase):
    """Aggregate callback: adds the rollout table to any stdout callback's output."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "prosody_rollout_summary"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        rollout = (stats.custom.get("_run") or {}).get("prosody_rollout")
        if not rollout:
            return
        self._display.banner("PROSODY ROLLOUT SUMMARY")
        for line in summary_lines(rollout):
            self._display.display(line)
        json_file = self.get_option("json_file")
        if json_file:
            Path(json_file).write_text(json.dumps(rollout, indent=2, sort_keys=True) + "\n")
