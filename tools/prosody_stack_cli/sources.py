"""The five levels a settings block is merged from, each with the file (and line) it comes from.

roles/prosody/tasks/main.yml merges every block from, lowest first: the
role default `<block>_defaults`, the environment profile's key `<block>`,
and the inventory variables `<block>`, `<block>_group` and `<block>_host`.
Ansible's own variable precedence decides which group_vars or host_vars
file provides each inventory variable (a variable comes whole from one
file), so the inventory is read here with Ansible's own inventory and
variable code, in this process; no host is contacted.  ansible-core 2.19
tags every value read from YAML with its origin (file, line, column): that
is where the files and lines shown come from.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from .common import ROOT, VENV_BIN, CannotRun
from .options import Item

PROSODY_GROUP = "prosody"
PROFILE = "environment_profile"


@dataclass
class Level:
    """One of the five levels of a block on one host."""

    kind: str  # role_default, environment_profile, inventory, inventory_group or inventory_host
    label: str  # how the level is shown: "role default", "environment profile" or the variable's name
    variable: str  # the variable (or profile key) that holds the block at this level
    value: object = None  # the block as written (Ansible-tagged), None when the level does not define it
    defined: bool = False
    origin: object = None  # where the block itself is defined (an Origin), when known
    file: Path | None = None  # the file the level is read from (even when it does not define the block)
    shadowed: list = field(default_factory=list)  # other files defining the same variable, ignored by Ansible


@dataclass
class Reach:
    """What one level says at a path: sets a value, removes the inherited one, or says nothing."""

    status: str  # "sets", "removes" or "silent"
    value: object = None
    origin: object = None  # the Origin of the deepest key reached (its line)
    why: str = ""  # for "removes": null, or state: absent


def reach(block_value, steps):
    """What a level's block (as written) says at `steps` (the path without its block)."""
    value, origin = block_value, None
    for depth, step in enumerate(steps):
        status, value, origin, why = _step(value, step, origin, first=depth == 0)
        if status != "sets":
            return Reach(status, origin=origin, why=why)
    return Reach("sets", value=value, origin=origin)


def _step(value, step, origin, first):
    """One step down: ("sets", the value there, its origin, "") or ("silent"/"removes", None, origin, why)."""
    if isinstance(step, Item):
        return _item_step(value, step, origin, first)
    if not isinstance(value, dict) or step not in value:
        return "silent", None, origin, ""
    origin = _key_origin(value, step) or origin
    if value[step] is None:
        return "removes", None, origin, "null"
    return "sets", value[step], origin, ""


def _item_step(value, step, origin, first):
    """One step into a list of named entries (domains, components), following prosody_merge's rules."""
    if isinstance(value, list) and not value and not first:
        # An empty list replaces an inherited list of named entries.
        return "removes", None, origin, "[] (removes every entry)"
    entries = value if isinstance(value, list) else []
    entry = next((item for item in entries if isinstance(item, dict) and item.get("name") == step.name), None)
    if entry is None:
        return "silent", None, origin, ""
    origin = _origin(entry) or origin
    if entry.get("state") == "absent":
        return "removes", None, origin, "state: absent"
    return "sets", entry, origin, ""


def _origin_class():
    try:
        from ansible._internal._datatag._tags import Origin  # noqa: PLC0415 (ansible loads slowly: only when needed)
    except ImportError as error:
        raise CannotRun("explain needs ansible-core 2.19 or later (origin tags): run `make setup`") from error
    return Origin


def _origin(value):
    return _origin_class().get_tag(value)


def _key_origin(mapping, key):
    """The origin of the key itself (its line), else of its value."""
    for candidate in mapping:
        if candidate == key:
            return _origin(candidate) or _origin(mapping[key])
    return None


