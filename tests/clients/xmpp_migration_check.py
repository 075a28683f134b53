"""Prove that moving a Prosody server's storage (files to PostgreSQL and back, prosody-migrator) lost nothing.

Real accounts, seen through a real client, are the only proof that counts: a row count in a database says nothing
about whether Prosody reads the data back.  So the check runs in two phases around a migration:

--phase seed   N >= 3 accounts (--accounts-file, lines "jid password") log in over STARTTLS (CA-verified, SCRAM).
               Every pair becomes mutual contacts (subscription "both"), each account sets a vCard (XEP-0054)
               whose FN names it, every pair exchanges two chat messages with unique bodies, then the LAST account
               logs out and every other account leaves it one message (offline storage).  Each account's roster,
               vCard FN and archive (XEP-0313, every message body in archive order) are written to --state together
               with the bodies the offline account must receive.  Seeding again adds messages and offline messages,
               keeps rosters and vCards, and replaces the state.
--phase check  Every account logs in, reads and compares; nothing is sent, so the server's data stays as it was.
               The offline account must receive exactly the recorded offline bodies.  Prosody deletes offline
               messages once delivered, so the first check marks them delivered in the state file; later checks
               then expect none (which also proves a migration back did not resurrect them).  Seed again to test
               offline storage through another migration.

Each step prints one JSON line {"check", "ok", "detail", "seconds"}; the exit code is 0 only when every step passed.
Seeding stops at the first failed step and then leaves the state file untouched.  Archives expire
(archive_expires_after), so check within that time of seeding.  The connection code is tools/xmpp_probe.py's.
"""

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from secrets import token_hex

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from xmpp_probe import ProbeFailed, connect, describe, receive  # the project's one way to log in

POLL = 0.2  # seconds between roster reads while subscriptions settle
PAGE = 50  # archive page size; Prosody caps it at max_archive_query_results anyway
EXAMPLES = 2  # differing items named in a failure detail, to keep it short
STATE_FORMAT = 1


class Run:
    """Options, accounts, logged-in clients, state, and what this run sent (to sanity-check the archives)."""

    def __init__(self, options):
        self.options = options
        self.accounts = read_accounts(options.accounts_file)
        self.jids = [jid for jid, _ in self.accounts]
        self.recipient = self.jids[-1]  # the account that receives offline messages
        self.clients = {}
        self.failed_logins = {}
        self.retired = []  # clients logged out on purpose
        self.state_path = Path(options.state)
        self.state = {}
        self.sent = {jid: [] for jid in self.jids}  # bodies each account sent or received in this seed run
        self.offline_bodies = []
        self.recipient_archive = []
        self.state_changed = False

    def client(self, jid):
        if jid not in self.clients:
            raise ProbeFailed(f"{jid} has no session")
        return self.clients[jid]


def read_accounts(path):
    """Accounts from the file; errors name line numbers only, never the file's contents."""
    accounts = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        if len(fields) != 2 or "@" not in fields[0] or "/" in fields[0]:
            raise SystemExit(f"{path}:{number}: expected 'bare-jid password'")
        accounts.append((fields[0], fields[1]))
    jids = [jid for jid, _ in accounts]
    if len(accounts) < 3 or len(set(jids)) != len(jids):
        raise SystemExit(f"{path}: expected at least three lines 'jid password' with different JIDs")
    return accounts


def body(kind):
    """A body no other run or account can produce, so every archive entry is attributable."""
    return f"migration-check {kind} {token_hex(8)}"


def vcard_name(jid):
    # The same for every seed run (seeding again must keep vCards equal); non-ASCII so that a migration that
    # mangles UTF-8 shows up.
    return f"Migration check {jid} (Zoë ✓)"


def examples(items):
    shown = ", ".join(repr(item) for item in list(items)[:EXAMPLES])
    return shown + (", ..." if len(items) > EXAMPLES else "")


