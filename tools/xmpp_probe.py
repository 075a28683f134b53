"""Prove a deployed Prosody works for real clients.

Two accounts log in over STARTTLS (the client verifies the server
certificate against the environment's CA and must authenticate with SCRAM),
exchange a message, use a group chat, upload and download a file (XEP-0363),
find the message in their archive (XEP-0313) and leave a message for an
offline user that must arrive after Prosody restarts.

Each check prints one JSON line {"check", "ok", "detail", "seconds"}; the exit
code is 0 only when every requested check passed.  Passwords come from a file
(lines "jid password") so they never appear in a process list.  Only the
given loopback address is contacted: upload URLs are fetched from it too,
with TLS verified for the URL's own host name.
"""

import argparse
import asyncio
import http.client
import json
import secrets
import socket
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import slixmpp

PHASE_CHECKS = {
    "before-restart": ["login", "message", "muc", "upload", "mam", "offline"],
    "after-restart": ["login", "mam", "offline"],
}


class ProbeFailed(Exception):
    """A check failed; the message says why."""


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that queues what it receives and remembers its SASL mechanism."""

    def __init__(self, jid, password, ssl_context):
        super().__init__(jid, password)
        self.ssl_context = ssl_context
        self.enable_direct_tls = False  # STARTTLS only: the port under test is the client port
        self.enable_starttls = True
        self.enable_plaintext = False
        for plugin in ("xep_0030", "xep_0045", "xep_0313", "xep_0363", "xep_0199"):
            self.register_plugin(plugin)
        self.messages = asyncio.Queue()
        self.groupchat = asyncio.Queue()
        self.add_event_handler(
            "message", lambda msg: self.messages.put_nowait(msg) if msg["type"] != "groupchat" else None
        )
        self.add_event_handler("groupchat_message", self.groupchat.put_nowait)

    @property
    def mechanism(self):
        mech = self.plugin["feature_mechanisms"].mech
        return mech.name if mech else None


async def connect(jid, password, options):
    """Log in and send initial presence; raise ProbeFailed on any problem."""
    context = ssl.create_default_context(cafile=options.ca)
    client = Client(jid, password, context)
    started = asyncio.get_running_loop().create_future()

    def settle(result):
        if not started.done():
            started.set_result(result)

    client.add_event_handler("session_start", lambda _: settle("ok"))
    client.add_event_handler("failed_auth", lambda _: settle("authentication failed"))
    client.add_event_handler("connection_failed", lambda error: settle(f"connection failed: {error}"))
    client.add_event_handler("tls_failed", lambda error: settle(f"TLS failed: {error}"))
    issuer = options.ca or "a CA the system trusts"
    client.add_event_handler("ssl_invalid_chain", lambda _: settle(f"server certificate not issued by {issuer}"))
    client.connect(host=options.address, port=options.port)
    try:
        outcome = await asyncio.wait_for(started, options.timeout)
    except TimeoutError as error:
        client.abort()
        raise ProbeFailed(f"{jid}: no session within {options.timeout} s") from error
    if outcome != "ok":
        client.abort()
        raise ProbeFailed(f"{jid}: {outcome}")
    client.send_presence()
    return client


async def receive(queue, wanted_body, timeout, what):
    """Wait for a stanza with this body on the queue."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            stanza = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        if stanza["body"] == wanted_body:
            return stanza
    raise ProbeFailed(f"{what}: {wanted_body!r} did not arrive within {timeout} s")


def unique(label):
    return f"prosody-stack probe {label} {secrets.token_hex(6)}"


async def check_login(probe):
    """Both accounts log in over STARTTLS with the expected SASL mechanism (SCRAM unless told otherwise)."""
    details = []
    for jid, password in probe.accounts:
        client = await connect(jid, password, probe.options)
        probe.clients[jid] = client
        if not (client.mechanism or "").startswith(probe.options.sasl):
            raise ProbeFailed(f"{jid} authenticated with {client.mechanism}, not {probe.options.sasl}")
        details.append(f"{jid} via STARTTLS, {client.mechanism}")
    return "; ".join(details)


async def ensure_clients(probe):
    if len(probe.clients) < len(probe.accounts):
        await check_login(probe)
    return [probe.clients[jid] for jid, _ in probe.accounts]


async def check_message(probe):
    """Account 1 sends a message that account 2 receives."""
    alice, bob = await ensure_clients(probe)
    body = unique("message")
    alice.send_message(mto=bob.boundjid.bare, mbody=body, mtype="chat")
    await receive(bob.messages, body, probe.options.timeout, "message")
    probe.state["message"] = body
    return f"{alice.boundjid.bare} -> {bob.boundjid.bare}"


async def check_muc(probe):
    """Account 1 joins a new room and sees its own groupchat message echoed."""
    alice, _bob = await ensure_clients(probe)
    room = f"probe-{secrets.token_hex(4)}@{probe.options.muc}"
    await alice.plugin["xep_0045"].join_muc_wait(room, "probe", timeout=probe.options.timeout, maxstanzas=0)
    body = unique("groupchat")
    alice.send_message(mto=room, mbody=body, mtype="groupchat")
    await receive(alice.groupchat, body, probe.options.timeout, f"groupchat in {room}")
    return f"joined {room}, message echoed"