def plain(value):
    """Plain Python data (dict, list, str, ...) from Ansible-tagged values; vaulted strings stay hidden."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    for kind in (int, float, str):
        # Tagged values are subclasses of these: keep the plain type only.
        if isinstance(value, kind):
            return kind(value)
    # An inline !vault value (EncryptedString) or anything else: never shown.
    return "********"


class Inventory:
    """An inventory read by Ansible's own code: its hosts, each host's variables and levels."""

    def __init__(self, path):
        if not (VENV_BIN / "ansible-playbook").exists():
            raise CannotRun(f"{VENV_BIN / 'ansible-playbook'} is missing: run `make setup` first")
        # Ansible reads its configuration (vault password file, plugin paths)
        # when first imported: point it at the project's before that.
        os.environ["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
        from ansible import constants  # noqa: PLC0415 (slow to import: only for explain)
        from ansible.cli import CLI  # noqa: PLC0415
        from ansible.errors import AnsibleError  # noqa: PLC0415
        from ansible.inventory.manager import InventoryManager  # noqa: PLC0415
        from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
        from ansible.plugins.loader import init_plugin_loader  # noqa: PLC0415
        from ansible.vars.manager import VariableManager  # noqa: PLC0415

        self.path = path
        self._error = AnsibleError
        init_plugin_loader()
        self.loader = DataLoader()
        self.loader.set_basedir(str(ROOT))
        try:
            secrets = CLI.setup_vault_secrets(
                self.loader,
                vault_ids=constants.DEFAULT_VAULT_IDENTITY_LIST,
                vault_password_files=[constants.DEFAULT_VAULT_PASSWORD_FILE],
            )
            self.loader.set_vault_secrets(secrets)
            self.manager = InventoryManager(loader=self.loader, sources=[str(path)])
            self.variables = VariableManager(loader=self.loader, inventory=self.manager)
        except AnsibleError as error:
            raise CannotRun(f"Ansible cannot read inventory {path}: {error}") from error
        self._vars = {}

    def prosody_hosts(self):
        return sorted(host.name for host in self.manager.get_hosts(PROSODY_GROUP))

    def all_hosts(self):
        return sorted(host.name for host in self.manager.get_hosts("all"))

    def host_vars(self, host):
        """The host's inventory variables as Ansible sees them (not templated; origins kept)."""
        if host not in self._vars:
            try:
                self._vars[host] = self.variables.get_vars(host=self.manager.get_host(host), include_hostvars=False)
            except self._error as error:
                raise CannotRun(f"Ansible cannot read the variables of {host}: {error}") from error
        return self._vars[host]

    def template(self, host, value):
        """`value` templated with the host's variables, as the play would; None when it cannot be here."""
        from ansible.template import Templar  # noqa: PLC0415

        try:
            return Templar(loader=self.loader, variables=self.host_vars(host)).template(value)
        except Exception:  # any template error: the value is then shown as written only
            return None

    def environment(self, host):
        """The host's prosody_environment (templated), or None when unset."""
        value = self.host_vars(host).get("prosody_environment")
        value = self.template(host, value) if value else None
        return str(value) if value else None

    def load(self, path):
        """A YAML (or vaulted) file read as Ansible reads it, origins kept; None when unreadable."""
        try:
            return self.loader.load_from_file(str(path))
        except self._error:
            return None

    def levels(self, host, block):
        """The five levels of `block` on `host`, lowest precedence first."""
        variables = self.host_vars(host)
        return [
            self._role_default(variables, block),
            self._profile(host, block),
            *(
                self._inventory_level(host, variables, kind, f"{block}{suffix}")
                for kind, suffix in (("inventory", ""), ("inventory_group", "_group"), ("inventory_host", "_host"))
            ),
        ]

    def _role_default(self, variables, block):
        name = f"{block}_defaults"
        if name in variables:
            # An inventory variable beats a role default in Ansible's precedence.
            origin = _origin(variables[name])
            return Level("role_default", "role default", name, variables[name], True, origin, _path(origin))
        for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml")):
            data = self.load(defaults)
            if isinstance(data, dict) and name in data:
                return Level("role_default", "role default", name, data[name], True, _key_origin(data, name), defaults)
        return Level("role_default", "role default", name)

    def _profile(self, host, block):
        environment = self.environment(host)
        if environment is None:
            return Level(PROFILE, "environment profile", block)
        profile_file = ROOT / "environments" / f"{environment}.yml"
        profile = self.load(profile_file) if profile_file.is_file() else None
        if not isinstance(profile, dict) or block not in profile:
            return Level(PROFILE, "environment profile", block, file=profile_file if profile_file.is_file() else None)
        origin = _key_origin(profile, block)
        return Level(PROFILE, "environment profile", block, profile[block], True, origin, profile_file)

    def _inventory_level(self, host, variables, kind, name):
        if name not in variables:
            return Level(kind, name, name)
        origin = _origin(variables[name])
        level = Level(kind, name, name, variables[name], True, origin, _path(origin))
        level.shadowed = self._other_definitions(host, name, level.file)
        return level

    def _other_definitions(self, host, name, winner):
        """[(file, Origin)] of the host's other group_vars/host_vars files that define `name`.

        Ansible takes a variable whole from the file with the highest
        precedence: a definition elsewhere is ignored, a common surprise.
        """
        found = []
        for path in self._vars_files(host):
            if winner is not None and path.resolve() == Path(winner).resolve():
                continue
            data = self.load(path)
            if isinstance(data, dict) and name in data:
                found.append((path, _key_origin(data, name)))
        return found

    def _vars_files(self, host):
        """The group_vars files of the host's groups and its host_vars files (Ansible's layout)."""
        groups = [group.name for group in self.manager.get_host(host).get_groups()]
        bases = [self.path / "group_vars" / group for group in groups] + [self.path / "host_vars" / host]
        files = []
        for base in bases:
            for candidate in (base, *(base.with_name(base.name + ext) for ext in (".yml", ".yaml", ".json"))):
                if candidate.is_file():
                    files.append(candidate)
            if base.is_dir():
                files += sorted(path for path in base.rglob("*") if path.is_file() and _vars_file(path))
        return files


def _vars_file(path):
    """A file Ansible reads in a group_vars/host_vars folder: YAML, JSON or no extension, not hidden."""
    return not path.name.startswith(".") and path.suffix in ("", ".yml", ".yaml", ".json")


def _path(origin):
    return Path(origin.path) if origin is not None and origin.path else None