def list_difference(expected, actual):
    """'' when equal, otherwise what is missing, extra or reordered (multisets: a duplicate counts)."""
    if expected == actual:
        return ""
    missing = list((Counter(expected) - Counter(actual)).elements())
    extra = list((Counter(actual) - Counter(expected)).elements())
    parts = [f"{len(missing)} missing ({examples(missing)})"] if missing else []
    parts += [f"{len(extra)} extra ({examples(extra)})"] if extra else []
    return "; ".join(parts) or f"same {len(actual)} bodies in another order"


def roster_difference(expected, actual):
    """'' when equal, otherwise missing and extra contacts and changed subscriptions."""
    parts = [f"missing {jid} ({sub})" for jid, sub in expected.items() if jid not in actual]
    parts += [f"extra {jid} ({sub})" for jid, sub in actual.items() if jid not in expected]
    parts += [
        f"{jid} {expected[jid]} -> {sub}" for jid, sub in actual.items() if jid in expected and expected[jid] != sub
    ]
    return ", ".join(parts)


async def barrier(clients, timeout):
    """Ping the server from each client: Prosody handles a session's stanzas in order, so the answer proves that
    everything the client sent before was processed (stored, routed, archived).  An error answer proves it too."""

    async def one(client):
        with contextlib.suppress(IqError):
            await client.plugin["xep_0199"].send_ping(slixmpp.JID(client.boundjid.domain), timeout=timeout)

    await asyncio.gather(*(one(client) for client in clients))


async def fetch_roster(client, timeout):
    """The roster as the server stores it: {contact: subscription}.  A plain roster get without 'ver', because
    slixmpp's get_roster sends the cached version and the server may then answer with no items at all."""
    iq = client.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    result = await iq.send(timeout=timeout)
    return {str(jid): item["subscription"] for jid, item in result["roster"]["items"].items()}


async def fetch_vcard_name(client, timeout):
    # A JID object and local=False: otherwise the plugin answers from its own cache instead of asking the server.
    own = slixmpp.JID(client.boundjid.bare)
    result = await client.plugin["xep_0054"].get_vcard(own, local=False, cached=False, timeout=timeout)
    return result["vcard_temp"]["FN"]


async def fetch_archive(client, timeout):
    """Every body in the account's archive, oldest first, paging through all of it.  slixmpp ends the iteration
    quietly on an error answer, so seed cross-checks the result against the messages it just exchanged."""

    async def collect():
        bodies = []
        async for result in client.plugin["xep_0313"].iterate(rsm={"max": PAGE}):
            text = result["mam_result"]["forwarded"]["stanza"]["body"]
            if text:  # receipts, markers and the like carry no body; only bodies identify our messages
                bodies.append(text)
        return bodies

    try:
        return await asyncio.wait_for(collect(), timeout)
    except TimeoutError as error:
        raise ProbeFailed(f"{client.boundjid.bare}: archive not read within {timeout} s") from error


async def log_in(run, jid, password):
    client = await connect(jid, password, run.options)
    # No await between connect() returning and here, so no stanza has been handled yet: subscription requests
    # still pending on the server (delivered after initial presence) must never be approved automatically,
    # least of all during a check, which must not change the server's data.
    client.auto_authorize = None
    client.auto_subscribe = False
    client.register_plugin("xep_0054")  # connect()'s client lacks vcard-temp; plugins can be added at any time
    if not (client.mechanism or "").startswith("SCRAM-"):
        client.abort()
        raise ProbeFailed(f"{jid} authenticated with {client.mechanism}, not SCRAM")
    run.clients[jid] = client
    return client


async def step_login(run):
    """Every account logs in; a failed one is reported and the others carry on (checks then skip it)."""
    for jid, password in run.accounts:
        if jid in run.clients:
            continue
        try:
            await log_in(run, jid, password)
        except ProbeFailed as error:
            run.failed_logins[jid] = str(error)
    if run.failed_logins:
        raise ProbeFailed(
            f"{len(run.failed_logins)} of {len(run.jids)} failed: " + "; ".join(run.failed_logins.values())
        )
    return f"{len(run.jids)} accounts via STARTTLS and SCRAM"


