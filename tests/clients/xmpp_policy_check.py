"""Prove what a deployed Prosody refuses clients: a mod_firewall rule, mod_limits and the stanza size limit.

Four accounts (the accounts file, lines "jid password" in this order): a recipient, a contact, a stranger and an
account listed in unlimited_jids.  Each check logs in the accounts it needs over STARTTLS with the client of
tools/xmpp_probe.py (SCRAM, certificate verified against --ca) and logs them out at its end.

firewall: the rule script no-links-from-strangers ("::deliver / KIND: message / NOT SUBSCRIBED /
INSPECT: body#~=https?:// / BOUNCE=policy-violation (...)") bounces a message with a link unless the recipient's
roster has the sender with a subscription.  mod_firewall's SUBSCRIBED asks the recipient's roster, and what it asks
differs by version: Debian bookworm's prosody-modules (2023) calls rostermanager.is_contact_subscribed (the sender
receives the recipient's presence: "from" or "both"), trixie's calls is_user_subscribed (the recipient receives the
sender's: "to" or "both").  So the recipient and the contact subscribe to each other ("both", which passes either
test) with presence subscribe/subscribed, until the server's roster of each shows it; the stranger must have no
subscription.  Then (a) the stranger's chat message with a link must not reach the recipient within --silence seconds
and the stranger must get an error reply with the condition policy-violation; (b) the same stranger client's message
without a link arrives; (c) the contact's message with a link arrives.  INSPECT's "~=" is a Lua pattern, not a
regular expression; "https?://" means the same in both.

rate: mod_limits parses a rate "<n>[ ]<unit>/s" by the first letter of the unit only: b=1, k=1000, m=10^6 bytes per
second (decimal, and bytes even when written "kbit": "4kb/s", "4 KB/s" and "4KiB/s" all mean 4000 bytes/s); the
burst "<n>[ ]s" is whole seconds.  It counts every byte the server reads from a client connection after TLS
decryption and before XML parsing (stanzas, whitespace and stream headers alike), from the connection's start;
unlimited_jids are exempted when they authenticate.  With Prosody's default network backend (epoll) mod_limits hands
the rate to the connection and the burst is not used: after each read (up to 8 KiB) the connection stops reading for
bytes/rate seconds; other backends use a token bucket holding rate x burst bytes.  The stranger (throttled) sends
about --bytes bytes of chat messages to itself (each ~1500 bytes, well under any stanza limit) followed by an
XEP-0199 ping to its server; from the first send to the pong, every byte slixmpp writes into the TLS layer is
counted.  Measured rate = (bytes - rate x burst) / seconds, which must lie within 0.5 to 1.25 times the configured
rate: with epoll the pong comes (bytes - the last read) / rate seconds after the first send (3800 to 3900 B/s
measured at 4kb/s), with a token bucket (bytes - rate x burst) / rate.  The unlimited account then sends the same and
must finish at least 4 times faster.  Each exchange is bounded by 3 x the expected time + 10 s: a stuck connection
fails the check.

size: the contact sends the recipient a message whose serialized stanza is half of --stanza-limit (it must arrive),
then one of the limit + --excess bytes: the server must end the contact's stream with the stream error
policy-violation (Prosody adds the text "XML stanza is too big" and <stanza-too-big xmlns="urn:xmpp:errors"/>), and
the recipient must not receive it.  Prosody compares the limit with the bytes of an unfinished stanza it holds after
each read from the connection (up to 8192 bytes, the network setting read_size), after parsing that read: a stanza
that ends within the read that crosses the limit is accepted, so stanzas up to about limit + 8 KiB can get through
(2048 over the limit always did here, on 0.12 and 13.0).  The default excess, 8192 + 2048, is refused however the
reads fall.  Prosody 13 raises a c2s_stanza_size_limit under 10000 to 10000 (with a warning); 0.12 takes it as given.

One JSON line per check {"check", "ok", "detail", "seconds"}; the exit code is 0 only when every requested check
passed.  Passwords come from the accounts file so they never appear in a process list.  Only the given loopback
address is contacted.
"""

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import sys
import time
from pathlib import Path

