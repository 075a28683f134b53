"""Time Prosody inside its container (benchmark part 4); run once per container by one `podman exec`.

  python3 startup_timer.py --runs 15 --address 127.0.0.81 --port 5222 CONFIG...

After one untimed warm-up start and check of each CONFIG (the first start
in a fresh container reads every Lua file from disk), for each run and each
CONFIG, alternating between them so that drift hits all alike:
- start-up: from launching `prosody -F --config CONFIG` as the prosody user
  (as systemd does: Prosody refuses to run as root) until its client port
  accepts a TCP connection; then Prosody is stopped (not timed);
- check config: wall time of `prosodyctl --config CONFIG check config`.
Prints {CONFIG: {"startup": [s, ...], "check": [s, ...], "check_exit": code,
"check_output": text}} as JSON (exit code and output of the last check).

Standard library only: it runs on the container's own python3.
"""

import argparse
import json
import os
import pwd
import socket
import subprocess
import sys
import time

PROSODY_USER = "prosody"
STATE_DIR = "/var/lib/prosody"  # the systemd unit's working directory
RUNTIME_DIR = "/run/prosody"  # the unit's RuntimeDirectory (the pidfile goes there)
START_TIMEOUT = 30


def accepts(address, port):
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def time_startup(config, address, port):
    """Seconds from launching Prosody until address:port accepts a connection."""
    if accepts(address, port):
        sys.exit(f"{address}:{port} is already taken: another Prosody runs")
    began = time.perf_counter()
    process = subprocess.Popen(
        ["prosody", "-F", "--config", config],
        user=PROSODY_USER,
        group=PROSODY_USER,
        extra_groups=[],
        cwd=STATE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not accepts(address, port):
            if process.poll() is not None:
                sys.exit(f"prosody --config {config} exited with {process.returncode} before listening")
            if time.perf_counter() - began > START_TIMEOUT:
                sys.exit(f"prosody --config {config}: nothing on {address}:{port} after {START_TIMEOUT} s")
            time.sleep(0.002)
        return time.perf_counter() - began
    finally:
        stop(process)


def time_check(config):
    """(seconds, exit code, output) of `prosodyctl --config CONFIG check config`."""
    began = time.perf_counter()
    done = subprocess.run(
        ["prosodyctl", "--config", config, "check", "config"], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - began, done.returncode, done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("configs", nargs="+")
    args = parser.parse_args()
    os.makedirs(RUNTIME_DIR, exist_ok=True)
    user = pwd.getpwnam(PROSODY_USER)
    os.chown(RUNTIME_DIR, user.pw_uid, user.pw_gid)
    times = {config: {"startup": [], "check": []} for config in args.configs}
    for config in args.configs:
        time_startup(config, args.address, args.port)
        time_check(config)
    for _run in range(args.runs):
        for config in args.configs:
            times[config]["startup"].append(time_startup(config, args.address, args.port))
        for config in args.configs:
            seconds, times[config]["check_exit"], times[config]["check_output"] = time_check(config)
            times[config]["check"].append(seconds)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
