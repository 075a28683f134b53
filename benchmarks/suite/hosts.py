"""Fresh hosts for a converge: new containers with sshd, the run's key, pinned host keys."""

from pathlib import Path

from .common import progress, run
from .containers import SSH_PORT, wait_for_port


def make_ssh_key(ssh_dir):
    """The run's key pair (ed25519, no passphrase) in ssh_dir; returns the directory."""
    ssh_dir = Path(ssh_dir)
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "prosody-stack benchmark", "-f", ssh_dir / "id_ed25519"])
    return ssh_dir


def fresh_hosts(containers, addresses, ssh_dir, series="0.12"):
    """New containers on the addresses (old ones replaced), reachable over SSH; known_hosts pinned to their keys."""
    ssh_dir = Path(ssh_dir)
    public_key = (ssh_dir / "id_ed25519.pub").read_text()
    known_hosts = []
    for address in addresses:
        containers.start(address, series)
        host_key = containers.start_sshd(address, public_key)
        known_hosts.append(f"[{address}]:{SSH_PORT} {host_key}\n")
    (ssh_dir / "known_hosts").write_text("".join(known_hosts))
    return addresses


def prosody_answers(containers, address, port=5222):
    """Prosody runs under systemd in the container and accepts clients on its own address."""
    containers.exec(address, "systemctl", "is-active", "--quiet", "prosody")
    wait_for_port(address, port, timeout=30)


def remove_hosts(containers, addresses):
    for address in addresses:
        containers.remove(address)
    if addresses:
        progress(f"removed {len(addresses)} container(s)")