async def seed_roster(run):
    """Subscribe and approve in both directions for every pair, then wait until every roster shows 'both'."""
    clients = [run.client(jid) for jid in run.jids]
    pairs = list(combinations(clients, 2))
    for one, other in pairs:
        one.send_presence(pto=other.boundjid.bare, ptype="subscribe")
        other.send_presence(pto=one.boundjid.bare, ptype="subscribe")
    # Approve only once every request is stored as pending: an approval that overtakes its request would be a
    # pre-approval, which not every Prosody honours.  Seeding again: both are no-ops for existing contacts.
    await barrier(clients, run.options.timeout)
    for one, other in pairs:
        one.send_presence(pto=other.boundjid.bare, ptype="subscribed")
        other.send_presence(pto=one.boundjid.bare, ptype="subscribed")
    await barrier(clients, run.options.timeout)
    rosters = {jid: await wait_mutual(run, jid) for jid in run.jids}
    run.state["expected"] = {jid: {"roster": roster} for jid, roster in rosters.items()}
    items = sum(len(roster) for roster in rosters.values())
    return f"{len(rosters)} accounts, {items} roster items, every pair 'both'"


async def wait_mutual(run, jid):
    """The account's roster once every other account is in it with subscription 'both'."""
    client, peers = run.client(jid), [peer for peer in run.jids if peer != jid]
    deadline = time.monotonic() + run.options.timeout
    while True:
        roster = await fetch_roster(client, run.options.timeout)
        pending = [f"{peer} is {roster.get(peer, 'absent')}" for peer in peers if roster.get(peer) != "both"]
        if not pending:
            return roster
        if time.monotonic() > deadline:
            raise ProbeFailed(f"{jid}: after {run.options.timeout} s " + ", ".join(pending))
        await asyncio.sleep(POLL)


async def seed_vcard(run):
    """Each account publishes its vCard and reads the server's copy back."""
    for jid in run.jids:
        client = run.client(jid)
        vcard = client.plugin["xep_0054"].make_vcard()
        vcard["FN"] = vcard_name(jid)
        await client.plugin["xep_0054"].publish_vcard(vcard, timeout=run.options.timeout)
        stored = await fetch_vcard_name(client, run.options.timeout)
        if stored != vcard_name(jid):
            raise ProbeFailed(f"{jid}: published FN {vcard_name(jid)!r}, server returns {stored!r}")
        run.state["expected"][jid]["vcard_fn"] = stored
    return f"{len(run.jids)} vCards published and read back"


async def seed_messages(run):
    """Every pair exchanges one chat message each way; each must arrive before the next is sent."""
    pairs = list(combinations(run.jids, 2))
    for one, other in pairs:
        for sender, recipient in ((one, other), (other, one)):
            text = body("chat")
            run.client(sender).send_message(mto=recipient, mbody=text, mtype="chat")
            await receive(run.client(recipient).messages, text, run.options.timeout, f"{sender} -> {recipient}")
            run.sent[sender].append(text)
            run.sent[recipient].append(text)
    return f"{2 * len(pairs)} chat messages between {len(pairs)} pairs"


async def seed_offline(run):
    """The last account logs out; every other account leaves it one message."""
    recipient = run.client(run.recipient)
    # Its archive can only be read while it is online (logging in again would fetch the offline messages), so
    # read it now; the mam step adds the offline bodies, which Prosody archives for the recipient on arrival.
    run.recipient_archive = await fetch_archive(recipient, run.options.timeout)
    try:
        await asyncio.wait_for(recipient.disconnect(), run.options.timeout)
    except TimeoutError as error:
        raise ProbeFailed(f"{run.recipient}: logout not finished within {run.options.timeout} s") from error
    # Keep the client object until the end: if it were garbage-collected now, slixmpp would cancel its sending
    # task while dropping it (see finish_tasks).
    run.retired.append(run.clients.pop(run.recipient))
    senders = [run.client(jid) for jid in run.jids[:-1]]
    await wait_offline(run, senders)
    for sender in senders:
        text = body("offline")
        sender.send_message(mto=run.recipient, mbody=text, mtype="chat")
        run.offline_bodies.append(text)
        run.sent[sender.boundjid.bare].append(text)
        await barrier([sender], run.options.timeout)  # stored before the next one: keeps the archive order known
    return f"{len(senders)} messages left for offline {run.recipient}"


