"""Fresh test hosts: podman containers of the project's images, reached over SSH on loopback.

Every container shares the machine's network (--network host, never podman's
bridge) and listens only on its own loopback address 127.0.0.81 .. 127.0.0.88:
sshd on port 2222 with fresh host keys and key-only root login, as in
molecule/fleet/prepare.yml.  The run removes every container it made, also
on Ctrl-C or a failure (see Containers.remove_all).
"""

import socket
import time

from .common import BenchmarkError, attempt, run

IMAGES = {"0.12": "localhost/prosody-stack:bookworm", "13.0": "localhost/prosody-stack:trixie"}
ADDRESSES = [f"127.0.0.{last}" for last in range(81, 89)]
SSH_PORT = 2222
LABEL = "prosody-stack.benchmark=1"


def host_name(address):
    """The inventory and container name of the host on a benchmark address: bench81 for 127.0.0.81."""
    return f"bench{address.rsplit('.', 1)[1]}"


def container_name(address):
    return f"prosody-stack-{host_name(address)}"


def wait_for_port(address, port, timeout):
    """Wait until address:port accepts a TCP connection; raise BenchmarkError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"nothing listens on {address}:{port} after {timeout} s") from None
            time.sleep(0.1)


class Containers:
    """The containers of one run, by address; remove_all() removes every one it started."""

    def __init__(self):
        self.started = {}

    def exec(self, address, *command, input_text=None):
        return run(["podman", "exec", "-i", self.started[address], *command], input_text=input_text)

    def start(self, address, image, volumes=None):
        """A fresh container of image on address (an old one of that name is replaced).

        volumes: {host directory: guest directory}, mounted read-only.
        """
        name = container_name(address)
        self.remove(address, name)
        mounts = [arg for host, guest in (volumes or {}).items() for arg in ("-v", f"{host}:{guest}:ro")]
        identity = ["--name", name, "--label", LABEL, "--hostname", host_name(address)]
        network_and_init = ["--network", "host", "--systemd", "always"]
        run(["podman", "run", "-d", *identity, *mounts, *network_and_init, image, "/sbin/init"], what=name)
        self.started[address] = name
        # systemd must be up before sshd and Prosody are started through it.
        for _attempt in range(100):
            # Exit code 1 and "starting" (or no bus yet) until boot is over.
            state = attempt(["podman", "exec", name, "systemctl", "is-system-running"]).stdout
            if state.strip() in {"running", "degraded"}:
                return name
            time.sleep(0.2)
        raise BenchmarkError(f"{name}: systemd did not finish booting")

    def start_sshd(self, address, public_key):
        """sshd on address:2222 only, fresh host keys, root by the run's key only; the host's public key."""
        config = (
            f"ListenAddress {address}:{SSH_PORT}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        )
        script = (
            "set -e; rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; "
            f"printf '%s' '{config}' > /etc/ssh/sshd_config.d/prosody-stack-benchmark.conf; "
            "install -d -m 0700 /root/.ssh; cat > /root/.ssh/authorized_keys; chmod 0600 /root/.ssh/authorized_keys; "
            "systemctl restart ssh; cat /etc/ssh/ssh_host_ed25519_key.pub"
        )
        host_key = self.exec(address, "sh", "-c", script, input_text=public_key).stdout.split()
        wait_for_port(address, SSH_PORT, timeout=30)
        return " ".join(host_key[:2])

    def remove(self, address, name=None):
        name = name or self.started.get(address)
        if name:
            run(["podman", "rm", "--force", "--ignore", "--time", "0", name], what=f"podman rm {name}")
        self.started.pop(address, None)

    def remove_all(self):
        for address in list(self.started):
            self.remove(address)
