"""prosody_merge: the documented merge model, valid and invalid cases."""

import pytest
from ansible.errors import AnsibleFilterError

VALID = [
    pytest.param([["a", {"x": 1}], ["b", {"y": 2}]], {"x": 1, "y": 2}, id="disjoint-keys"),
    pytest.param([["a", {"x": {"p": 1, "q": 2}}], ["b", {"x": {"q": 3}}]], {"x": {"p": 1, "q": 3}}, id="deep-mapping"),
    pytest.param([["a", {"x": 1, "y": 2}], ["b", {"x": None}]], {"y": 2}, id="null-removes"),
    pytest.param([["a", {"p": [1, 2]}], ["b", {"p": [3]}]], {"p": [3]}, id="plain-list-replaced"),
    pytest.param(
        [["a", {"modules": {"bosh": True, "websocket": True}}], ["b", {"modules": {"bosh": False}}]],
        {"modules": {"bosh": False, "websocket": True}},
        id="module-switched-off",
    ),
    pytest.param(
        [["a", [{"name": "x", "k": 1}, {"name": "y"}]], ["b", [{"name": "x", "j": 2}, {"name": "z"}]]],
        [{"name": "x", "k": 1, "j": 2}, {"name": "y"}, {"name": "z"}],
        id="named-list-merged-by-name",
    ),
    pytest.param(
        [["a", [{"name": "x"}, {"name": "y"}]], ["b", [{"name": "x", "state": "absent"}]]],
        [{"name": "y"}],
        id="named-item-absent",
    ),
    pytest.param([["a", {"x": 1}], ["b", None], ["c", {}]], {"x": 1}, id="empty-levels-skipped"),
    pytest.param([], {}, id="no-levels"),
    pytest.param([["a", {"x": "*"}], ["b", {"x": ["127.0.0.1"]}]], {"x": ["127.0.0.1"]}, id="scalar-to-list"),
    pytest.param([["a", {"x": None, "y": 1}]], {"y": 1}, id="null-in-first-level-dropped"),
    pytest.param(
        [["a", {"storage": "internal"}], ["b", {"storage": {"archive": "sql"}}]],
        {"storage": {"archive": "sql"}},
        id="scalar-replaced-by-mapping",
    ),
    pytest.param(
        [["a", {"d": [{"name": "x", "state": "absent"}, {"name": "y", "state": "present"}]}]],
        {"d": [{"name": "y"}]},
        id="state-never-leaks-from-a-single-level",
    ),
]


@pytest.mark.parametrize(("levels", "expected"), VALID)
def test_merge_valid(filters, levels, expected):
    assert filters["prosody_merge"](levels) == expected


def test_merge_does_not_change_its_input(filters):
    lower = {"x": {"p": 1}}
    filters["prosody_merge"]([["a", lower], ["b", {"x": {"q": 2}}]])
    assert lower == {"x": {"p": 1}}


INVALID = [
    pytest.param(
        [["role default", {"ports": {"c2s_ports": [5222]}}], ["host_vars", {"ports": 5222}]],
        "prosody_merge: layer01_transport.ports: host_vars sets the value 5222 where lower levels hold a mapping; "
        "use the same kind of value, or null to remove the inherited key first",
        id="mapping-replaced-by-scalar",
    ),
    pytest.param(
        [["a", {"p": [1]}], ["b", {"p": "x"}]],
        "prosody_merge: layer01_transport.p: b sets the value 'x' where lower levels hold a list; "
        "use the same kind of value, or null to remove the inherited key first",
        id="list-replaced-by-scalar",
    ),
    pytest.param(
        "nope", "prosody_merge: expected a list of [label, value] levels, got the value 'nope'", id="not-a-list"
    ),
    pytest.param([["a"]], "prosody_merge: level 0 must be a [label, value] pair, got ['a']", id="bad-level"),
]


@pytest.mark.parametrize(("levels", "message"), INVALID)
def test_merge_invalid(filters, levels, message):
    with pytest.raises(AnsibleFilterError) as error:
        filters["prosody_merge"](levels, "layer01_transport")
    assert str(error.value) == message
