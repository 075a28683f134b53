"""prosody_policy_results / prosody_policy_report: the shipped policies and the requirement rules."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "policies").glob("*.yml"))}
HOST = "xmpp.example.test"


def _outcome(filters, merged, claimed, policies=None):
    results = filters["prosody_policy_results"](merged, policies or SHIPPED, claimed, HOST)
    return {result["policy"]: result for result in results}


def test_every_shipped_policy_has_a_broken_inventory_that_claims_it():
    cases = {path.parent.name for path in (ROOT / "tests" / "broken").glob("policy-*/expected.txt")}
    assert {f"policy-{name}" for name in SHIPPED} <= cases


# Settings that satisfy one shipped policy (the rest of the settings empty).
HOLDS = [
    pytest.param(
        "strict-tls",
        {"layer02_stream": {"encryption": {"s2s_secure_auth": True}}},
        id="strict-tls-with-secure-s2s",
    ),
    pytest.param(
        "strict-tls",
        {
            "layer02_stream": {"encryption": {"s2s_secure_auth": True}},
            "layer01_transport": {"compression": {"enabled": False, "modules": {"compression": True}}},
        },
        id="strict-tls-compression-topic-off",
    ),
    pytest.param("data-retention", {}, id="data-retention-by-prosody-defaults"),
    pytest.param(
        "data-retention",
        {
            "layer06_storage": {"archiving": {"archive_expires_after": "52w"}},
            "prosody_environment_settings": {"log": {"info": "*syslog", "error": "/var/log/e"}},
        },
        id="data-retention-52-weeks-is-under-1y",
    ),
    pytest.param("invite-only-registration", {}, id="invite-only-registration-closed"),
    pytest.param(
        "invite-only-registration",
        {"layer02_stream": {"authentication": {"allow_registration": True, "modules": {"invites_register": True}}}},
        id="invite-only-registration-open-with-invites",
    ),
    pytest.param(
        "account-self-deletion",
        {"layer02_stream": {"authentication": {"modules": {"register": True}}}},
        id="account-self-deletion",
    ),
    pytest.param(
        "hashed-passwords",
        {"prosody_domains": [{"name": "a", "authentication": "ldap"}]},
        id="hashed-passwords-ldap-domain",
    ),
]


@pytest.mark.parametrize(("policy", "merged"), HOLDS)
def test_policy_holds(filters, policy, merged):
    result = _outcome(filters, merged, {policy: None})[policy]
    assert result["violations"] == []
    assert result["holds"] and result["claimed"]


# Settings that break one shipped policy, and the exact message.
BROKEN = [
    pytest.param(
        "strict-tls",
        {"layer02_stream": {"encryption": {"s2s_secure_auth": False}}},
        "policy strict-tls: servers authenticate each other by certificate: "
        "layer02_stream.encryption.s2s_secure_auth: false is not allowed (allowed: true)",
        id="strict-tls-s2s-auth",
    ),
    pytest.param(
        "strict-tls",
        {"layer01_transport": {"tls": {"tls_profile": "old"}}},
        'policy strict-tls: a TLS profile without TLS 1.0 and 1.1: layer01_transport.tls.tls_profile: "old" '
        "is not allowed (allowed: modern, intermediate)",
        id="strict-tls-old-profile",
    ),
    pytest.param(
        "strict-tls",
        {"prosody_domains": [{"name": "a"}, {"name": "b", "c2s_require_encryption": False}]},
        "policy strict-tls: no domain lets clients skip encryption: prosody_domains[1].c2s_require_encryption: "
        "false is not allowed (allowed: true)",
        id="strict-tls-domain-override",
    ),
    pytest.param(
        "strict-tls",
        {"layer01_transport": {"compression": {"modules": {"compression": True}}}},
        "policy strict-tls: no stream compression: layer01_transport.compression.modules.compression: "
        "true is not allowed (allowed: false)",
        id="strict-tls-compression",
    ),
    pytest.param(
        "strict-tls",
        {"layer02_stream": {"encryption": {"s2s_insecure_domains": ["old.example"]}}},
        "policy strict-tls: no servers exempt from encryption: layer02_stream.encryption.s2s_insecure_domains: "
        '["old.example"] is too long (allowed: an empty list)',
        id="strict-tls-insecure-domains",
    ),
    pytest.param(
        "data-retention",
        {"layer06_storage": {"archiving": {"archive_expires_after": "never"}}},
        'policy data-retention: archived messages expire: layer06_storage.archiving.archive_expires_after: "never" '
        "is longer than allowed (allowed: a period of at most 1y)",
        id="data-retention-never",
    ),
    pytest.param(
        "data-retention",
        {"prosody_domains": [{"name": "a", "components": [{"name": "c", "muc_log_expires_after": 40000000}]}]},
        "policy data-retention: no group chat service keeps archives longer: "
        "prosody_domains[0].components[0].muc_log_expires_after: 40000000 is longer than allowed "
        "(allowed: a period of at most 1y)",
        id="data-retention-muc-seconds",
    ),
    pytest.param(
        "data-retention",
        {"prosody_environment_settings": {"log": {"debug": "/var/log/prosody/debug.log"}}},
        'policy data-retention: no message contents in the logs: prosody_environment_settings.log: "debug" '
        "is not allowed (allowed: info, warn, error)",
        id="data-retention-debug-log",
    ),
    pytest.param(
        "invite-only-registration",
        {"layer02_stream": {"authentication": {"allow_registration": True}}},
        "policy invite-only-registration: open sign-up needs the invitation module: "
        "layer02_stream.authentication.modules.invites_register: not set (allowed: true)",
        id="invite-only-open-without-invites",
    ),
    pytest.param(
        "invite-only-registration",
        {
            "layer02_stream": {
                "authentication": {
                    "allow_registration": True,
                    "registration_invite_only": False,
                    "modules": {"invites_register": True},
                }
            }
        },
        "policy invite-only-registration: open sign-up accepts only invitations: "
        "layer02_stream.authentication.registration_invite_only: false is not allowed (allowed: true)",
        id="invite-only-open-to-anyone",
    ),
    pytest.param(
        "account-self-deletion",
        {},
        "policy account-self-deletion: account removal is served: "
        "layer02_stream.authentication.modules.register: not set (allowed: true)",
        id="account-self-deletion-not-loaded",
    ),
    pytest.param(
        "hashed-passwords",
        {"layer02_stream": {"authentication": {"authentication": "internal_plain"}}},
        "policy hashed-passwords: passwords stored as salted hashes or not at all: "
        'layer02_stream.authentication.authentication: "internal_plain" is not allowed (allowed: internal_hashed, '
        "ldap, ldap2, dovecot, imap, http_async, custom_http, oauth_external, ccert, anonymous)",
        id="hashed-passwords-plain",
    ),
]


@pytest.mark.parametrize(("policy", "merged", "message"), BROKEN)
def test_policy_is_broken_with_a_message_naming_policy_requirement_key_and_value(filters, policy, merged, message):
    result = _outcome(filters, merged, {policy: None})[policy]
    assert not result["holds"]
    assert f"{HOST}: {message}" in result["violations"]


def test_unclaimed_policies_are_reported_but_not_claimed(filters):
    outcome = _outcome(filters, {}, {})
    assert set(outcome) == set(SHIPPED)
    assert not any(result["claimed"] for result in outcome.values())
    assert not outcome["account-self-deletion"]["holds"]


def test_parameters_come_from_the_claim(filters):
    merged = {"layer06_storage": {"archiving": {"archive_expires_after": "8w"}}}
    assert _outcome(filters, merged, {"data-retention": None})["data-retention"]["holds"]
    strict = _outcome(filters, merged, {"data-retention": {"max_archive_age": "30d"}})["data-retention"]
    assert strict["parameters"] == {"max_archive_age": "30d"}
    assert strict["violations"] == [
        f"{HOST}: policy data-retention: archived messages expire: "
        'layer06_storage.archiving.archive_expires_after: "8w" is longer than allowed '
        "(allowed: a period of at most 30d)"
    ]


def test_secret_values_are_never_shown(filters):
    policy = {
        "description": "d",
        "requirements": [
            {"name": "no password", "key": "layer06_storage.backends.sql.password", "rule": {"allowed": [""]}}
        ],
    }
    merged = {"layer06_storage": {"backends": {"sql": {"password": "hunter2"}}}}
    (result,) = filters["prosody_policy_results"](merged, {"p": policy}, {"p": None}, HOST)
    assert result["violations"] and "hunter2" not in " ".join(result["violations"])


def test_a_requirement_without_default_fails_when_unset_and_wildcards_skip_absent_keys(filters):
    policy = {
        "description": "d",
        "requirements": [
            {"name": "set", "key": "layer01_transport.tls.tls_profile", "rule": {"allowed": ["modern"]}},
            {"name": "domains", "key": "prosody_domains.*.s2s_secure_auth", "rule": {"allowed": [True]}},
        ],
    }
    merged = {"prosody_domains": [{"name": "a"}, {"name": "b", "s2s_secure_auth": True}]}
    (result,) = filters["prosody_policy_results"](merged, {"p": policy}, {"p": None}, HOST)
    unset = "layer01_transport.tls.tls_profile: not set (allowed: modern)"
    assert result["violations"] == [f"{HOST}: policy p: set: {unset}"]


def test_a_disabled_topic_counts_as_unset(filters):
    merged = {"layer02_stream": {"authentication": {"enabled": False, "modules": {"register": True}}}}
    assert not _outcome(filters, merged, {})["account-self-deletion"]["holds"]


INVALID_CALLS = [
    pytest.param({}, {"no-such": None}, "prosody_policies.no-such: no such policy (allowed: ", id="unknown"),
    pytest.param(
        {},
        {"strict-tls": {"max_archive_age": "1w"}},
        "prosody_policies.strict-tls.max_archive_age: unknown parameter "
        "(allowed: none: this policy takes no parameters)",
        id="parameter-of-another-policy",
    ),
    pytest.param(
        {},
        {"data-retention": {"max_age": "1w"}},
        "prosody_policies.data-retention.max_age: unknown parameter (allowed: max_archive_age)",
        id="unknown-parameter",
    ),
    pytest.param({}, {"data-retention": "1w"}, "prosody_policies.data-retention: expected a mapping", id="bad-params"),
    pytest.param({}, ["strict-tls"], "prosody_policies: expected a mapping", id="claims-as-list"),
    pytest.param("x", {}, "prosody_policy_results: expected the merged settings", id="merged-not-mapping"),
]


@pytest.mark.parametrize(("merged", "claimed", "message"), INVALID_CALLS)
def test_invalid_calls_say_what_is_wrong(filters, merged, claimed, message):
    with pytest.raises(AnsibleFilterError, match=None) as raised:
        filters["prosody_policy_results"](merged, SHIPPED, claimed, HOST)
    assert message in str(raised.value)


MALFORMED_POLICIES = [
    pytest.param("not a mapping", "policies/p.yml: expected a mapping", id="not-mapping"),
    pytest.param({"description": "d", "requirements": []}, "non-empty list of requirements", id="no-requirements"),
    pytest.param({"description": "d", "rules": []}, "policies/p.yml: unknown key rules", id="unknown-key"),
    pytest.param(
        {"description": "d", "requirements": [{"name": "n", "key": "k"}]},
        "policies/p.yml: requirements[0]: missing rule",
        id="requirement-without-rule",
    ),
    pytest.param(
        {"description": "d", "requirements": [{"name": "n", "key": "k", "rule": {}, "if": {}}]},
        "policies/p.yml: requirements[0]: unknown key if",
        id="requirement-unknown-key",
    ),
    pytest.param(
        {"description": "d", "requirements": [{"name": "n", "key": "k", "rule": {"allowed": 1}}]},
        "policies/p.yml: requirements[0] (n): Cerberus refuses the rule: ",
        id="rule-cerberus-refuses",
    ),
]


@pytest.mark.parametrize(("policy", "message"), MALFORMED_POLICIES)
def test_malformed_policy_files_are_named(filters, policy, message):
    with pytest.raises(AnsibleFilterError) as raised:
        filters["prosody_policy_results"]({"layer01_transport": {}}, {"p": policy}, {}, HOST)
    assert message in str(raised.value)


def test_report_lists_every_host_and_policy_with_claims_and_reasons(filters):
    outcomes = {
        "b.example": filters["prosody_policy_results"]({}, SHIPPED, {"account-self-deletion": None}, "b.example"),
        "a.example": filters["prosody_policy_results"](
            {"layer02_stream": {"authentication": {"modules": {"register": True}}}}, SHIPPED, {}, "a.example"
        ),
    }
    report = filters["prosody_policy_report"](outcomes).splitlines()
    assert report[0].startswith("a.example: ")
    assert any(line.split() == ["account-self-deletion", "claimed", "BROKEN", "(1)"] for line in report)
    reason = "account removal is served: layer02_stream.authentication.modules.register: not set (allowed: true)"
    assert f"      - {reason}" in report
    with pytest.raises(AnsibleFilterError, match=r"expected \{host: results\}"):
        filters["prosody_policy_report"](["x"])
