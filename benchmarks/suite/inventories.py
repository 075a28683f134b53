"""Inventories the benchmark generates in its temporary directory (never in the checkout).

- render_inventory: N production-like hosts (inventories/production's
  group_vars, vault included) for playbooks/render.yml; no host is contacted.
- converge_inventory: development-like hosts (inventories/development's
  group_vars) reached over SSH in the benchmark's containers.
- baseline_inventory: the same hosts for the per-file baseline, fed with the
  variables the build already merged (benchmarks/playbooks/render-inputs.yml).
"""

from pathlib import Path

import yaml

from .common import ROOT, write_private_json
from .containers import SSH_PORT, host_name


def _write_yaml(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


def _link_group_vars(inventory, source_inventory):
    """group_vars of a shipped inventory, linked (not copied): the benchmark measures the real settings."""
    inventory.mkdir(parents=True, exist_ok=True)
    (inventory / "group_vars").symlink_to(ROOT / "inventories" / source_inventory / "group_vars")


def render_host_name(index):
    """bench001.example.com ...: the same host gets the same name in every inventory size."""
    return f"bench{index:03d}.example.com"


def _render_host_vars(index):
    """What a production host needs (see inventories/production/host_vars): address, series, a domain."""
    address = f"127.1.{index // 250}.{index % 250 + 1}"
    domain = f"chat{index:03d}.example.com"
    return {
        "ansible_host": address,
        "prosody_listen_address": address,
        "prosody_series": "0.12" if index % 2 else "13.0",
        "prosody_domains_host": [
            {
                "name": domain,
                "components": [
                    {"name": f"conference.{domain}", "type": "muc", "modules": {"muc_mam": True}},
                    {"name": f"upload.{domain}", "type": "http_file_share"},
                ],
            }
        ],
    }


def render_inventory(directory, count):
    """An inventory of `count` production hosts, alternating between the EU and US groups."""
    inventory = Path(directory)
    _link_group_vars(inventory, "production")
    regions = {"prosody_eu": {}, "prosody_us": {}}
    for index in range(1, count + 1):
        name = render_host_name(index)
        regions["prosody_eu" if index % 2 else "prosody_us"][name] = None
        _write_yaml(inventory / "host_vars" / f"{name}.yml", _render_host_vars(index))
    children = {group: {"hosts": hosts} for group, hosts in regions.items() if hosts}
    _write_yaml(inventory / "hosts.yml", {"prosody": {"children": children}})
    return inventory


def ssh_settings(address, ssh_dir):
    """How Ansible reaches a benchmark container: root over SSH with the run's key, host key pinned."""
    known_hosts = Path(ssh_dir) / "known_hosts"
    return {
        "ansible_connection": "ssh",
        "ansible_host": address,
        "ansible_port": SSH_PORT,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(Path(ssh_dir) / "id_ed25519"),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
    }


def _hosts_file(inventory, addresses):
    _write_yaml(inventory / "hosts.yml", {"prosody": {"hosts": {host_name(address): None for address in addresses}}})


def converge_inventory(directory, addresses, ssh_dir, series=None):
    """Development settings (group_vars linked) on the given container addresses, over SSH.

    series: {address: Prosody series} where a host differs from development's 0.12.
    ssh_dir None: an inventory only rendered, never deployed.
    """
    inventory = Path(directory)
    _link_group_vars(inventory, "development")
    for address in addresses:
        host_vars = {"prosody_listen_address": address, **(ssh_settings(address, ssh_dir) if ssh_dir else {})}
        if series and address in series:
            host_vars["prosody_series"] = series[address]
        _write_yaml(inventory / "host_vars" / f"{host_name(address)}.yml", host_vars)
    _hosts_file(inventory, addresses)
    return inventory


def baseline_inventory(directory, dumps, ssh_dir):
    """The baseline's inventory: per host the merged variables the build dumped, plus SSH settings.

    dumps: {address: render-inputs.yml dump of that host}.  The host_vars hold
    secrets, so they are written 0600.
    """
    inventory = Path(directory)
    (inventory / "host_vars").mkdir(parents=True, exist_ok=True)
    for address, dump in dumps.items():
        # inventory_hostname is Ansible's own; every other template variable comes from the dump.
        variables = {name: value for name, value in dump["variables"].items() if name != "inventory_hostname"}
        write_private_json(
            inventory / "host_vars" / f"{host_name(address)}.json", {**variables, **ssh_settings(address, ssh_dir)}
        )
    _hosts_file(inventory, list(dumps))
    return inventory
