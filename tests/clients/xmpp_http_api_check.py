"""Prove that Prosody 13's HTTP APIs work for real clients: OAuth 2, the REST API and webhooks.

These features come from community modules (mod_http_oauth2, mod_rest) that Debian ships only for Prosody 13.0;
they are configured by options no other check touches, and each of them can fail while ordinary logins keep
working.  So each one is checked the way its users use it:

oauth
    A client discovers the authorization server (RFC 8414), registers itself dynamically (RFC 7591) and runs the
    authorization code flow with PKCE (RFC 7636): it posts account 1's credentials to the login form, grants
    consent, takes the code from the redirect and exchanges it for an access token.  Account 1 then logs in over
    the client port with that token (SASL OAUTHBEARER, RFC 7628) and sends account 2 a message.  A forged token
    (right grant, wrong secret) must be refused.
rest
    An HTTP POST to /rest with account 1's credentials (HTTP Basic, and the bearer token of the oauth check when it
    ran) sends a chat message that account 2, logged in over XMPP, receives.  No credentials must be answered with
    401, wrong ones with 401 or 403, and their messages must not be delivered.
webhook
    A small HTTP receiver on a loopback address stands in for the service behind a mod_rest component's
    rest_callback_url.  Account 1 sends a message to the component; the receiver must get it POSTed (JSON or XML)
    with the right from, to and body, and the reply it answers with must reach account 1.

slixmpp has no OAUTHBEARER mechanism, so a minimal one is registered here.  It only offers itself to a login that
was handed a token (bearer_connect); every other login keeps using SCRAM through tools/xmpp_probe.py.

Each check prints one JSON line {"check", "ok", "detail", "seconds"}; the exit code is 0 only when every requested
check passed.  Passwords come from a file (lines "jid password") and are never printed; neither are tokens.  XMPP and
HTTPS go to --address only, with TLS verified against --ca for the domain's name; the receiver listens on
--webhook-listen, which must be the address and port of the component's rest_callback_url.
"""

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import http.client
import http.server
import json
import logging
import queue
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import slixmpp
from slixmpp.util.sasl.client import Mech, SASLCancelled, sasl_mech
from slixmpp.xmlstream.xmlstream import NotConnectedError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from xmpp_probe import ProbeFailed, connect, describe, read_accounts, receive  # the project's one way to log in

# Where the authorization server sends the browser with the code.  A private-use scheme (RFC 8252) is allowed for
# "native" clients; the check reads the redirect instead of following it.
REDIRECT_URI = "org.example.prosody-stack.check:/oauth2/callback"
CLIENT_URI = "https://check.prosody-stack.example/"  # required, https and not loopback; only shown to users
SASL_LOGGER = "slixmpp.features.feature_mechanisms.mechanisms"  # logs "Authentication failed: <condition>"
WEBHOOK_REPLY = "webhook received: "


# --- SASL OAUTHBEARER for slixmpp ------------------------------------------------------------------------------


class BearerLogin:
    """The token one login presents, and what the server said about it."""

    def __init__(self, jid, token):
        self.jid = jid
        self.token = token
        self.chosen = False
        self.server_error = None  # RFC 7628: the JSON challenge a server sends before refusing a token
        self.condition = None  # the SASL <failure/> condition, if any


BEARER_LOGINS = {}  # localpart -> BearerLogin, only while that login is under way


@sasl_mech(90)  # above every SCRAM variant, so a login that has a token uses it
class OAuthBearer(Mech):
    """RFC 7628 OAUTHBEARER; cancels itself (slixmpp falls back to SCRAM) for logins without a token."""

    name = "OAUTHBEARER"
    required_credentials: ClassVar[set[str]] = {"username"}

    def setup(self, name):
        self.login = BEARER_LOGINS.get(self.credentials["username"].decode())
        if self.login is None:
            raise SASLCancelled("no bearer token for this login")
        self.login.chosen = True

    def process(self, challenge=b""):
        if challenge:  # an error report; answering with a lone separator lets the server send <failure/>
            self.login.server_error = challenge.decode(errors="replace")
            return b"\x01"
        return f"n,a={self.login.jid},\x01auth=Bearer {self.login.token}\x01\x01".encode()


