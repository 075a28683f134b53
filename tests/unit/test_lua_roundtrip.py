"""The Lua writer is injection-proof: property-based round trips through the
real Lua 5.4 interpreter.

Every generated option name and value becomes `name = <literal>` (the way the
templates write it), runs in an empty Lua environment, and must leave exactly
that one option with exactly that value behind: quotes, backslashes,
newlines, `]]`, NUL bytes, non-ASCII text, extreme numbers and keys that are
not Lua identifiers included.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import filter_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LUA = shutil.which("lua5.4")
pytestmark = pytest.mark.skipif(LUA is None, reason="lua5.4 is installed by `make setup`")
HERE = Path(__file__).parent
EXAMPLES = 2000


def canonical(value):
    """The same encoding tests/unit/lua_canonical.lua writes, computed in Python."""
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f" + (b"%.17g" % value) + b";"
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"s%d:%s" % (len(data), data)
    items = value.items() if isinstance(value, dict) else enumerate(value, start=1)
    encoded = sorted(canonical(key) + canonical(item) for key, item in items)
    return b"t%d:%s" % (len(encoded), b"".join(encoded))


class Lua:
    """One lua5.4 process answering framed chunks, for the whole test session."""

    def __init__(self):
        self.process = subprocess.Popen(
            [LUA, str(HERE / "lua_canonical.lua")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def run(self, chunk):
        data = chunk.encode("utf-8")
        self.process.stdin.write(b"%d\n%s" % (len(data), data))
        self.process.stdin.flush()
        size = int(self.process.stdout.readline())
        return self.process.stdout.read(size)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def lua():
    interpreter = Lua()
    yield interpreter
    interpreter.close()


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40) | st.sampled_from(
    ['"', "\\", '\\\\"', "]]", "]=]", "\n", "\r\n", "\x00", "\x7f", '"; os.exit(1); x = "', "--[[", "é☃𝄞"]
)
scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(text | st.integers(min_value=-(2**63), max_value=2**63 - 1), children, max_size=5),
    max_leaves=12,
)
# Names that are Lua identifiers; keywords are refused (tested in test_prosody_config.py).
LUA_KEYWORDS = filter_module("prosody_config").LUA_KEYWORDS
option_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,30}\Z").filter(lambda name: name not in LUA_KEYWORDS)


def _lua_view(value):
    """What Lua can tell apart: an empty list and an empty mapping are both {}."""
    if isinstance(value, list | dict) and not value:
        return {}
    if isinstance(value, list):
        return [_lua_view(item) for item in value]
    if isinstance(value, dict):
        return {key: _lua_view(item) for key, item in value.items()}
    return value


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=option_names, value=values)
def test_an_option_sets_exactly_its_value(filters, lua, name, value):
    chunk = filters["prosody_option"](value, name)
    assert lua.run(chunk) == canonical({name: _lua_view(value)}), chunk