async def wait_offline(run, clients):
    """Until every client saw the recipient's unavailable presence, i.e. the server ended its session; a message
    sent earlier could still reach the old session instead of offline storage."""
    deadline = time.monotonic() + run.options.timeout
    while any(client.client_roster[run.recipient].resources for client in clients):
        if time.monotonic() > deadline:
            raise ProbeFailed(f"{run.recipient} still online for its contacts after {run.options.timeout} s")
        await asyncio.sleep(POLL)


async def seed_archives(run):
    """Record every archive after the offline messages went out, and make sure it holds this run's messages."""
    for jid in run.jids[:-1]:
        run.state["expected"][jid]["mam"] = await fetch_archive(run.client(jid), run.options.timeout)
    run.state["expected"][run.recipient]["mam"] = run.recipient_archive + run.offline_bodies
    for jid in run.jids:
        missing = list((Counter(run.sent[jid]) - Counter(run.state["expected"][jid]["mam"])).elements())
        if missing:
            raise ProbeFailed(f"{jid}: archive lacks {len(missing)} messages of this run ({examples(missing)})")
    bodies = sum(len(entry["mam"]) for entry in run.state["expected"].values())
    return f"{len(run.jids)} archives recorded, {bodies} bodies"


async def seed_state(run):
    run.state = {
        "format": STATE_FORMAT,
        "seeded": datetime.now(UTC).isoformat(timespec="seconds"),
        "accounts": run.jids,
        "offline": {"recipient": run.recipient, "bodies": run.offline_bodies, "pending": True},
        "expected": run.state["expected"],
    }
    save_state(run)
    return f"expectations for {len(run.jids)} accounts written to {run.state_path}"


def save_state(run):
    # Write and rename, so an interrupted run never leaves half a state file behind.
    partial = run.state_path.with_name(run.state_path.name + ".partial")
    partial.write_text(json.dumps(run.state, indent=1, ensure_ascii=False) + "\n")
    partial.replace(run.state_path)