def https_request(options, method, url, body=None, headers=None):
    """One HTTPS request to the server's address, verifying TLS for the URL's host."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=options.ca)
    raw = socket.create_connection((options.address, parts.port or 443), timeout=options.timeout)
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, context=context, timeout=options.timeout
    )
    connection.sock = context.wrap_socket(raw, server_hostname=parts.hostname)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


async def check_upload(probe):
    """Account 1 gets an upload slot, PUTs random bytes and GETs the same bytes back."""
    alice, _bob = await ensure_clients(probe)
    data = secrets.token_bytes(32 * 1024)
    iq = await alice.plugin["xep_0363"].request_slot(
        slixmpp.JID(probe.options.upload),
        "probe.bin",
        len(data),
        "application/octet-stream",
        timeout=probe.options.timeout,
    )
    slot = iq["http_upload_slot"]
    put_url, get_url = slot["put"]["url"], slot["get"]["url"]
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    headers.update(
        {header["name"]: header["value"] for header in slot["put"]["headers"]} if slot["put"]["headers"] else {}
    )
    status, _ = await asyncio.to_thread(https_request, probe.options, "PUT", put_url, data, headers)
    if status not in (200, 201):
        raise ProbeFailed(f"PUT {put_url} answered {status}")
    status, fetched = await asyncio.to_thread(https_request, probe.options, "GET", get_url)
    if status != 200 or fetched != data:
        raise ProbeFailed(
            f"GET {get_url} answered {status} with {len(fetched)} bytes, expected the {len(data)} uploaded"
        )
    return f"{len(data)} bytes up and down through {urlsplit(get_url).hostname}"


async def check_mam(probe):
    """Account 1 finds the message of the message check in its archive."""
    alice, bob = await ensure_clients(probe)
    wanted = probe.state.get("message")
    if not wanted:
        raise ProbeFailed("the message check did not run first; nothing to look for")
    found = []
    async for result in alice.plugin["xep_0313"].iterate(
        with_jid=slixmpp.JID(bob.boundjid.bare), reverse=True, total=50
    ):
        found.append(result["mam_result"]["forwarded"]["stanza"]["body"])
        if wanted in found:
            return f"found among the last {len(found)} archived messages"
    raise ProbeFailed(f"{wanted!r} is not among {len(found)} archived messages")


async def check_offline(probe):
    """Before a restart: leave a message for offline account 2.  After: account 2 receives it."""
    (alice_jid, alice_password), (bob_jid, bob_password) = probe.accounts
    if probe.options.phase == "before-restart":
        for client in probe.clients.values():
            client.disconnect()
        probe.clients.clear()
        await asyncio.sleep(0.5)  # let the server see account 2 leave
        alice = await connect(alice_jid, alice_password, probe.options)
        probe.clients[alice_jid] = alice
        body = unique("offline")
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
        await asyncio.sleep(0.5)
        probe.state["offline"] = body
        return f"left a message for offline {bob_jid}"
    body = probe.state.get("offline")
    if not body:
        raise ProbeFailed("no offline message recorded by the before-restart phase")
    bob = probe.clients.get(bob_jid) or await connect(bob_jid, bob_password, probe.options)
    probe.clients[bob_jid] = bob
    await receive(bob.messages, body, probe.options.timeout, "offline message")
    return f"{bob_jid} received the message left before the restart"


CHECKS = {
    "login": check_login,
    "message": check_message,
    "muc": check_muc,
    "upload": check_upload,
    "mam": check_mam,
    "offline": check_offline,
}


def describe(error):
    """One readable sentence for a failed check."""
    if isinstance(error, slixmpp.exceptions.IqError):
        return f"{error.iq['from']} answered {error.condition} ({error.etype}): {error.text or 'no text'}"
    if isinstance(error, slixmpp.exceptions.IqTimeout):
        return f"{error.iq['to']} did not answer in time"
    if isinstance(error, ProbeFailed):
        return str(error)
    return f"{type(error).__name__}: {error}"


class Probe:
    """The options, the accounts, the connected clients and the state kept across phases."""

    def __init__(self, options):
        self.options = options
        self.accounts = read_accounts(options.accounts_file)
        self.clients = {}
        self.state_path = Path(options.state) if options.state else None
        self.state = json.loads(self.state_path.read_text()) if self.state_path and self.state_path.exists() else {}


def read_accounts(path):
    accounts = [tuple(line.split(None, 1)) for line in Path(path).read_text().splitlines() if line.strip()]
    if len(accounts) != 2 or any(len(account) != 2 for account in accounts):
        raise SystemExit(f"{path}: expected two lines 'jid password'")
    return accounts


async def run(options):
    probe = Probe(options)
    wanted = [check for check in PHASE_CHECKS[options.phase] if check in options.checks]
    passed = True
    for name in wanted:
        started = time.monotonic()
        try:
            detail, ok = await CHECKS[name](probe), True
        except (ProbeFailed, slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout, OSError) as error:
            detail, ok = describe(error), False
        passed &= ok
        record = {"check": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}
        print(json.dumps(record), flush=True)
    if probe.state_path:
        probe.state_path.write_text(json.dumps(probe.state))
    for client in probe.clients.values():
        client.disconnect()
    await asyncio.sleep(0.2)
    return passed


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS)")
    parser.add_argument("--ca", help="CA file the server certificate must chain to (default: the system's trust store)")
    parser.add_argument("--accounts-file", required=True, help="two lines 'jid password'")
    parser.add_argument("--muc", help="MUC component, e.g. conference.example.com")
    parser.add_argument("--upload", help="HTTP upload component, e.g. upload.example.com")
    parser.add_argument(
        "--sasl",
        default="SCRAM-",
        help="mechanism (prefix) the login must use; PLAIN for accounts checked against a directory such as LDAP",
    )
    parser.add_argument("--state", help="file keeping what the after-restart phase checks (offline check only)")
    parser.add_argument("--phase", choices=sorted(PHASE_CHECKS), default="before-restart")
    parser.add_argument(
        "--checks", default=",".join(CHECKS), type=lambda text: text.split(","), help="comma-separated subset to run"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    return parser.parse_args(argv)


def main(argv=None):
    return 0 if asyncio.run(run(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