import slixmpp
from slixmpp.xmlstream import tostring

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from xmpp_probe import ProbeFailed, connect, describe, receive  # the project's one way to log in

ROLES = ("recipient", "contact", "stranger", "unlimited")
LINK = "https://example.org/offer"
# Size of each message of the rate check: many stanzas, each far below any stanza size limit Prosody accepts.
RATE_MESSAGE_BYTES = 1500
# mod_limits' units: the first letter of the unit, as a power of ten.
RATE_UNITS = {"b": 0, "k": 3, "m": 6, "g": 9, "t": 12}
# When --rate is not given, the size check assumes the server reads at least this fast while it waits.
SLOWEST_READ = 1000
APP_ERRORS_NS = "urn:xmpp:errors"
STANZA_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def parse_rate(text):
    """Bytes per second, read exactly as mod_limits reads its "rate" option."""
    match = re.fullmatch(r"(\d+) ?([^/]+)/s", text)
    exponent = match and RATE_UNITS.get(match.group(2)[0].lower())
    if exponent is None:
        # mod_limits would log an error and silently use 3000 bytes/s: a test against that would prove nothing.
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate mod_limits understands (e.g. 4kb/s)")
    return int(match.group(1)) * 10**exponent


def parse_burst(text):
    """Seconds, as mod_limits reads "burst": a number, optionally followed by "s"."""
    match = re.fullmatch(r"(\d+) ?s?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a burst mod_limits understands (e.g. 2 or 2s)")
    return int(match.group(1))


def read_roles(path):
    """The four accounts by role; the probe's own reader takes exactly two."""
    lines = [tuple(line.split(None, 1)) for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) != len(ROLES) or any(len(line) != 2 for line in lines):
        raise SystemExit(f"{path}: expected four lines 'jid password': {', '.join(ROLES)}")
    return dict(zip(ROLES, lines, strict=True))


def error_condition(stanza):
    """The stanza error's defined condition, read from the XML: slixmpp 1.10 does not know policy-violation."""
    names = [
        child.tag.split("}")[1] for child in stanza["error"].xml if child.tag.startswith(f"{{{STANZA_ERRORS_NS}}}")
    ]
    return next((name for name in names if name != "text"), "no condition")


def settle(future, result):
    if not future.done():
        future.set_result(result)


def count_sent(client):
    """Count the bytes slixmpp writes into the TLS layer: exactly what mod_limits counts after decryption."""
    client.sent_bytes = 0
    write = client.send_raw

    def send_raw(data):
        client.sent_bytes += len(data.encode() if isinstance(data, str) else data)
        write(data)

    client.send_raw = send_raw  # slixmpp sends every stanza through self.send_raw


def prepare(client):
    """Error replies on their own queue; subscription requests answered by the checks, not by slixmpp."""
    # None: slixmpp neither accepts (True) nor refuses (False) requests by itself.
    client.roster.auto_authorize = None
    client.roster.auto_subscribe = False
    client.errors = asyncio.Queue()
    client.add_event_handler("message_error", client.errors.put_nowait)
    count_sent(client)


async def close(clients):
    """Log out politely, but never wait long for a connection the server is throttling or has closed."""
    pending = [client.disconnect(wait=1.0) for client in clients if client.transport]
    if pending:
        await asyncio.wait(pending, timeout=3)
    for client in clients:
        if client.transport:
            client.abort()
    await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def logged_in(run, *roles):
    clients = []
    try:
        for role in roles:
            jid, password = run.accounts[role]
            client = await connect(jid, password, run.options)
            run.clients.append(client)  # kept until the end: slixmpp's tasks of a closed stream outlive the check
            prepare(client)
            clients.append(client)
        yield clients
    finally:
        await close(clients)


