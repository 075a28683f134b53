"""Prove that web clients can use a deployed Prosody: XMPP over BOSH and over WebSocket.

Browser clients cannot open TCP connections; they reach Prosody through its HTTPS server, by BOSH (XEP-0124 with
XEP-0206: XMPP carried in long-polled HTTP requests) or by WebSocket (RFC 7395).  These paths share little with the
client port that tools/xmpp_probe.py checks: other modules (mod_bosh, mod_websocket), another listener (https_ports),
and their own idea of a "secure" session, which decides whether SASL is offered at all.  A deployment can pass the
TCP probe and still fail every web client, so each transport is checked here the way a web client uses it.

Per transport, account 1 opens a session through it, authenticates (SCRAM-SHA-256 or SCRAM-SHA-1 when offered,
checking the server's signature too; PLAIN only when no SCRAM is offered, and then only inside the verified TLS
connection), restarts the stream, binds a resource and sends initial presence.  Account 2 logs in over the client
port with the TCP client of tools/xmpp_probe.py.  Account 1 sends account 2 a message, account 2 answers to account
1's bare JID (so the answer only arrives if the web session's presence counted), and account 1 closes its session
the way a client does.

Each transport prints one JSON line {"check", "ok", "detail", "seconds"}; the exit code is 0 only when every requested
check passed.  Passwords come from a file (lines "jid password") so they never appear in a process list.  Only the
given loopback address is contacted; TLS is verified against --ca for the accounts' domain, as a browser verifies it
for the host name of the URL.  BOSH uses the standard library only; WebSocket uses the websockets package.
"""

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import secrets
import socket
import ssl
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import websockets
from websockets.asyncio.client import connect as websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from xmpp_probe import ProbeFailed, connect, describe, read_accounts, receive  # the project's one way to log in

HTTPBIND = "http://jabber.org/protocol/httpbind"
XBOSH = "urn:xmpp:xbosh"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
STREAM = "http://etherx.jabber.org/streams"
STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION = "urn:ietf:params:xml:ns:xmpp-session"
CLIENT = "jabber:client"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# Requests go out one at a time, so a request the server has nothing to answer delays the next step by up to this
# many seconds (XEP-0124 "wait").  Real clients hold for a minute; a check wants to be quick.
BOSH_WAIT = 2
# Strongest first.  No -PLUS variants: neither transport gives this client a TLS channel binding to offer.
SCRAM = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}


def qname(namespace, name):
    return f"{{{namespace}}}{name}"


def element(tag, xmlns=None, attributes=None, *, text=None, children=()):
    """Build an element.  A literal xmlns attribute keeps the XML on the wire free of ns0: prefixes."""
    node = ET.Element(tag, {"xmlns": xmlns} if xmlns else {})
    node.attrib.update(attributes or {})
    node.text = text
    node.extend(children)
    return node


def serialize(node):
    return ET.tostring(node, encoding="unicode")  # "unicode": no <?xml?> declaration inside a stream


def parse(data, what):
    try:
        return ET.fromstring(data)
    except ET.ParseError as error:
        raise ProbeFailed(f"{what} is not XML ({error}): {data[:80]!r}") from error


def condition(node, namespace):
    """The defined condition of an error element (stream, SASL or stanza error) and its text, if any."""
    if node is None:
        return "no error condition given"
    names = [child.tag.split("}")[1] for child in node if child.tag.startswith(f"{{{namespace}}}")]
    names = [name for name in names if name != "text"] or ["no condition"]
    text = node.findtext(qname(namespace, "text"))
    return names[0] + (f" ({text})" if text else "")


def tag_is(*tags):
    return lambda node: node.tag in tags


def b64(data):
    return base64.b64encode(data).decode()


def tls_context(options):
    return ssl.create_default_context(cafile=options.ca)


