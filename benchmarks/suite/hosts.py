"""Fresh hosts for a converge: new containers with sshd, the run's key, pinned host keys."""

from pathlib import Path

from .common import BenchmarkError, progress, run
from .containers import SSH_PORT, wait_for_port


def make_ssh_key(ssh_dir):
    """The run's key pair (ed25519, no passphrase) in ssh_dir; returns the directory."""
    ssh_dir = Path(ssh_dir)
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "prosody-stack benchmark", "-f", ssh_dir / "id_ed25519"])
    return ssh_dir


class HostFactory:
    """Makes fresh SSH-reachable hosts from one image; the run's containers, key and known_hosts."""

    def __init__(self, containers, ssh_dir, image):
        self.containers, self.ssh_dir, self.image = containers, Path(ssh_dir), image

    def fresh(self, addresses):
        """New containers on the addresses (old ones replaced), reachable over SSH; known_hosts pinned."""
        public_key = (self.ssh_dir / "id_ed25519.pub").read_text()
        known_hosts = []
        for address in addresses:
            self.containers.start(address, self.image)
            host_key = self.containers.start_sshd(address, public_key)
            known_hosts.append(f"[{address}]:{SSH_PORT} {host_key}\n")
        (self.ssh_dir / "known_hosts").write_text("".join(known_hosts))
        return addresses

    def check_converged(self, address, port=5222):
        """Prosody runs under systemd and accepts clients on its address; the converge stayed offline.

        An empty package list (as in the image) proves no apt-get update ran:
        a converge that downloads from the Debian archive would break the
        benchmark's rule (loopback only) and time a download, not a deploy.
        """
        self.containers.exec(address, "systemctl", "is-active", "--quiet", "prosody")
        wait_for_port(address, port, timeout=30)
        lists = self.containers.exec(address, "find", "/var/lib/apt/lists", "-name", "*_Packages*").stdout.split()
        if lists:
            raise BenchmarkError(f"{address}: the converge downloaded package lists ({lists[0]} ...): it left loopback")

    def remove(self, addresses):
        for address in addresses:
            self.containers.remove(address)
        progress(f"removed {len(addresses)} container(s)")