async def first(queue, match, timeout):
    """The first stanza on the queue that matches, or None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            stanza = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        if match(stanza):
            return stanza
    return None


def unique(label, extra=""):
    return f"prosody-stack policy check {label} {secrets.token_hex(6)}{extra}"


def chat(client, to, body):
    message = client.make_message(mto=to, mbody=body, mtype="chat")
    message["id"] = client.new_id()  # set before measuring, so the measured size is the size sent
    return message


def wire_size(client, stanza):
    """Bytes of the stanza as slixmpp serializes it onto the stream."""
    return len(tostring(stanza.xml, xmlns=client.default_ns, stream=client, top_level=True).encode())


def sized_message(client, to, size):
    """A chat message whose serialized stanza is exactly size bytes (hex filler: one byte per character)."""
    message = chat(client, to, "x")
    filler = size - (wire_size(client, message) - 1)
    if filler < 1:
        raise ProbeFailed(f"a message to {to} cannot be as small as {size} bytes")
    message["body"] = secrets.token_hex(filler // 2 + 1)[:filler]
    return message


# --- firewall ---------------------------------------------------------------------------------------------------


async def server_roster(client, timeout):
    """The roster as the server keeps it (jid -> subscription), not slixmpp's local copy."""
    iq = client.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    result = await iq.send(timeout=timeout)
    return {str(jid): item["subscription"] for jid, item in result["roster"]["items"].items()}


def answer_requests_from(client, peer):
    """Accept the peer's subscription request whenever it arrives (also one the server stored earlier)."""

    def accept(presence):
        if presence["from"].bare == peer:
            client.send_presence(pto=peer, ptype="subscribed")

    client.add_event_handler("presence_subscribe", accept)


async def make_mutual(left, right, timeout):
    """left and right subscribe to each other until the server's rosters say "both" on both sides."""
    pair = ((left, right.boundjid.bare), (right, left.boundjid.bare))
    for client, peer in pair:
        answer_requests_from(client, peer)
    deadline = time.monotonic() + timeout
    requested = False
    while True:
        states = [(await server_roster(client, timeout)).get(peer, "none") for client, peer in pair]
        if states == ["both", "both"]:
            return "already subscribed both ways" if not requested else "subscribed both ways"
        if time.monotonic() > deadline:
            raise ProbeFailed(
                f"subscriptions {left.boundjid.bare}/{right.boundjid.bare} still {states} after {timeout} s"
            )
        if not requested:
            for client, peer in pair:
                client.send_presence(pto=peer, ptype="subscribe")
            requested = True
        await asyncio.sleep(0.3)


async def stranger_is_stranger(recipient, stranger, timeout):
    subscription = (await server_roster(recipient, timeout)).get(stranger.boundjid.bare, "none")
    if subscription != "none":
        raise ProbeFailed(
            f"{stranger.boundjid.bare} is in {recipient.boundjid.bare}'s roster with subscription {subscription!r}:"
            " not a stranger, remove the roster item first"
        )


async def link_from_stranger(recipient, stranger, options):
    """(a) Not delivered, and bounced to the sender with policy-violation: (ok, outcome)."""
    message = chat(stranger, recipient.boundjid.bare, unique("link from stranger", f" {LINK}"))
    message.send()
    reply = await first(stranger.errors, lambda stanza: stanza["id"] == message["id"], options.timeout)
    leaked = await first(recipient.messages, lambda stanza: stanza["body"] == message["body"], options.silence)
    if reply is None:
        bounce, bounced = f"no error reply within {options.timeout} s", False
    else:
        error = reply["error"]
        condition = error_condition(reply)
        bounce = f"bounced with {condition} ({error['type']}: {error['text'] or 'no text'})"
        bounced = condition == "policy-violation"
    delivery = "DELIVERED to the recipient" if leaked is not None else f"not delivered within {options.silence} s"
    return bounced and leaked is None, f"(a) stranger's link: {bounce}, {delivery}"


async def delivered(sender, recipient, label, body, options):
    """(b) and (c): the message reaches the recipient: (ok, outcome)."""
    message = chat(sender, recipient.boundjid.bare, body)
    message.send()
    arrived = await first(recipient.messages, lambda stanza: stanza["body"] == body, options.timeout)
    if arrived is not None:
        return True, f"{label} delivered"
    reply = await first(sender.errors, lambda stanza: stanza["id"] == message["id"], 0.1)
    refused = f" (bounced with {error_condition(reply)})" if reply is not None else ""
    return False, f"{label} NOT delivered within {options.timeout} s{refused}"