class WebSession:
    """What both transports share: stanzas received but not yet wanted, and waiting for the one wanted."""

    name, scheme = "?", "?"  # set by each transport

    def __init__(self, options, domain, path):
        self.options, self.domain = options, domain
        self.url = f"{self.scheme}://{domain}:{options.https_port}{path}"
        self.pending = []
        self.closing = False

    def take(self, nodes):
        for node in nodes:
            if node.tag == qname(STREAM, "error"):
                raise ProbeFailed(f"{self.name} stream error from the server: {condition(node, STREAM_ERRORS)}")
            self.pending.append(node)

    async def expect(self, what, match):
        """The first received element that matches; receives more until --timeout runs out."""
        deadline = time.monotonic() + self.options.timeout
        while True:
            for node in self.pending:
                if match(node):
                    self.pending.remove(node)
                    return node
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProbeFailed(f"{self.name}: timeout waiting for {what} ({self.options.timeout} s)")
            await self.receive(left)

    async def features(self):
        return await self.expect("stream features", tag_is(qname(STREAM, "features")))


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with TLS verified and Host sent for the domain: no DNS, loopback only."""

    def __init__(self, address, host, port, context, timeout):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address, self.tls = address, context

    def connect(self):
        # Also used when a kept-alive connection was closed: http.client reconnects through this method.
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


class Bosh(WebSession):
    """XEP-0124/0206 over one kept-alive HTTPS connection, one request at a time."""

    name, scheme = "BOSH", "https"

    def __init__(self, options, domain):
        super().__init__(options, domain, options.bosh_path)
        # A held request may take BOSH_WAIT seconds before the server answers it at all.
        self.http = PinnedHTTPSConnection(
            options.address, domain, options.https_port, tls_context(options), options.timeout + BOSH_WAIT
        )
        self.rid = secrets.randbelow(2**32) + 1  # XEP-0124: random, leaving room below 2**53 to count up
        self.sid = None

    def post(self, body):
        """One request; runs in a thread because http.client blocks."""
        self.http.request("POST", self.options.bosh_path, serialize(body), {"Content-Type": "text/xml; charset=utf-8"})
        response = self.http.getresponse()
        data = response.read()
        if response.status != 200:
            raise ProbeFailed(f"POST {self.url} answered HTTP {response.status} {response.reason}")
        reply = parse(data, f"the answer to POST {self.url}")
        if reply.tag != qname(HTTPBIND, "body"):
            raise ProbeFailed(f"POST {self.url} answered <{reply.tag}>, not a BOSH <body/>")
        return reply

    async def request(self, stanzas=(), attributes=None):
        body = element("body", HTTPBIND, {"rid": str(self.rid), **({"sid": self.sid} if self.sid else {})})
        body.attrib.update(attributes or {})
        body.extend(stanzas)
        self.rid += 1
        reply = await asyncio.to_thread(self.post, body)
        # The server ends a session it no longer accepts with type="terminate" and a condition (XEP-0124 17.2).
        if reply.get("type") == "terminate" and not self.closing:
            inner = reply.find(qname(STREAM, "error"))
            extra = f", stream error {condition(inner, STREAM_ERRORS)}" if inner is not None else ""
            raise ProbeFailed(
                f"the server terminated the BOSH session: {reply.get('condition', 'no condition')}{extra}"
            )
        self.take(reply)
        return reply

    async def open(self):
        attributes = {"to": self.domain, "xml:lang": "en", "ver": "1.6", "wait": str(BOSH_WAIT), "hold": "1"}
        attributes |= {"content": "text/xml; charset=utf-8", "xmlns:xmpp": XBOSH, "xmpp:version": "1.0"}
        reply = await self.request(attributes=attributes)
        self.sid = reply.get("sid")
        if not self.sid:
            raise ProbeFailed(f"POST {self.url} created no BOSH session (no sid in the answer)")
        return await self.features()

    async def restart(self):
        attributes = {"to": self.domain, "xml:lang": "en", "xmlns:xmpp": XBOSH, "xmpp:restart": "true"}
        await self.request(attributes=attributes)
        return await self.features()

    async def send(self, *stanzas):
        await self.request(stanzas)

    async def receive(self, _left):
        await self.request()  # an empty body: the server answers when it has stanzas, or after BOSH_WAIT

    async def close(self):
        self.closing = True
        reply = await self.request([element("presence", CLIENT, {"type": "unavailable"})], {"type": "terminate"})
        self.sid = None
        if reply.get("type") != "terminate":
            raise ProbeFailed(f"the server did not confirm the end of the BOSH session: {serialize(reply)[:120]}")

    async def abort(self):
        if self.sid:
            self.closing = True
            # Best effort after a failure: the session would otherwise linger until bosh_max_inactivity.
            with contextlib.suppress(ProbeFailed, OSError, http.client.HTTPException):
                await self.request(attributes={"type": "terminate"})
        self.http.close()


class WebSocket(WebSession):
    """RFC 7395: subprotocol "xmpp", <open/> and <close/> framing, one stanza per text frame."""

    name, scheme = "WebSocket", "wss"

    def __init__(self, options, domain):
        super().__init__(options, domain, options.websocket_path)
        self.connection = None

    async def open(self):
        try:
            self.connection = await websocket_connect(
                self.url,
                subprotocols=["xmpp"],
                ssl=tls_context(self.options),
                host=self.options.address,  # TCP goes to the address; TLS and Host use the URL's domain
                port=self.options.https_port,
                proxy=None,  # websockets would otherwise follow https_proxy out of loopback
                open_timeout=self.options.timeout,
                compression=None,
            )
        except websockets.InvalidStatus as error:
            status = f"{error.response.status_code} {error.response.reason_phrase}"
            raise ProbeFailed(f"GET {self.url} (WebSocket upgrade) answered HTTP {status}") from error
        if self.connection.subprotocol != "xmpp":
            raise ProbeFailed(f"{self.url} did not agree to the xmpp subprotocol (got {self.connection.subprotocol})")
        return await self.restart()

    async def restart(self):
        # RFC 7395 3.3.2: after SASL the client opens the stream again on the same WebSocket.
        await self.send(element("open", FRAMING, {"to": self.domain, "version": "1.0", "xml:lang": "en"}))
        await self.expect("<open/> from the server", tag_is(qname(FRAMING, "open")))
        return await self.features()

    async def send(self, *stanzas):
        for stanza in stanzas:
            await self.connection.send(serialize(stanza))

    async def receive(self, left):
        try:
            frame = await asyncio.wait_for(self.connection.recv(), left)
        except TimeoutError:
            return
        except websockets.ConnectionClosed as error:
            raise ProbeFailed(f"the server closed the WebSocket: {error}") from error
        node = parse(frame, "a WebSocket frame")
        if node.tag == qname(FRAMING, "close") and not self.closing:
            moved = node.get("see-other-uri")
            raise ProbeFailed("the server closed the XMPP stream" + (f", see-other-uri {moved}" if moved else ""))
        self.take([node])

    async def close(self):
        self.closing = True
        await self.send(element("close", FRAMING))
        await self.expect("<close/> from the server", tag_is(qname(FRAMING, "close")))
        await self.connection.close()

    async def abort(self):
        if self.connection is not None:
            await self.connection.close()


TRANSPORTS = {"bosh": Bosh, "websocket": WebSocket}


async def sasl_step(session, mechanism, name, payload, attributes=None):
    """Send <auth/> or <response/>; return ("challenge" or "success", decoded data)."""
    await session.send(element(name, SASL, attributes, text=b64(payload)))
    answers = (qname(SASL, "challenge"), qname(SASL, "success"), qname(SASL, "failure"))
    answer = await session.expect(f"the SASL {mechanism} answer", tag_is(*answers))
    kind = answer.tag.split("}")[1]
    if kind == "failure":
        raise ProbeFailed(f"SASL {mechanism} failed: {condition(answer, SASL)}")
    return kind, base64.b64decode(answer.text or "")


async def scram(session, mechanism, digest, username, password):
    """RFC 5802 without channel binding.  Checking the server's signature proves it knows the password too."""
    nonce = secrets.token_urlsafe(18)
    first_bare = "n={},r={}".format(username.replace("=", "=3D").replace(",", "=2C"), nonce)
    attributes = {"mechanism": mechanism}
    kind, server_first = await sasl_step(session, mechanism, "auth", f"n,,{first_bare}".encode(), attributes)
    fields = dict(item.split("=", 1) for item in server_first.decode().split(",") if "=" in item)
    if kind != "challenge" or not fields.get("r", "").startswith(nonce) or "s" not in fields or "i" not in fields:
        raise ProbeFailed(f"SASL {mechanism}: unusable first server message {server_first[:80]!r}")
    # Passwords are taken as UTF-8 without SASLprep: right for the ASCII passwords of test accounts.
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.digest(salted, b"Client Key", digest)
    final_bare = f"c={b64(b'n,,')},r={fields['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{final_bare}".encode()
    signature = hmac.digest(hashlib.new(digest, client_key).digest(), auth_message, digest)
    proof = bytes(key ^ sign for key, sign in zip(client_key, signature, strict=True))
    kind, server_final = await sasl_step(session, mechanism, "response", f"{final_bare},p={b64(proof)}".encode())
    expected = b64(hmac.digest(hmac.digest(salted, b"Server Key", digest), auth_message, digest))
    if kind != "success" or server_final.decode() != f"v={expected}":
        raise ProbeFailed(f"SASL {mechanism}: the server's signature is wrong or missing ({server_final[:80]!r})")


