"""The vault's values reach only the files Prosody needs them in.

Every inventory is rendered with -vv; its log, the review file
<host>.settings.json and every file of every tree are scanned for each
secret of the inventory's vault.  A secret may appear only in the file whose
option carries it, and those files are not world-readable.
"""

import fnmatch
import subprocess

import pytest
import yaml
from conftest import ENVIRONMENTS, ROOT, ansible_playbook

# Where secrets belong: SQL password, TURN secret, component secrets.
ALLOWED = ("stack/06-storage/backends.cfg.lua", "stack/05-services/messaging.cfg.lua", "domains/*.cfg.lua")


def vault_secrets(environment):
    view = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-vault"), "view", f"inventories/{environment}/group_vars/all/vault.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {name: value for name, value in yaml.safe_load(view.stdout).items() if isinstance(value, str)}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_secrets_stay_where_they_belong(tmp_path, environment):
    secrets = vault_secrets(environment)
    assert secrets, "the sample vault holds secrets to look for"
    run = ansible_playbook(
        "playbooks/render.yml", "-vv", "-i", f"inventories/{environment}", "-e", f"render_dir={tmp_path}"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    log = run.stdout + run.stderr
    for name, value in secrets.items():
        assert value not in log, f"{name} appears in the -vv log of render.yml"
    for path in sorted(tmp_path.rglob("*")):
        if not path.is_file():
            continue
        relative = str(path.relative_to(tmp_path)).split("/", 1)[-1]
        holds = [name for name, value in secrets.items() if value in path.read_text()]
        if holds:
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in ALLOWED), f"{holds} found in {path}"
            assert path.stat().st_mode & 0o007 == 0, f"{path} holds {holds} and is world-readable"