class SaslFailures(logging.Handler):
    """Remembers the condition of a SASL <failure/>, which slixmpp only logs."""

    def __init__(self, login):
        super().__init__(logging.INFO)
        self.login = login

    def emit(self, record):
        if str(record.msg).startswith("Authentication failed") and record.args:
            self.login.condition = str(record.args[0])


@contextlib.contextmanager
def bearer_login(jid, token):
    login = BearerLogin(jid, token)
    localpart = jid.split("@", 1)[0]
    logger = logging.getLogger(SASL_LOGGER)
    handler, level = SaslFailures(login), logger.level
    BEARER_LOGINS[localpart] = login
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield login
    finally:
        BEARER_LOGINS.pop(localpart, None)
        logger.removeHandler(handler)
        logger.setLevel(level)


async def bearer_connect(jid, token, options):
    """Log in with OAUTHBEARER; the password handed to connect() is random, so no other mechanism can succeed."""
    with bearer_login(jid, token) as login:
        try:
            client = await connect(jid, secrets.token_hex(16), options)
        except ProbeFailed as error:
            raise ProbeFailed(f"{error}{bearer_outcome(login)}") from error
    if client.mechanism != "OAUTHBEARER":
        client.abort()
        raise ProbeFailed(f"{jid} logged in with {client.mechanism}, not OAUTHBEARER")
    return client


def bearer_outcome(login):
    if not login.chosen:
        return " (the server did not offer OAUTHBEARER)"
    return f" (OAUTHBEARER: server error {login.server_error or 'none'}, SASL condition {login.condition})"


def forged(token):
    """The same token format, grant and JID with another secret: only the server's secret check can refuse it."""
    prefix = "secret-token:"
    if not token.startswith(prefix):
        raise ProbeFailed("the access token is not in Prosody's 'secret-token:' format; cannot forge one")
    raw = base64.b64decode(token[len(prefix) :])
    start = raw.index(b";", 2) + 1  # "2;<grant id>;<18-byte secret>;<jid>"
    return prefix + base64.b64encode(raw[:start] + secrets.token_bytes(18) + raw[start + 18 :]).decode()


