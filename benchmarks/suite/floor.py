"""The floor of part 1: the same templates rendered by plain Jinja2 in one Python process.

No Ansible templating engine, no tasks, no variable manager: a
jinja2.Environment with the project's filters (filter_plugins/*.py) and
Ansible's core filters, fed with what benchmarks/playbooks/render-inputs.yml
dumped per host (its render plan and the variables the templates read).
The benchmark fails unless the result is byte for byte what render.yml wrote.
"""

import importlib
import sys
import time
from pathlib import Path

import jinja2
from ansible.plugins.filter.core import FilterModule as CoreFilters
from ansible.plugins.filter.mathstuff import FilterModule as MathFilters

from .common import ROOT, BenchmarkError


def _project_filters():
    """Every filter of filter_plugins/, fetched through each file's FilterModule as Ansible does."""
    filter_dir = ROOT / "filter_plugins"
    # Some filter files import each other by bare module name, as Ansible's loader allows.
    if str(filter_dir) not in sys.path:
        sys.path.insert(0, str(filter_dir))
    filters = {}
    for path in sorted(filter_dir.glob("*.py")):
        filters.update(importlib.import_module(path.stem).FilterModule().filters())
    return filters


def jinja_environment():
    """Ansible's template settings (trim_blocks) with Ansible's and the project's filters."""
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)
    # Ansible also replaces Jinja2's own default, map, select, ... with
    # versions that need its templating engine: keep Jinja2's here.
    for ansible_filters in (CoreFilters().filters(), MathFilters().filters()):
        environment.filters.update({name: f for name, f in ansible_filters.items() if name not in environment.filters})
    environment.filters.update(_project_filters())
    return environment


def _trailing_newlines(text):
    return len(text) - len(text.rstrip("\n"))


class FloorRenderer:
    """Renders render plans; compiled templates are cached across hosts, as any renderer would."""

    def __init__(self):
        self.environment = jinja_environment()
        self.templates = {}

    def _template(self, source):
        if source not in self.templates:
            text = Path(source).read_text()
            self.templates[source] = (self.environment.from_string(text), _trailing_newlines(text))
        return self.templates[source]

    def render_file(self, entry, variables):
        if "copy" in entry:
            return Path(entry["copy"]).read_text()
        template, newlines = self._template(entry["template"])
        text = template.render({**variables, **(entry.get("vars") or {})})
        # Ansible keeps the template's trailing newlines, which Jinja2 strips (_engine.py).
        return text + "\n" * max(0, newlines - _trailing_newlines(text))

    def render_tree(self, dump):
        """{path: content} of one host's tree from its render-inputs dump."""
        return {entry["path"]: self.render_file(entry, dump["variables"]) for entry in dump["plan"]}


def render_hosts(dumps):
    """(seconds, {host: {path: content}}): a fresh renderer renders every host's tree."""
    began = time.perf_counter()
    renderer = FloorRenderer()
    trees = {host: renderer.render_tree(dump) for host, dump in dumps.items()}
    return time.perf_counter() - began, trees


def compare_with_rendered(trees, render_dir):
    """Raise BenchmarkError unless every file of every tree equals, byte for byte, what render.yml wrote."""
    differences = []
    for host, tree in trees.items():
        for path, content in tree.items():
            written = Path(render_dir) / host / path
            if not written.is_file() or written.read_bytes() != content.encode():
                differences.append(f"{host}/{path}")
    if differences:
        shown = ", ".join(differences[:5])
        raise BenchmarkError(f"the Jinja2 floor differs from render.yml in {len(differences)} files: {shown}")
    return sum(len(tree) for tree in trees.values())