async def check_firewall(run):
    async with logged_in(run, "recipient", "contact", "stranger") as (recipient, contact, stranger):
        mutual = await make_mutual(recipient, contact, run.options.timeout)
        await stranger_is_stranger(recipient, stranger, run.options.timeout)
        outcomes = [
            await link_from_stranger(recipient, stranger, run.options),
            await delivered(stranger, recipient, "(b) stranger's plain message", unique("plain"), run.options),
            await delivered(
                contact, recipient, "(c) contact's link", unique("link from contact", f" {LINK}"), run.options
            ),
        ]
    detail = f"recipient and contact {mutual}; " + "; ".join(text for _, text in outcomes)
    if not all(ok for ok, _ in outcomes):
        raise ProbeFailed(detail)
    return detail


# --- rate -------------------------------------------------------------------------------------------------------


async def timed_send(client, total_bytes, budget):
    """About total_bytes of messages to itself, then a ping: (bytes written, seconds from first send to pong)."""
    own = client.boundjid.bare
    count = max(1, round(total_bytes / RATE_MESSAGE_BYTES))
    messages = [sized_message(client, own, total_bytes // count) for _ in range(count)]  # built before the clock
    before, started = client.sent_bytes, time.monotonic()
    for message in messages:
        message.send()
    try:
        # The server handles a connection's stanzas in order: the pong comes after it has read everything.
        await asyncio.wait_for(client.plugin["xep_0199"].send_ping(client.boundjid.domain, timeout=budget), budget)
    except (TimeoutError, slixmpp.exceptions.IqTimeout) as error:
        sent = client.sent_bytes - before
        raise ProbeFailed(
            f"{own}: no pong within {budget:.0f} s after sending {sent} bytes (stuck or far too slow)"
        ) from error
    return client.sent_bytes - before, time.monotonic() - started


def throttled_verdict(options, sent, seconds):
    """(ok, outcome): the measured rate, after the burst the server may allow, within 0.5..1.25 x configured."""
    rate, burst = options.rate, options.burst
    measured = (sent - rate * burst) / seconds
    low, high = 0.5 * rate, 1.25 * rate
    verdict = "NOT throttled to" if measured > high else "throttled far below" if measured < low else "throttled to"
    text = (
        f"{sent} bytes in {seconds:.2f} s, measured ({sent} - {rate} x {burst} s) / {seconds:.2f} s"
        f" = {measured:.0f} B/s: {verdict} the configured {rate} B/s (allowed {low:.0f}..{high:.0f})"
    )
    return low <= measured <= high, text


async def check_rate(run):
    options = run.options
    budget = 3 * options.bytes / options.rate + 10
    async with logged_in(run, "stranger", "unlimited") as (throttled, unlimited):
        # Login bytes count too: let the pause they caused end and, on token-bucket backends, the burst refill.
        await asyncio.sleep(options.burst + 1)
        sent, seconds = await timed_send(throttled, options.bytes, budget)
        ok, text = throttled_verdict(options, sent, seconds)
        free_sent, free_seconds = await timed_send(unlimited, options.bytes, budget)
    speedup = seconds / free_seconds
    detail = (
        f"{throttled.boundjid.bare}: {text}; {unlimited.boundjid.bare} (unlimited_jids): {free_sent} bytes in"
        f" {free_seconds:.3f} s = {free_sent / free_seconds:.0f} B/s ({speedup:.1f}x faster, at least 4x required)"
    )
    if not ok or speedup < 4:
        raise ProbeFailed(detail)
    return detail


# --- size -------------------------------------------------------------------------------------------------------


def watch_stream_end(client):
    """A future settled by the first stream error (condition, text, stanza-too-big?) or disconnection."""
    ended = asyncio.get_running_loop().create_future()

    def on_error(error):
        too_big = error.xml.find(f"{{{APP_ERRORS_NS}}}stanza-too-big") is not None
        settle(ended, (error["condition"], error["text"], too_big))

    client.add_event_handler("stream_error", on_error)
    client.add_event_handler("disconnected", lambda _: settle(ended, (None, None, False)))
    return ended


async def oversized(sender, recipient, size, wait):
    """Send one stanza of size bytes; how the stream ended, or that it did not."""
    ended = watch_stream_end(sender)
    message = sized_message(sender, recipient.boundjid.bare, size)
    message.send()
    arrival = asyncio.ensure_future(first(recipient.messages, lambda stanza: stanza["body"] == message["body"], wait))
    done, _ = await asyncio.wait({ended, arrival}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    if ended in done:
        arrival.cancel()
        # The stream is gone; give a wrongly delivered copy a moment to show up anyway.
        late = await first(recipient.messages, lambda stanza: stanza["body"] == message["body"], 1)
        return ended.result(), late is not None
    got = arrival.done() and arrival.result() is not None
    arrival.cancel()
    return None, got


def size_verdict(size, limit, ending, got):
    """(ok, outcome) from how the stream ended (None: it did not) and whether the recipient got the stanza."""
    sent = f"{size}-byte stanza (limit {limit} + {size - limit})"
    if ending is None:
        what = "was DELIVERED to the recipient" if got else "got no answer"
        return False, f"{sent} {what}; the stream stayed open"
    condition, text, too_big = ending
    if condition is None:
        return False, f"{sent}: the server closed the stream without a stream error"
    extra = ", <stanza-too-big/>" if too_big else ""
    delivery = "; it was DELIVERED nonetheless" if got else ", not delivered"
    return (
        condition == "policy-violation" and not got,
        f"{sent}: stream error {condition} ({text or 'no text'}{extra}){delivery}",
    )


async def check_size(run):
    options = run.options
    limit, read_rate = options.stanza_limit, options.rate or SLOWEST_READ
    size = limit + options.excess
    async with logged_in(run, "recipient", "contact") as (recipient, sender):
        control = sized_message(sender, recipient.boundjid.bare, limit // 2)
        control.send()
        await receive(recipient.messages, control["body"], options.timeout + limit / read_rate, "control message")
        ending, got = await oversized(sender, recipient, size, options.timeout + size / read_rate)
    ok, text = size_verdict(size, limit, ending, got)
    detail = f"control: {limit // 2}-byte stanza from {sender.boundjid.bare} delivered; {text}"
    if not ok:
        raise ProbeFailed(detail)
    return detail


CHECKS = {"firewall": check_firewall, "rate": check_rate, "size": check_size}


class Run:
    def __init__(self, options):
        self.options = options
        self.accounts = read_roles(options.accounts_file)
        self.clients = []


async def run_checks(options):
    run = Run(options)
    passed = True
    for name in options.checks:
        started = time.monotonic()
        try:
            detail, ok = await CHECKS[name](run), True
        except (ProbeFailed, slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout, OSError) as error:
            detail, ok = describe(error), False
        passed &= ok
        record = {"check": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}
        print(json.dumps(record), flush=True)
    return passed


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS)")
    parser.add_argument("--ca", help="CA file the server certificate must chain to (default: the system's trust store)")
    parser.add_argument(
        "--accounts-file", required=True, help="four lines 'jid password': recipient, contact, stranger, unlimited"
    )
    parser.add_argument("--check", dest="checks", action="append", choices=list(CHECKS), help="repeatable; default all")
    parser.add_argument("--rate", type=parse_rate, help="the c2s rate mod_limits is configured with, e.g. 4kb/s")
    parser.add_argument("--burst", type=parse_burst, default=2, help="the c2s burst in seconds (mod_limits: 2)")
    parser.add_argument("--bytes", type=int, default=32768, help="bytes the rate check sends per account")
    parser.add_argument("--stanza-limit", type=int, default=262144, help="c2s_stanza_size_limit (Prosody: 262144)")
    parser.add_argument(
        "--excess", type=int, default=8192 + 2048, help="bytes over the limit of the stanza that must be refused"
    )
    parser.add_argument("--silence", type=float, default=3.0, help="seconds a bounced message must stay undelivered")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    options = parser.parse_args(argv)
    options.checks = options.checks or list(CHECKS)
    if "rate" in options.checks:
        if options.rate is None:
            parser.error("the rate check needs --rate (the configured c2s rate)")
        if options.bytes < 2 * options.rate * options.burst:
            parser.error(f"--bytes must be at least twice the burst (2 x {options.rate} x {options.burst} bytes)")
    return options


def main(argv=None):
    return 0 if asyncio.run(run_checks(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