async def authenticate(session, features, jid, password):
    offered = [node.text for node in features.iter(qname(SASL, "mechanism"))]
    username = jid.split("@")[0]
    try:
        for mechanism, digest in SCRAM.items():
            if mechanism in offered:
                await scram(session, mechanism, digest, username, password)
                return mechanism
        if "PLAIN" in offered:
            # Only reached through HTTPS whose certificate was verified: the password travels inside that TLS.
            await sasl_step(session, "PLAIN", "auth", f"\0{username}\0{password}".encode(), {"mechanism": "PLAIN"})
            return "PLAIN"
    except ProbeFailed as error:
        raise ProbeFailed(f"{jid}: {error}") from error
    if not offered:
        raise ProbeFailed(f"{session.name}: no SASL offered; the server may not consider this session secure")
    raise ProbeFailed(f"{session.name}: no usable SASL mechanism among {', '.join(offered)}")


async def iq_set(session, payload, what):
    ident = secrets.token_hex(4)
    await session.send(element("iq", CLIENT, {"type": "set", "id": ident}, children=[payload]))
    answer = await session.expect(what, lambda node: node.tag == qname(CLIENT, "iq") and node.get("id") == ident)
    if answer.get("type") != "result":
        raise ProbeFailed(f"{what} refused: {condition(answer.find(qname(CLIENT, 'error')), STANZA_ERRORS)}")
    return answer


