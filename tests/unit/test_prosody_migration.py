"""prosody_migration_occupied and prosody_migration_report: the counts of a storage move."""

import pytest
from ansible.errors import AnsibleFilterError

ROSTER = {"entries": 4, "items": 16}
EMPTY = {"entries": 0, "items": 0}


def counts(**stores):
    return {"a.example": {"vcard": EMPTY, **stores}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(counts(), [], id="all-empty"),
        pytest.param(counts(roster=ROSTER), ["a.example roster (4 entries, 16 items)"], id="one-store"),
        pytest.param(
            {"b.example": {"roster": ROSTER}, "a.example": {"vcard": {"entries": 1, "items": 3}}},
            ["a.example vcard (1 entries, 3 items)", "b.example roster (4 entries, 16 items)"],
            id="sorted-by-host",
        ),
        pytest.param({}, [], id="no-hosts"),
    ],
)
def test_occupied_lists_stores_with_entries(filters, data, expected):
    assert filters["prosody_migration_occupied"](data) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="not-a-mapping"),
        pytest.param({"a.example": []}, id="host-not-a-mapping"),
        pytest.param({"a.example": {"roster": {"entries": 1}}}, id="items-missing"),
        pytest.param({"a.example": {"roster": {"entries": "1", "items": 2}}}, id="not-a-number"),
    ],
)
def test_occupied_rejects_malformed_counts(filters, data):
    with pytest.raises(AnsibleFilterError, match=r"host -> store -> \{entries: int, items: int\}"):
        filters["prosody_migration_occupied"](data)


@pytest.mark.parametrize(
    ("before", "after", "equal", "differences"),
    [
        pytest.param([counts(roster=ROSTER)], [counts(roster=ROSTER)], True, [], id="equal"),
        pytest.param([counts()], [counts()], True, [], id="all-empty"),
        pytest.param(
            [counts(roster=ROSTER)],
            [counts(roster={"entries": 4, "items": 15})],
            False,
            ["a.example roster: entries 4/4, items 16/15"],
            id="item-lost",
        ),
        pytest.param(
            [counts(roster=ROSTER)], [counts()], False, ["a.example roster: entries 4/0, items 16/0"], id="store-lost"
        ),
        pytest.param(
            [counts()],
            [counts(roster=ROSTER)],
            False,
            ["a.example roster: entries 0/4, items 0/16"],
            id="store-appeared",
        ),
        pytest.param(
            [counts(roster=ROSTER), {"b.example": {"roster": ROSTER}}],
            [{"b.example": {"roster": ROSTER}}, counts(roster=ROSTER)],
            True,
            [],
            id="several-pairs-in-any-order",
        ),
    ],
)
def test_report_compares_every_store(filters, before, after, equal, differences):
    report = filters["prosody_migration_report"](before, after)
    assert (report["equal"], report["differences"]) == (equal, differences)


def test_report_table_shows_filled_stores_and_counts_empty_ones(filters):
    report = filters["prosody_migration_report"]([counts(roster=ROSTER)], [counts(roster=ROSTER)])
    assert report["table"] == [
        "host      store  entries before/after items before/after",
        "a.example roster 4/4                  16/16",
        "(1 stores empty before and after)",
    ]


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        pytest.param({}, [], "before must be a list of counts", id="before-not-a-list"),
        pytest.param([], "x", "after must be a list of counts", id="after-not-a-list"),
        pytest.param([{"a": 1}], [], "each of before must map host", id="malformed-pair"),
    ],
)
def test_report_rejects_malformed_input(filters, before, after, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters["prosody_migration_report"](before, after)
