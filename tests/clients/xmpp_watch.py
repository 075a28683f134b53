"""Keep XMPP traffic flowing to Prosody servers during a rollout and prove that nothing accepted was lost.

Per target, a sender and a receiver stay logged in (STARTTLS verified against --ca, SCRAM only) and log in again
every RETRY seconds after losing their session.  Every --interval seconds the sender sends message n to the receiver
and message n to an offline account, then pings its own server (XEP-0199).

The rule: messages n are *accepted* only when the ping sent after them is answered with a result.  Prosody handles
a session's stanzas in order, so that result proves the server has processed messages n (delivered or stored them).
Messages whose ping never came back are *unconfirmed*: they may or may not arrive; neither counts against the server.

The offline account logs in only after the stop file appears: its messages must survive restarts in offline storage.
Then the watch waits up to --drain-timeout seconds for every accepted message (bodies carry a token of this run, so
older messages never count).  Lost sessions are counted per client: a reload should cause none, a restart one or
more.  Exit 0 when every target accepted messages and none is missing, 1 otherwise, 2 for bad arguments.
"""

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import secrets
import ssl
import sys
import time
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

RETRY = 0.5  # seconds between login attempts
TIMEOUT = 10.0  # for one login attempt (TCP to session) and for one ping
POLL = 0.2  # how often the stop file and the drain are checked
ROLES = ("sender", "receiver", "offline")
SCRAM = [f"SCRAM-SHA-{bits}{plus}" for bits in (1, 256, 512) for plus in ("", "-PLUS")]  # never PLAIN, even in TLS