async def login(session, jid, password):
    """Open, authenticate, restart, bind, announce presence: a web client's way to a session.  Returns what it used."""
    mechanism = await authenticate(session, await session.open(), jid, password)
    features = await session.restart()
    if features.find(qname(BIND, "bind")) is None:
        raise ProbeFailed(f"{session.name}: no resource binding offered after authentication")
    resource = element("resource", text=f"webcheck-{session.name.lower()}-{secrets.token_hex(3)}")
    bound = await iq_set(session, element("bind", BIND, children=[resource]), "the resource binding")
    full_jid = bound.findtext(f"{qname(BIND, 'bind')}/{qname(BIND, 'jid')}")
    legacy = features.find(qname(SESSION, "session"))
    if legacy is not None and legacy.find(qname(SESSION, "optional")) is None:
        await iq_set(session, element("session", SESSION), "the session establishment")  # RFC 3921 servers
    await session.send(element("presence", CLIENT))  # priority 0: messages to the bare JID reach this resource
    return mechanism, full_jid


def chat(to, body):
    return element("message", CLIENT, {"to": to, "type": "chat"}, children=[element("body", text=body)])


def carries(body):
    return lambda node: node.tag == qname(CLIENT, "message") and node.findtext(qname(CLIENT, "body")) == body


async def exchange(session, web_jid, tcp_client, options):
    """A message from the web session to the TCP client, and an answer back to the web account's bare JID."""
    tcp_jid = tcp_client.boundjid.bare
    outgoing = f"prosody-stack web check {session.name} out {secrets.token_hex(6)}"
    await session.send(chat(tcp_jid, outgoing))
    await receive(tcp_client.messages, outgoing, options.timeout, f"message from {web_jid} over {session.name}")
    answer = f"prosody-stack web check {session.name} back {secrets.token_hex(6)}"
    tcp_client.send_message(mto=web_jid, mbody=answer, mtype="chat")
    await session.expect(f"the message from {tcp_jid} (TCP)", carries(answer))


