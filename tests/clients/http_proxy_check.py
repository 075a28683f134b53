"""Prove Prosody trusts exactly the configured reverse proxies (trusted_proxies).

A reverse proxy terminates TLS and forwards plain HTTP with
"X-Forwarded-Proto: https"; Prosody must believe that header only from the
addresses in trusted_proxies.  Prosody's BOSH page says so: fetched over plain
HTTP it warns "This endpoint is not considered secure!" unless the request
counts as secure.  The same request is sent from a trusted and from an
untrusted loopback source address; only the trusted one may lose the warning.

One JSON line per source {"check", "ok", "detail"}; exit code 0 only when
both behaved as configured.
"""

import argparse
import http.client
import json
import sys

WARNING = "This endpoint is not considered secure!"


def fetch(options, source):
    """The BOSH page as Prosody serves it to a proxy at `source`."""
    connection = http.client.HTTPConnection(
        options.address, options.http_port, timeout=options.timeout, source_address=(source, 0)
    )
    try:
        connection.request("GET", options.path, headers={"Host": options.host, "X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def check(options, source, trusted):
    status, page = fetch(options, source)
    if status != 200:
        return False, f"GET http://{options.address}:{options.http_port}{options.path} from {source}: HTTP {status}"
    warned = WARNING in page
    if trusted and warned:
        return False, f"from trusted proxy {source}: X-Forwarded-Proto ignored, the page still warns"
    if not trusted and not warned:
        return False, f"from untrusted {source}: X-Forwarded-Proto believed, the page does not warn"
    return True, f"from {source}: {'secure, as forwarded' if trusted else 'not secure, header ignored'}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="address Prosody's plain HTTP port listens on")
    parser.add_argument("--http-port", type=int, default=5280)
    parser.add_argument("--host", required=True, help="Host header: the domain")
    parser.add_argument("--path", default="/http-bind", help="the BOSH path")
    parser.add_argument("--trusted", required=True, help="a loopback source address listed in trusted_proxies")
    parser.add_argument("--untrusted", required=True, help="a loopback source address not listed there")
    parser.add_argument("--timeout", type=float, default=10.0)
    options = parser.parse_args(argv)
    passed = True
    for name, source, trusted in (("trusted-proxy", options.trusted, True), ("untrusted", options.untrusted, False)):
        try:
            ok, detail = check(options, source, trusted)
        except OSError as error:
            ok, detail = False, f"{source}: {error}"
        passed &= ok
        print(json.dumps({"check": name, "ok": ok, "detail": detail}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