def load_state(run):
    """The seeded expectations, for exactly the accounts in the accounts file (in the same order)."""
    try:
        state = json.loads(run.state_path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{run.state_path}: no seeded state ({error}); run --phase seed first") from error
    if state.get("format") != STATE_FORMAT or state.get("accounts") != run.jids:
        raise SystemExit(f"{run.state_path}: seeded for other accounts or by another version; seed again")
    run.state = state


async def check_offline(run):
    """The offline account receives exactly the recorded bodies, or none if an earlier check already got them."""
    offline = run.state["offline"]
    expected = offline["bodies"] if offline["pending"] else []
    client = run.client(run.recipient)
    # Prosody sent them, and deleted them from offline storage, at login: whatever arrives, later checks expect none.
    offline["pending"], run.state_changed = False, True
    received = await collect_offline(client, expected, run.options.timeout)
    difference = list_difference(sorted(expected), sorted(received))
    if difference:
        raise ProbeFailed(f"{run.recipient}: {difference} (of {len(expected)} expected)")
    if not expected:
        return f"{run.recipient} got none, as expected: the recorded ones were delivered to an earlier check"
    return f"{run.recipient} received the {len(expected)} recorded offline messages"


async def collect_offline(client, expected, timeout):
    """Bodies delivered since login.  Prosody sends offline messages while handling the initial presence, so
    after a ping answer they are all queued; wait longer only for ones still missing."""
    await barrier([client], timeout)
    received = drain_bodies(client.messages)
    deadline = time.monotonic() + timeout
    while Counter(expected) - Counter(received) and (left := deadline - time.monotonic()) > 0:
        try:
            stanza = await asyncio.wait_for(client.messages.get(), left)
        except TimeoutError:
            break
        received += [stanza["body"]] if stanza["body"] else []
    return received + drain_bodies(client.messages)


def drain_bodies(queue):
    """Bodies of the queued messages; PEP notifications (vCard, avatar) arrive as body-less headlines."""
    stanzas = [queue.get_nowait() for _ in range(queue.qsize())]
    return [stanza["body"] for stanza in stanzas if stanza["body"]]


async def compare_accounts(run, what, read, differ):
    """Compare one kind of data for every logged-in account with the state; fail naming each difference."""
    expected = run.state["expected"]
    problems, compared, items = [], 0, 0
    for jid in run.jids:
        if jid not in run.clients:
            problems.append(f"{jid} not checked (no session)")
            continue
        actual = await read(run.clients[jid], run.options.timeout)
        difference = differ(expected[jid][what], actual)
        compared, items = compared + 1, items + (len(actual) if isinstance(actual, dict | list) else 1)
        if difference:
            problems.append(f"{jid}: {difference}")
    if problems:
        raise ProbeFailed("; ".join(problems))
    return compared, items


async def check_roster(run):
    accounts, items = await compare_accounts(run, "roster", fetch_roster, roster_difference)
    return f"{accounts} accounts, {items} roster items equal"


async def check_vcard(run):
    def differ(expected, actual):
        return "" if expected == actual else f"FN {actual!r}, expected {expected!r}"

    accounts, _ = await compare_accounts(run, "vcard_fn", fetch_vcard_name, differ)
    return f"{accounts} accounts, vCard FN equal"


async def check_archives(run):
    # Runs after check_offline on purpose: the seed phase recorded the archives after the offline messages were
    # stored, and Prosody archives a message for an offline recipient when it arrives, not when it is delivered.
    accounts, items = await compare_accounts(run, "mam", fetch_archive, list_difference)
    return f"{accounts} accounts, {items} archived bodies equal and in the same order"


STEPS = {
    "seed": [
        ("login", step_login),
        ("roster", seed_roster),
        ("vcard", seed_vcard),
        ("message", seed_messages),
        ("offline", seed_offline),
        ("mam", seed_archives),
        ("state", seed_state),
    ],
    "check": [
        ("login", step_login),
        ("offline", check_offline),
        ("roster", check_roster),
        ("vcard", check_vcard),
        ("mam", check_archives),
    ],
}


async def run_steps(options):
    run = Run(options)
    if options.phase == "check":
        load_state(run)
    passed = True
    for name, step in STEPS[options.phase]:
        started = time.monotonic()
        try:
            detail, ok = await step(run), True
        except (ProbeFailed, IqError, IqTimeout, OSError) as error:
            detail, ok = describe(error), False
        passed &= ok
        record = {"check": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}
        print(json.dumps(record, ensure_ascii=False), flush=True)
        if not ok and options.phase == "seed":
            break  # later steps build on this one, and a half-seeded state must not replace a good one
    if run.state_changed:
        save_state(run)
    await asyncio.gather(*(client.disconnect() for client in run.clients.values()))
    await finish_tasks()
    return passed


async def finish_tasks():
    """End slixmpp's background tasks while the loop runs.  slixmpp cancels a client's sending task only when the
    client is garbage-collected, which may happen after the loop closed: "Task was destroyed but it is pending"."""
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS)")
    parser.add_argument("--ca", help="CA file the server certificate must chain to (default: the system's trust store)")
    parser.add_argument(
        "--accounts-file", required=True, help="lines 'jid password', 3 or more; the last gets offline messages"
    )
    parser.add_argument("--state", required=True, help="JSON file: written by seed, read (and updated) by check")
    parser.add_argument("--phase", choices=sorted(STEPS), required=True)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    return parser.parse_args(argv)


def main(argv=None):
    return 0 if asyncio.run(run_steps(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