class Run:
    """The options, the accounts and the TCP client, logged in once and shared by the checks."""

    def __init__(self, options):
        self.options = options
        (self.web_jid, self.web_password), (self.tcp_jid, self.tcp_password) = read_accounts(options.accounts_file)
        self.domain = self.web_jid.split("@")[-1].split("/")[0]
        self.tcp_client = None

    async def tcp(self):
        self.tcp_client = self.tcp_client or await connect(self.tcp_jid, self.tcp_password, self.options)
        return self.tcp_client


async def check(run, transport):
    session = TRANSPORTS[transport](run.options, run.domain)
    try:
        mechanism, full_jid = await login(session, run.web_jid, run.web_password)
        await exchange(session, run.web_jid, await run.tcp(), run.options)
        await session.close()
    finally:
        await session.abort()
    return f"{full_jid} over {session.url} with SASL {mechanism}; message to {run.tcp_jid} (TCP) and back; closed"


def explain(error, options, domain):
    """One sentence naming what failed: TLS verification, an HTTP status, a timeout, or the check's own finding."""
    where = f"{options.address}:{options.https_port}"
    trust = options.ca or "the system trust store"
    # Most specific first: a verification error is an SSLError, and SSLError and TimeoutError are OSErrors.
    reasons = [
        (
            ssl.SSLCertVerificationError,
            lambda: f"TLS verification of {domain} at {where} failed: {error.verify_message} (CA: {trust})",
        ),
        (ssl.SSLError, lambda: f"TLS handshake with {where} failed: {error.reason or error}"),
        (websockets.InvalidHandshake, lambda: f"WebSocket handshake with {where} failed: {error}"),
        (TimeoutError, lambda: f"timeout: no answer from {where} in time (--timeout {options.timeout} s)"),
        (OSError, lambda: f"cannot talk to {where}: {error.strerror or error}"),
        (http.client.HTTPException, lambda: f"HTTP exchange with {where} broke off: {type(error).__name__} {error}"),
    ]
    return next((reason() for kind, reason in reasons if isinstance(error, kind)), None) or describe(error)


CHECK_ERRORS = (ProbeFailed, OSError, http.client.HTTPException, websockets.WebSocketException)


async def run_checks(options):
    run = Run(options)
    passed = True
    for transport in options.transports:
        started = time.monotonic()
        try:
            detail, ok = await check(run, transport), True
        except CHECK_ERRORS as error:
            detail, ok = explain(error, options, run.domain), False
        passed &= ok
        record = {"check": transport, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}
        print(json.dumps(record), flush=True)
    if run.tcp_client:
        run.tcp_client.disconnect()
        await asyncio.sleep(0.2)
    return passed


def transport_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TRANSPORTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(TRANSPORTS)}; unknown: {', '.join(unknown)}")
    return names


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--https-port", type=int, default=5281, help="Prosody's HTTPS port (BOSH and WebSocket)")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS) for account 2")
    parser.add_argument("--ca", help="CA file the server certificate must chain to (default: the system's trust store)")
    parser.add_argument("--accounts-file", required=True, help="two lines 'jid password': web account, TCP account")
    parser.add_argument("--transports", type=transport_list, default=list(TRANSPORTS), help="comma-separated subset")
    parser.add_argument("--bosh-path", default="/http-bind")
    parser.add_argument("--websocket-path", default="/xmpp-websocket")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    return parser.parse_args(argv)


def main(argv=None):
    return 0 if asyncio.run(run_checks(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