# --- HTTPS ------------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)

    def excerpt(self):
        """The start of the body; of an HTML error page only its text (Prosody puts the reason there)."""
        text = self.body.decode(errors="replace")
        if self.headers.get_content_type() == "text/html":
            text = html.unescape(re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<head\b.*?</head>", "", text)))
        return " ".join(text.split())[:200] or "(empty body)"


def https_exchange(options, method, url, body=None, headers=None):
    """One HTTPS request to --address, TLS verified for the URL's host name; redirects are not followed."""
    parts = urlsplit(url)
    port = parts.port or 443
    context = ssl.create_default_context(cafile=options.ca)
    connection = http.client.HTTPSConnection(parts.hostname, port, context=context, timeout=options.timeout)
    raw = socket.create_connection((options.address, port), timeout=options.timeout)
    connection.sock = context.wrap_socket(raw, server_hostname=parts.hostname)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


async def request(options, method, url, sent=None, expect=(200,)):
    """One request; sent holds its body and headers.  A status outside expect fails the check."""
    sent = sent or {}
    try:
        reply = await asyncio.to_thread(https_exchange, options, method, url, sent.get("body"), sent.get("headers"))
    except (OSError, http.client.HTTPException) as error:
        raise ProbeFailed(f"{method} {url} (at {options.address}): {describe(error)}") from error
    if expect and reply.status not in expect:
        raise ProbeFailed(f"{method} {urlsplit(url).path} answered {reply.status}: {reply.excerpt()}")
    return reply


def form(fields):
    return {"body": urlencode(fields), "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def on_server(options, url):
    """The advertised endpoint's path on the HTTPS port under test (a deployment may advertise a proxy's URL)."""
    return f"https://{options.domain}:{options.https_port}{urlsplit(url).path}"


# --- OAuth 2 ----------------------------------------------------------------------------------------------------


async def discover(options):
    url = f"https://{options.domain}:{options.https_port}/.well-known/oauth-authorization-server"
    metadata = (await request(options, "GET", url)).json()
    needed = ("registration_endpoint", "authorization_endpoint", "token_endpoint")
    missing = [key for key in needed if key not in metadata]
    if missing:
        raise ProbeFailed(f"the server metadata lacks {', '.join(missing)} (is oauth2_registration_key set?)")
    return metadata


async def register_client(options, metadata):
    client = {
        "client_name": "prosody-stack HTTP API check",
        "client_uri": CLIENT_URI,
        "redirect_uris": [REDIRECT_URI],
        "application_type": "native",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    sent = {"body": json.dumps(client), "headers": {"Content-Type": "application/json"}}
    url = on_server(options, metadata["registration_endpoint"])
    return (await request(options, "POST", url, sent, expect=(201,))).json()


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def authorize(options, metadata, client, account, challenge):
    """The user's part: log in on the form, allow access, and get redirected with a code."""
    jid, password = account
    state = secrets.token_urlsafe(12)
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "xmpp",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = f"{on_server(options, metadata['authorization_endpoint'])}?{urlencode(query)}"
    consent = await request(options, "POST", url, form({"username": jid.split("@", 1)[0], "password": password}))
    user_token = re.search(rb'name="user_token" value="([^"]+)"', consent.body)
    if not user_token:
        raise ProbeFailed(f"the login form did not lead to the consent form: {consent.excerpt()}")
    grant = {"user_token": user_token.group(1).decode(), "scope": "xmpp", "consent": "granted"}
    redirect = await request(options, "POST", url, form(grant), expect=(302, 303))
    return code_from(redirect.headers.get("Location", ""), state, metadata["issuer"])


def code_from(location, state, issuer):
    if not location.startswith(REDIRECT_URI):
        raise ProbeFailed(f"redirected to {location!r}, not to the registered {REDIRECT_URI}")
    params = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    if "error" in params:
        raise ProbeFailed(f"authorization refused: {params['error']} {params.get('error_description', '')}")
    if params.get("state") != state or params.get("iss") != issuer:
        raise ProbeFailed(f"the redirect carries state/iss {params.get('state')!r}/{params.get('iss')!r}")
    return params["code"]


async def exchange_code(options, metadata, client, code, verifier):
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    sent = form(fields)
    sent["headers"]["Authorization"] = f"Basic {basic}"
    reply = await request(options, "POST", on_server(options, metadata["token_endpoint"]), sent)
    token = reply.json()
    if token.get("token_type", "").lower() != "bearer" or not token.get("access_token"):
        raise ProbeFailed(f"the token endpoint answered without a bearer token: keys {sorted(token)}")
    return token


async def check_oauth(run):
    options, account = run.options, run.accounts[0]
    metadata = await discover(options)
    client = await register_client(options, metadata)
    verifier, challenge = pkce_pair()
    code = await authorize(options, metadata, client, account, challenge)
    token = await exchange_code(options, metadata, client, code, verifier)
    run.token = token["access_token"]
    alice = await bearer_connect(account[0], run.token, options)
    run.clients.append(alice)
    bob = await run.session(1)
    body = unique("oauth")
    alice.send_message(mto=bob.boundjid.bare, mbody=body, mtype="chat")
    await receive(bob.messages, body, options.timeout, "the message sent in the OAUTHBEARER session")
    refusal = await refuse_forged(account[0], run.token, options)
    return (
        f"registered a client at {urlsplit(metadata['registration_endpoint']).path}, code flow with PKCE, "
        f"token scope {token.get('scope')!r} expires in {token.get('expires_in')} s; {account[0]} logged in with "
        f"OAUTHBEARER and messaged {bob.boundjid.bare}; forged token refused:{refusal}"
    )


async def refuse_forged(jid, token, options):
    try:
        client = await bearer_connect(jid, forged(token), options)
    except ProbeFailed as error:
        return str(error).removeprefix(jid + ":")
    client.abort()
    raise ProbeFailed(f"{jid} logged in with a forged token")


# --- REST -------------------------------------------------------------------------------------------------------


def basic_auth(jid, password):
    credentials = f"{jid.split('@', 1)[0]}:{password}".encode()
    return f"Basic {base64.b64encode(credentials).decode()}"


async def rest_post(run, authorization, to, body, expect):
    payload = json.dumps({"kind": "message", "type": "chat", "to": to, "body": body})
    # No "Accept: application/json": mod_rest's JSON error handler turns every 404 of the server into a 500.
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    url = f"https://{run.options.domain}:{run.options.https_port}/rest"
    return await request(run.options, "POST", url, {"body": payload, "headers": headers}, expect=expect)


async def rest_refusals(run, bob_jid):
    """Requests without and with wrong credentials; returns what they answered and the bodies they tried to send."""
    jid, password = run.accounts[0]
    attempts = [("no credentials", None, (401,)), ("wrong password", basic_auth(jid, password + "-wrong"), (401, 403))]
    if run.token:
        attempts.append(("forged token", f"Bearer {forged(run.token)}", (401, 403)))
    answers, bodies = [], []
    for label, authorization, expect in attempts:
        bodies.append(unique(f"rest refused {label}"))
        reply = await rest_post(run, authorization, bob_jid, bodies[-1], expect)
        challenge = reply.headers.get("WWW-Authenticate")
        answers.append(f"{label} -> {reply.status}" + (f" ({challenge})" if challenge else ""))
    return answers, bodies


async def check_rest(run):
    jid, password = run.accounts[0]
    bob = await run.session(1)
    refused, refused_bodies = await rest_refusals(run, bob.boundjid.bare)
    sent = [("Basic", basic_auth(jid, password))] + ([("Bearer", f"Bearer {run.token}")] if run.token else [])
    for label, authorization in sent:
        body = unique(f"rest {label}")
        await rest_post(run, authorization, bob.boundjid.bare, body, expect=(200, 202))
        seen = await receive_noting(bob.messages, body, run.options.timeout, f"the message POSTed with {label}")
        if seen["from"].bare != jid:
            raise ProbeFailed(f"the message POSTed with {label} came from {seen['from']}, not {jid}")
        if leaked := set(refused_bodies) & set(seen["before"]):
            raise ProbeFailed(f"a refused request was delivered anyway: {sorted(leaked)}")
    kinds = " and ".join(label for label, _ in sent)
    return f"POST /rest with {kinds} reached {bob.boundjid.bare} from {jid}; refused: {'; '.join(refused)}"


async def receive_noting(queue_, wanted_body, timeout, what):
    """Like receive(), but also returns the bodies that arrived first (refused requests must not be among them)."""
    before = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            stanza = await asyncio.wait_for(queue_.get(), left)
        except TimeoutError:
            break
        if stanza["body"] == wanted_body:
            return {"from": stanza["from"], "before": before}
        before.append(stanza["body"])
    raise ProbeFailed(f"{what}: {wanted_body!r} did not arrive within {timeout} s")


# --- Webhooks ---------------------------------------------------------------------------------------------------


@dataclass
class Hook:
    path: str
    content_type: str
    fields: dict


def hook_fields(content_type, body):
    """kind, from, to and body of a stanza mod_rest POSTed, as JSON or as XML."""
    try:
        if content_type == "application/json":
            data = json.loads(body)
            return {key: data.get(key) for key in ("kind", "from", "to", "body")}
        if content_type == "application/xmpp+xml":
            stanza = ET.fromstring(body)
            text = next((child.text for child in stanza if child.tag.rsplit("}", 1)[-1] == "body"), None)
            kind = stanza.tag.rsplit("}", 1)[-1]
            return {"kind": kind, "from": stanza.get("from"), "to": stanza.get("to"), "body": text}
    except (ValueError, ET.ParseError, AttributeError):
        pass
    return {"kind": None, "unreadable": f"{content_type}: {body[:100]!r}"}


def hook_handler(hooks):
    class Handler(http.server.BaseHTTPRequestHandler):
        """Records each POST and answers a message with a message (JSON), anything else with 204."""

        def do_POST(self):
            content_type = self.headers.get_content_type()
            fields = hook_fields(content_type, self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            hooks.put(Hook(self.path, content_type, fields))
            if fields["kind"] != "message" or not fields.get("body"):
                self.send_response(204)
                self.end_headers()
                return
            answer = json.dumps({"kind": "message", "type": "chat", "body": WEBHOOK_REPLY + fields["body"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


@contextlib.contextmanager
def webhook_receiver(listen):
    host, _, port = listen.rpartition(":")
    hooks = queue.Queue()
    server = http.server.ThreadingHTTPServer((host, int(port)), hook_handler(hooks))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()


async def hook_with_body(hooks, body, timeout, listen):
    deadline = time.monotonic() + timeout
    others = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            hook = await asyncio.to_thread(hooks.get, timeout=left)
        except queue.Empty:
            break
        if hook.fields.get("body") == body:
            return hook
        others.append(hook)
    last = f", the last: {others[-1]}" if others else ""
    raise ProbeFailed(f"no POST with {body!r} reached http://{listen} within {timeout} s ({len(others)} others{last})")


def hook_mismatches(hook, sender, recipient):
    fields = hook.fields
    wrong = []
    if fields["kind"] != "message":
        wrong.append(f"kind {fields['kind']!r}")
    if slixmpp.JID(fields["from"] or "").bare != sender:
        wrong.append(f"from {fields['from']!r}")
    if fields["to"] != recipient:
        wrong.append(f"to {fields['to']!r}")
    return wrong


async def check_webhook(run):
    options = run.options
    if not options.component or not options.webhook_listen:
        raise ProbeFailed("--component and --webhook-listen are needed for the webhook check")
    alice = await run.session(0)
    recipient = f"bot@{options.component}"
    body = unique("webhook")
    with webhook_receiver(options.webhook_listen) as hooks:
        alice.send_message(mto=recipient, mbody=body, mtype="chat")
        hook = await hook_with_body(hooks, body, options.timeout, options.webhook_listen)
        if wrong := hook_mismatches(hook, alice.boundjid.bare, recipient):
            raise ProbeFailed(f"POST {hook.path} ({hook.content_type}) carried {', '.join(wrong)}")
        answer = await receive(alice.messages, WEBHOOK_REPLY + body, options.timeout, "the webhook's answer")
    if str(answer["from"]) != recipient:
        raise ProbeFailed(f"the webhook's answer came from {answer['from']}, not {recipient}")
    return (
        f"{alice.boundjid.bare} -> {recipient}: POST {hook.path} ({hook.content_type}) with the right from, to "
        f"and body; the receiver's answer reached {alice.boundjid.bare}"
    )


# --- Running ----------------------------------------------------------------------------------------------------


def unique(label):
    return f"prosody-stack api check {label} {secrets.token_hex(6)}"


CHECKS = {"oauth": check_oauth, "rest": check_rest, "webhook": check_webhook}


class Run:
    """The options, the accounts, password sessions by account index, other clients and the oauth check's token."""

    def __init__(self, options):
        self.options = options
        self.accounts = read_accounts(options.accounts_file)
        options.domain = options.domain or self.accounts[0][0].split("@", 1)[1]
        self.sessions = {}
        self.clients = []
        self.token = None

    async def session(self, index):
        if index not in self.sessions:
            self.sessions[index] = await connect(*self.accounts[index], self.options)
        return self.sessions[index]


async def run(options):
    state = Run(options)
    passed = True
    for name in [check for check in CHECKS if check in options.checks]:
        started = time.monotonic()
        try:
            detail, ok = await CHECKS[name](state), True
        except (ProbeFailed, OSError, http.client.HTTPException, ValueError, KeyError) as error:
            detail, ok = describe(error), False
        passed &= ok
        print(json.dumps({"check": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}))
    for client in [*state.sessions.values(), *state.clients]:
        client.disconnect()
    await asyncio.sleep(0.2)
    return passed


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS)")
    parser.add_argument("--https-port", type=int, default=5281, help="Prosody's HTTPS port")
    parser.add_argument("--ca", help="CA file the server certificate must chain to")
    parser.add_argument("--accounts-file", required=True, help="two lines 'jid password'")
    parser.add_argument("--domain", help="host of the HTTP APIs (default: the accounts' domain)")
    parser.add_argument("--component", help="mod_rest component with rest_callback_url (webhook check)")
    parser.add_argument("--webhook-listen", help="HOST:PORT of rest_callback_url, a loopback address (webhook check)")
    parser.add_argument(
        "--checks", default=",".join(CHECKS), type=lambda text: text.split(","), help="comma-separated subset to run"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    return parser.parse_args(argv)


def sent_after_abort(record):
    """False for slixmpp's traceback about a stanza queued after connect() aborted a refused login (expected here)."""
    return not (record.exc_info and isinstance(record.exc_info[1], NotConnectedError))


def main(argv=None):
    logging.getLogger("slixmpp.xmlstream.xmlstream").addFilter(sent_after_abort)
    return 0 if asyncio.run(run(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