class Client(slixmpp.ClientXMPP):
    """One account that logs in again whenever it loses its session and remembers which watch messages it got."""

    def __init__(self, account, target, context, pattern):
        super().__init__(*account, plugin_config={"feature_mechanisms": {"use_mechs": SCRAM}})
        self.enable_direct_tls, self.enable_starttls, self.enable_plaintext = False, True, False  # STARTTLS only
        self.register_plugin("xep_0199")
        self.ssl_context, self.address = context, (target["address"], target["port"])
        self.pattern, self.received, self.errors = pattern, set(), []
        self.sessions, self.disconnects, self.longest_gap = 0, 0, 0.0
        self.online = self.closing = False
        self.lost_at = None  # start of the current time without a session, after a lost one
        self.outcome = None  # future settled by whatever ends the current login attempt or session
        self.last_outcome = "no login attempt finished"  # reported if the account never gets a session
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("connection_failed", lambda error: self.settle(f"connection failed: {error}"))
        self.add_event_handler("failed_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("failed_all_auth", lambda _: self.fail("no SCRAM login possible"))
        self.add_event_handler("ssl_invalid_chain", self.on_tls_error)

    def settle(self, outcome):
        self.last_outcome = outcome
        if self.outcome and not self.outcome.done():
            self.outcome.set_result(outcome)

    def fail(self, reason):
        # Keep the first reason only: a refused SCRAM login is followed by "no mechanism left".
        self.errors = self.errors or [f"{self.boundjid.bare}: {reason}"]
        self.settle("fatal")

    def on_tls_error(self, error):
        # A handshake cut short by a restarting server is an SSLError too: only a refused certificate is fatal.
        if isinstance(error, ssl.SSLCertVerificationError):
            self.fail(f"server certificate refused: {error.verify_message}")
        else:
            self.settle(f"TLS handshake failed: {error}")

    def on_session_start(self, _):
        self.send_presence(ppriority=0)  # priority >= 0: Prosody delivers chats and stored offline messages
        self.online, self.sessions = True, self.sessions + 1
        self.longest_gap, self.lost_at = self.gap(), None
        self.settle("session")

    def on_disconnected(self, _):
        if self.online and not self.closing:
            self.disconnects, self.lost_at = self.disconnects + 1, time.monotonic()
        self.online = False
        self.settle("disconnected")

    def on_message(self, message):
        if message["type"] in ("chat", "normal") and (match := self.pattern.fullmatch(message["body"])):
            self.received.add(int(match[1]))

    def problems(self):
        never = f"{self.boundjid.bare}: never logged in (last attempt: {self.last_outcome})"
        return self.errors if self.errors or self.sessions else [never]

    def gap(self):  # the longest time without a session so far, counting the current one
        return max(self.longest_gap, 0.0 if self.lost_at is None else time.monotonic() - self.lost_at)

    def expect(self):
        self.outcome = asyncio.get_running_loop().create_future()
        return self.outcome

    async def stay_connected(self):
        """Log in, and again RETRY seconds after every lost session or failed attempt, until closing."""
        while not (self.closing or self.errors):
            waiting = self.expect()
            self.connect(host=self.address[0], port=self.address[1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting, TIMEOUT)
            while self.online:  # the session lasts until the disconnected event settles the next outcome
                await self.expect()
            # Stop slixmpp's own retries (they back off to minutes) and any half-open connection: we retry here.
            self.cancel_connection_attempt()
            self.abort()
            await asyncio.sleep(RETRY)


class Watch:
    """One target: its three clients, the messages sent and which of them the server accepted."""

    def __init__(self, target, context, token):
        self.target, self.token = target, token
        pattern = re.compile(rf"watch {re.escape(target['name'])} (\d+) run {token}")
        self.clients = {role: Client(target[role], target, context, pattern) for role in ROLES}
        self.sent, self.accepted, self.unconfirmed, self.errors = 0, set(), set(), []

    async def send_loop(self, stopping, interval):
        """Every interval, while the sender has a session: messages n to receiver and offline, then a ping."""
        sender, pings = self.clients["sender"], []
        while not stopping.is_set():
            if sender.online:
                self.sent += 1
                body = f"watch {self.target['name']} {self.sent} run {self.token}"
                for role in ("receiver", "offline"):
                    sender.send_message(mto=self.target[role][0], mbody=body, mtype="chat")
                pings.append(asyncio.ensure_future(self.confirm(self.sent)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
        await asyncio.gather(*pings)  # each settles within TIMEOUT

    async def confirm(self, number):
        try:
            await self.clients["sender"].plugin["xep_0199"].send_ping(self.target["domain"], timeout=TIMEOUT)
            self.accepted.add(number)
        except (IqError, IqTimeout):  # an error answer or none at all: no proof
            self.unconfirmed.add(number)

    def complete(self):
        """Every accepted message arrived, and the offline account logged in (or cannot)."""
        receiver, offline = self.clients["receiver"], self.clients["offline"]
        return bool(offline.sessions or offline.errors) and self.accepted <= receiver.received & offline.received

    def report(self):
        online, offline = self.clients["receiver"].received, self.clients["offline"].received
        return {
            "sent": self.sent,
            "accepted": len(self.accepted),
            "delivered_online": len(online),
            "missing_online": sorted(self.accepted - online),
            "delivered_offline": len(offline),
            "missing_offline": sorted(self.accepted - offline),
            "unconfirmed": sorted(self.unconfirmed),
            "disconnects": {role: self.clients[role].disconnects for role in ("sender", "receiver")},
            "longest_gap_seconds": round(max(self.clients[role].gap() for role in ("sender", "receiver")), 2),
            "errors": self.errors + [error for client in self.clients.values() for error in client.problems()],
        }


def passed(result):
    return result["accepted"] > 0 and not (result["missing_online"] or result["missing_offline"] or result["errors"])


def summary(name, result):
    n = {key: len(value) if isinstance(value, list) else value for key, value in result.items()} | result["disconnects"]
    return (
        f"{'OK  ' if passed(result) else 'FAIL'} {name}: accepted {n['accepted']} of {n['sent']} sent "
        f"({n['unconfirmed']} unconfirmed); receiver got {n['delivered_online']}, missing {n['missing_online']}; "
        f"offline got {n['delivered_offline']}, missing {n['missing_offline']}; disconnects sender "
        f"{n['sender']}, receiver {n['receiver']}; longest gap {n['longest_gap_seconds']} s"
    ) + "".join(f"; error: {error}" for error in result["errors"])


async def wait_for_stop(options, watches):
    """Poll the stop file; say once when every sender and receiver has a session.  False after --max-seconds."""
    deadline, ready = time.monotonic() + options.max_seconds, False
    while not Path(options.stop_file).exists() and time.monotonic() < deadline:
        if not ready and all(w.clients[r].online for w in watches for r in ("sender", "receiver")):
            ready = True
            print("ready: every sender and receiver has a session", flush=True)
        await asyncio.sleep(POLL)
    return Path(options.stop_file).exists()


async def run(options, targets, context):
    token = secrets.token_hex(4)
    watches = [Watch(target, context, token) for target in targets]
    keepers = [asyncio.ensure_future(w.clients[r].stay_connected()) for w in watches for r in ("sender", "receiver")]
    stopping = asyncio.Event()
    senders = [asyncio.ensure_future(w.send_loop(stopping, options.interval)) for w in watches]
    if not await wait_for_stop(options, watches):
        for w in watches:
            w.errors.append(f"the stop file did not appear within {options.max_seconds} s")
    stopping.set()
    await asyncio.gather(*senders)  # the accepted set is final once every ping has settled
    keepers += [asyncio.ensure_future(w.clients["offline"].stay_connected()) for w in watches]
    deadline = time.monotonic() + options.drain_timeout
    while not all(w.complete() for w in watches) and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    results = {w.target["name"]: w.report() for w in watches}
    clients = [client for w in watches for client in w.clients.values()]
    for client in clients:
        client.closing = True  # lost sessions from here on are ours, and stay_connected ends
    await asyncio.gather(*(client.disconnect(wait=2.0) for client in clients))
    await asyncio.wait(keepers, timeout=5)
    return results


def check_target(target, names):
    """Raise ValueError naming what makes this target entry unusable."""

    def require(ok, problem):
        if not ok:
            raise ValueError(problem)

    require(isinstance(target, dict), "not an object")
    missing = [key for key in ("name", "address", "port", "domain", *ROLES) if key not in target]
    require(not missing, f"lacks {', '.join(missing)}")
    require(isinstance(target["name"], str) and target["name"] not in {"", *names}, "name must be unique, not empty")
    # ip_address raises ValueError, with a clear message, for what is no IP address at all
    require(ipaddress.ip_address(str(target["address"])).is_loopback, f"address {target['address']} is not loopback")
    require(isinstance(target["port"], int) and 0 < target["port"] < 65536, "port must be from 1 to 65535")
    for role in ROLES:
        account = target[role]
        require(isinstance(account, list) and [type(x) for x in account] == [str, str], f"{role}: not [jid, password]")
        jid = slixmpp.JID(account[0])
        require(jid.user and jid.domain == target["domain"], f"{role} {jid} is not an account of {target['domain']}")
    require(len({target[role][0] for role in ROLES}) == len(ROLES), "needs three different accounts")


def read_targets(parser, path):
    """The targets list, or exit 2 naming the problem (never showing the file's content: it holds passwords)."""
    try:
        if Path(path).stat().st_mode & 0o077:
            parser.error(f"--targets {path} holds passwords: make it readable by its owner only (chmod 600)")
        targets = json.loads(Path(path).read_text())
    except OSError as error:
        parser.error(f"--targets {path}: {error.strerror}")
    except ValueError as error:  # not UTF-8 or not JSON; the message gives the position, not the content
        parser.error(f"--targets {path}: not a JSON file ({error})")
    if not isinstance(targets, list) or not targets:
        parser.error(f"--targets {path}: expected a non-empty list of targets")
    for index, target in enumerate(targets):
        try:
            check_target(target, {t["name"] for t in targets[:index]})
        except ValueError as problem:  # InvalidJID is a ValueError too
            parser.error(f"--targets {path}: target {index + 1} of {len(targets)}: {problem}")
    return targets


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", required=True, help="JSON list of targets (mode 0600: it holds passwords)")
    parser.add_argument("--ca", required=True, help="CA file the servers' certificates must chain to")
    parser.add_argument("--stop-file", required=True, help="stop sending and drain once this file exists")
    parser.add_argument("--report", required=True, help="where to write the JSON report")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between messages (default 0.5)")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to wait for delivery")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="fail if no stop file by then")
    options = parser.parse_args(argv)
    for name in ("interval", "drain_timeout", "max_seconds"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive number of seconds")
    try:
        context = ssl.create_default_context(cafile=options.ca)
    except (OSError, ssl.SSLError) as error:
        parser.error(f"--ca {options.ca}: cannot load it as a CA file ({error})")
    if Path(options.stop_file).exists():
        parser.error(f"--stop-file {options.stop_file} exists already: remove it before starting the watch")
    if not Path(options.report).parent.is_dir():
        parser.error(f"--report {options.report}: its directory does not exist")
    return options, read_targets(parser, options.targets), context


def main(argv=None):
    # Quiet slixmpp's "Unknown stanza interface" warnings: pings of a lost session still match incoming elements.
    logging.getLogger().setLevel(logging.ERROR)
    options, targets, context = parse_arguments(argv)
    results = asyncio.run(run(options, targets, context))
    Path(options.report).write_text(json.dumps(results, indent=2) + "\n")
    for name, result in results.items():
        print(summary(name, result), flush=True)
    return 0 if all(passed(result) for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
