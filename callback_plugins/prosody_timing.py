"""Record how long each task and each loop item took, for `prosody-stack profile`."""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: prosody_timing
type: aggregate
short_description: Time every task and loop item of a run, as JSON
description:
  - Writes, at the end of the run, one entry per task (name, tags, start and end in seconds from the
    start of the run) with each host's loop items (label, seconds since that host's previous item
    or the task's start) to the file named by C(PROSODY_TIMING_JSON).  A task whose result carries
    C(render_seconds) (the action prosody_render) gets one item per rendered file instead.
  - C(prosody-stack profile) enables it for a render of an inventory; it prints nothing.
options:
  json_file:
    description: Where to write the timings.
    env:
      - name: PROSODY_TIMING_JSON
    type: path
"""


class CallbackModule(CallbackBase):
    """Aggregate callback: timestamps only, no output."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "prosody_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = time.monotonic()
        self.tasks = []
        self.previous_item = {}

    def _now(self):
        return round(time.monotonic() - self.started, 4)

    def _close_task(self):
        if self.tasks and self.tasks[-1]["end"] is None:
            self.tasks[-1]["end"] = self._now()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_task()
        self.tasks.append({"name": task.get_name(), "tags": sorted(task.tags), "start": self._now(), "end": None})
        self.tasks[-1]["items"] = []
        self.previous_item = {}

    def _item(self, result):
        if not self.tasks:
            return
        task = self.tasks[-1]
        host = result._host.get_name()
        now = self._now()
        since = self.previous_item.get(host, task["start"])
        self.previous_item[host] = now
        label = result._result.get("_ansible_item_label", result._result.get("item"))
        task["items"].append({"host": host, "label": str(label), "seconds": round(now - since, 4)})

    def v2_runner_on_ok(self, result):
        # Tasks that render many files in one step (action prosody_render)
        # report each file's seconds: keep them as the task's items.
        seconds = result._result.get("render_seconds")
        if self.tasks and isinstance(seconds, dict):
            host = result._host.get_name()
            self.tasks[-1]["items"] += [{"host": host, "label": path, "seconds": s} for path, s in seconds.items()]

    v2_runner_item_on_ok = _item
    v2_runner_item_on_failed = _item
    v2_runner_item_on_skipped = _item

    def v2_playbook_on_stats(self, stats):
        self._close_task()
        path = os.environ.get("PROSODY_TIMING_JSON")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump({"seconds": self._now(), "tasks": self.tasks}, out)
