"""Read the store counts of a storage migration (tools/prosody-storage-migration.lua).

The counts come from Prosody's own storage drivers on each side of a copy, as
{host: {store: {"entries": n, "items": m}}}.  These filters decide whether a
target already holds data and whether a copy kept every entry and item, and
lay the numbers out as the table the playbook prints.
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prosody_migration_occupied
short_description: The stores of a storage backend that already hold data
description:
  - Lists C(host store) for every store with at least one entry, sorted.
  - A copy must start on empty stores, or its counts could not be compared.
  - Its companion C(prosody_migration_report(after)) takes the counts before
    a copy (a list, one entry per pair of backends) and after it, and returns
    whether every store kept its entries and items, with a table to print.
options:
  _input:
    description: Counts of one backend, C({host: {store: {entries, items}}}).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Stores of the target that hold data
  ansible.builtin.debug:
    msg: "{{ {'a.example': {'roster': {'entries': 2, 'items': 6}, 'vcard': {'entries': 0, 'items': 0}}}
             | prosody_migration_occupied }}"
  # => ['a.example roster (2 entries, 6 items)']

- name: Before and after a copy
  ansible.builtin.debug:
    msg: "{{ [before] | prosody_migration_report([after]) }}"
  # => {'equal': True, 'table': ['host       store   entries  items', ...], 'differences': []}
"""

RETURN = r"""
_value:
  description: C(prosody_migration_occupied) returns a list of strings; C(prosody_migration_report) a dict.
  type: raw
  contains:
    equal:
      description: Every store has the same entries and items before and after.
      type: bool
    table:
      description: Aligned lines, one per store that holds data on either side, then a line for the empty ones.
      type: list
    differences:
      description: One line per store whose numbers differ.
      type: list
"""

FIELDS = ("entries", "items")


def _check_counts(counts, what):
    valid = isinstance(counts, Mapping) and all(
        isinstance(stores, Mapping)
        and all(isinstance(n, Mapping) and all(isinstance(n.get(f), int) for f in FIELDS) for n in stores.values())
        for stores in counts.values()
    )
    if not valid:
        raise AnsibleFilterError(f"{what} must map host -> store -> {{entries: int, items: int}}, got {counts!r}")


def prosody_migration_occupied(counts):
    """Stores holding data; see DOCUMENTATION."""
    _check_counts(counts, "prosody_migration_occupied: the counts")
    return [
        f"{host} {store} ({n['entries']} entries, {n['items']} items)"
        for host, stores in sorted(counts.items())
        for store, n in sorted(stores.items())
        if n["entries"]
    ]


def _merged(count_list, what):
    """One {(host, store): numbers} from the counts of every pair of backends."""
    if not isinstance(count_list, list):
        raise AnsibleFilterError(f"prosody_migration_report: {what} must be a list of counts, one per pair")
    merged = {}
    for counts in count_list:
        _check_counts(counts, f"prosody_migration_report: each of {what}")
        for host, stores in counts.items():
            for store, numbers in stores.items():
                merged[(host, store)] = numbers
    return merged


def _aligned(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [" ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def prosody_migration_report(before, after):
    """Compare counts per store before and after a copy; see DOCUMENTATION."""
    before, after = _merged(before, "before"), _merged(after, "after")
    empty = {"entries": 0, "items": 0}
    rows, differences, empty_stores = [("host", "store", "entries before/after", "items before/after")], [], 0
    for host, store in sorted(set(before) | set(after)):
        old, new = before.get((host, store), empty), after.get((host, store), empty)
        if not (old["entries"] or new["entries"] or old["items"] or new["items"]):
            empty_stores += 1
            continue
        cells = [f"{old[field]}/{new[field]}" for field in FIELDS]
        rows.append((host, store, *cells))
        if old != new:
            differences.append(f"{host} {store}: entries {cells[0]}, items {cells[1]}")
    table = [*_aligned(rows), f"({empty_stores} stores empty before and after)"]
    return {"equal": not differences, "table": table, "differences": differences}


class FilterModule:
    """Filters that check a storage migration by its counts."""

    def filters(self):
        return {
            "prosody_migration_occupied": prosody_migration_occupied,
            "prosody_migration_report": prosody_migration_report,
        }
