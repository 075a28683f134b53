"""Prove an external component (XEP-0114) works against a deployed Prosody.

A component process (slixmpp's ComponentXMPP) connects to the component port
with the shared secret the inventory keeps in its vault, receives a message a
user sends to an address on the component, and answers it; the user must get
the answer.  A second component connection with a wrong secret must be
refused by the server.

One JSON line per check {"check", "ok", "detail", "seconds"}; exit code 0 only
when every check passed.  The secret and the user's password come from files
so that they never appear in a process list.
"""

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path

import slixmpp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from xmpp_probe import ProbeFailed, connect, describe, read_accounts, receive  # one way to log in


class Component(slixmpp.ComponentXMPP):
    """Answers every chat message with "echo: <body>"; remembers how its login ended."""

    def __init__(self, jid, secret, options):
        super().__init__(jid, secret, options.address, options.component_port)
        self.outcome = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.settle("ok"))
        self.add_event_handler("stream_error", lambda error: self.settle(f"stream error {error['condition']}"))
        self.add_event_handler("disconnected", lambda _: self.settle("disconnected"))
        self.add_event_handler("connection_failed", lambda error: self.settle(f"connection failed: {error}"))
        self.add_event_handler("message", self.answer)

    def settle(self, outcome):
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    def answer(self, message):
        if message["type"] in ("chat", "normal") and message["body"]:
            message.reply(f"echo: {message['body']}").send()


async def component_login(jid, secret, options):
    """A connected component, or the reason it is not."""
    component = Component(jid, secret, options)
    component.connect()
    try:
        outcome = await asyncio.wait_for(component.outcome, options.timeout)
    except TimeoutError:
        outcome = f"no answer within {options.timeout} s"
    return component, outcome


async def check_login(run):
    component, outcome = await component_login(run.options.component, run.secret, run.options)
    if outcome != "ok":
        component.abort()
        raise ProbeFailed(f"{run.options.component} with the configured secret: {outcome}")
    run.component = component
    return f"{run.options.component} connected to {run.options.address}:{run.options.component_port}"


async def check_message(run):
    if not run.component:
        raise ProbeFailed("the component is not connected; nothing to talk to")
    jid, password = run.account
    user = await connect(jid, password, run.options)
    run.clients.append(user)
    body = f"prosody-stack component check {secrets.token_hex(6)}"
    user.send_message(mto=f"echo@{run.options.component}", mbody=body, mtype="chat")
    await receive(user.messages, f"echo: {body}", run.options.timeout, "the component's answer")
    return f"{jid} got the component's answer"


async def check_wrong_secret(run):
    component, outcome = await component_login(run.options.component, run.secret + "-wrong", run.options)
    component.abort()
    if outcome == "ok":
        raise ProbeFailed("the server accepted a wrong component secret")
    return f"refused: {outcome}"


CHECKS = {"login": check_login, "message": check_message, "wrong-secret": check_wrong_secret}


class Run:
    def __init__(self, options):
        self.options = options
        self.account = read_accounts(options.accounts_file)[0]
        self.secret = Path(options.secret_file).read_text().strip()
        self.component = None
        self.clients = []


async def run(options):
    state = Run(options)
    passed = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail, ok = await check(state), True
        except (ProbeFailed, OSError) as error:
            detail, ok = describe(error), False
        passed &= ok
        print(json.dumps({"check": name, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}))
    for client in [*state.clients, *([state.component] if state.component else [])]:
        client.disconnect()
    await asyncio.sleep(0.2)
    return passed


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="loopback address the server listens on")
    parser.add_argument("--port", type=int, default=5222, help="client port (STARTTLS)")
    parser.add_argument("--component-port", type=int, default=5347)
    parser.add_argument("--component", required=True, help="the component's domain, e.g. bridge.example.com")
    parser.add_argument("--secret-file", required=True, help="file holding the component's shared secret")
    parser.add_argument("--ca", help="CA file the server certificate must chain to")
    parser.add_argument("--accounts-file", required=True, help="lines 'jid password'; the first account is used")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each network step")
    return parser.parse_args(argv)


def main(argv=None):
    return 0 if asyncio.run(run(parse_arguments(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
