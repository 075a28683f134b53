"""Named policies (policies/<name>.yml) checked against each host's merged settings.

A policy is a list of requirements; each requirement names one key of the
merged settings (dotted, ``*`` for every item of a list or mapping) and the
Cerberus rules its value must follow, with the same rules and messages as the
schemas (prosody_schema.py).  An inventory claims policies in
``prosody_policies``; the preflight refuses a host that breaks one it claims,
and the compliance report (playbooks/compliance.yml) shows, per host, which of
all the shipped policies hold.

What "not set" means is written in the policy, because it is Prosody's
behaviour, not ours: a requirement's ``default`` is the value Prosody uses
when the key is absent (checked in its place); without one an absent key
breaks the requirement.  A key under a topic that is off (``enabled: false``)
is absent: Prosody never sees it.  Under a ``*`` only keys that exist are
checked (a domain without the option inherits the global one, which a
requirement of its own checks).
"""

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from ansible.errors import AnsibleFilterError
from cerberus.schema import SchemaError

# Filter plugins are loaded one file at a time; the schema module's
# validator and messages are shared by importing it from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import prosody_schema as schema

DOCUMENTATION = r"""
name: prosody_policy_results
short_description: Which policies one host's merged settings satisfy, with a message per broken requirement
description:
  - Checks every policy (the parsed files of C(policies/)) against the merged settings.
  - A requirement is C({name, key, rule, default?, when?}) - C(key) a dotted path into the merged
    settings (C(*) matches every list item or mapping key), C(rule) Cerberus rules (the schema
    rules, plus C(max_period)), C(default) the value Prosody uses when the key is not set,
    C(when) a mapping C({key: value}) that must all hold for the requirement to apply.
  - A string C($name) in a rule is the policy's parameter C(name) (its default, or the value the
    inventory gives in C(prosody_policies)).
  - Each message reads C(<host>: policy <policy>: <requirement>: <key>: <problem> (allowed: ...)).
options:
  _input:
    description: The host's merged settings (C(prosody_merged)).
    type: dict
    required: true
  policies:
    description: C({policy name: parsed policy file}).
    type: dict
    required: true
  claimed:
    description: C(prosody_policies) - C({policy name: {parameter: value} or null}).
    type: dict
    required: true
  host:
    description: The host's name, written at the start of every message.
    type: str
    required: true
---
name: prosody_policy_report
short_description: The compliance report - per host, which policies hold - as text
options:
  _input:
    description: C({host: results of prosody_policy_results}).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the policies of this host
  ansible.builtin.set_fact:
    prosody_policy_outcome: >-
      {{ prosody_merged | prosody_policy_results(policies, prosody_policies, inventory_hostname) }}
  # => [{policy: strict-tls, claimed: true, holds: false, parameters: {},
  #      violations: ['xmpp1.example.com: policy strict-tls: servers authenticate each other
  #        by certificate: layer02_stream.encryption.s2s_secure_auth: false is not allowed (allowed: true)']},
  #     {policy: data-retention, claimed: false, holds: true, ...}]

- name: Show the compliance report
  ansible.builtin.debug:
    msg: "{{ dict(hosts | zip(hosts | map('extract', hostvars, 'prosody_policy_outcome'))) | prosody_policy_report }}"
"""

RETURN = r"""
_value:
  description:
    - prosody_policy_results, one entry per policy, sorted by name -
      C({policy, description, claimed, holds, parameters, violations}).
    - prosody_policy_report, one line per host and policy, claimed ones marked.
  type: raw
"""

POLICY_KEYS = {"description", "parameters", "requirements"}
REQUIREMENT_KEYS = {"name", "key", "rule", "default", "when"}
PARAMETER = re.compile(r"^\$([a-z_]+)$")
PERIOD_UNITS = {"d": 86400, "w": 7 * 86400, "y": 365 * 86400}
NOT_SET = object()


# ---------------------------------------------------------------- periods


def _period_seconds(value):
    """Prosody's period (seconds, "never", "2d", "1 week", "1y") in seconds; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if value == "never":
        return float("inf")
    if isinstance(value, str) and schema.PERIOD.fullmatch(value):
        count, unit = re.match(r"([0-9]+) ?([a-z])", value).groups()
        return int(count) * PERIOD_UNITS[unit]
    return None


class _PolicyValidator(schema._SettingsValidator):
    """The schemas' validator with the rules only policies need."""

    def _validate_max_period(self, maximum, field, value):
        """{'type': ['integer', 'string']}"""
        seconds, limit = _period_seconds(value), _period_seconds(maximum)
        if seconds is None or limit is None:
            return  # the schema has already refused an unreadable period
        if seconds > limit:
            shown = schema._show(value, (*self.document_path, field))
            self._error(field, f"{shown} is longer than allowed (allowed: a period of at most {maximum})")


# ---------------------------------------------------------------- reading the policies


def _requirement_problem(requirement):
    """Why one requirement is malformed, or None."""
    if not isinstance(requirement, Mapping):
        return "is not a mapping"
    unknown = sorted(set(requirement) - REQUIREMENT_KEYS)
    missing = sorted({"name", "key", "rule"} - set(requirement))
    if unknown or missing:
        problem = f"unknown key {unknown[0]}" if unknown else f"missing {missing[0]}"
        return f"{problem} (allowed: {', '.join(sorted(REQUIREMENT_KEYS))}; name, key and rule required)"
    if not isinstance(requirement["rule"], Mapping):
        return "rule must be a mapping of Cerberus rules"
    if "when" in requirement and not isinstance(requirement["when"], Mapping):
        return "when must be a mapping {key: value}"
    try:
        _PolicyValidator({"value": dict(requirement["rule"])})
    except (SchemaError, TypeError, ValueError) as error:
        return f"({requirement['name']}): Cerberus refuses the rule: {error}"
    return None


def _policy_problem(name, policy):
    """Why a parsed policy file is malformed, or None."""
    where = f"policies/{name}.yml"
    if not isinstance(policy, Mapping):
        return f"{where}: expected a mapping with description and requirements"
    unknown = sorted(set(policy) - POLICY_KEYS)
    if unknown:
        return f"{where}: unknown key {unknown[0]} (allowed: {', '.join(sorted(POLICY_KEYS))})"
    requirements = policy.get("requirements")
    if not isinstance(policy.get("description"), str) or not schema._is_list(requirements) or not requirements:
        return f"{where}: needs a description (text) and a non-empty list of requirements"
    for index, requirement in enumerate(requirements):
        problem = _requirement_problem(requirement)
        if problem:
            return f"{where}: requirements[{index}]{'' if problem.startswith('(') else ':'} {problem}"
    return None


def _parameters(name, policy, given):
    """The policy's parameters: its defaults, overridden by what the inventory gives."""
    declared = policy.get("parameters") or {}
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise AnsibleFilterError(
            f"prosody_policies.{name}: expected a mapping of parameters or nothing, got {schema._kind(given)}"
        )
    unknown = sorted(set(given) - set(declared))
    if unknown:
        allowed = ", ".join(sorted(declared)) or "none: this policy takes no parameters"
        raise AnsibleFilterError(f"prosody_policies.{name}.{unknown[0]}: unknown parameter (allowed: {allowed})")
    return {**declared, **given}


def _substitute(rule, parameters):
    """The rule with every "$name" string replaced by the parameter's value."""
    if isinstance(rule, Mapping):
        return {key: _substitute(value, parameters) for key, value in rule.items()}
    if schema._is_list(rule):
        return [_substitute(value, parameters) for value in rule]
    match = PARAMETER.match(rule) if isinstance(rule, str) else None
    return parameters[match.group(1)] if match and match.group(1) in parameters else rule


# ---------------------------------------------------------------- finding the keys


def _without_disabled_topics(merged):
    """The merged settings with every topic that is off emptied: Prosody never sees its keys."""
    cleaned = dict(merged)
    for block, layer in merged.items():
        if block.startswith("layer") and isinstance(layer, Mapping):
            cleaned[block] = {
                topic: settings if schema._topic_enabled(settings) else {} for topic, settings in layer.items()
            }
    return cleaned


def _matches(node, parts, path=()):
    """(path, value) for every key the dotted pattern names; NOT_SET where a plain key is absent."""
    if not parts:
        yield path, node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = enumerate(node) if schema._is_list(node) else node.items() if isinstance(node, Mapping) else ()
        for key, child in items:
            yield from (match for match in _matches(child, rest, (*path, key)) if match[1] is not NOT_SET)
    elif isinstance(node, Mapping) and head in node:
        yield from _matches(node[head], rest, (*path, head))
    elif "*" not in parts:
        yield (*path, *parts), NOT_SET


def _applies(requirement, settings):
    """A requirement with `when` applies only where every listed key has the listed value."""
    for key, wanted in (requirement.get("when") or {}).items():
        found = [value for _, value in _matches(settings, key.split("."))]
        if not found or any(value is NOT_SET or value != wanted for value in found):
            return False
    return True


# ---------------------------------------------------------------- checking


def _with_allowed_text(rule):
    """The rule with meta.allowed saying, in words, what it accepts (for every message)."""
    meta = rule.get("meta") or {}
    if meta.get("allowed"):
        return rule
    if "max_period" in rule:
        text = f"a period of at most {rule['max_period']}"
    elif rule.get("maxlength") == 0:
        text = "an empty list"
    else:
        text = schema._describe(rule)
    return {**rule, "meta": {**meta, "allowed": text}}


def _problems(path, value, rule, requirement):
    """Messages for one key's value against the requirement's rules."""
    field = schema._path_text(path)
    rule = _with_allowed_text(rule)
    if value is NOT_SET and "default" not in requirement:
        return [f"{field}: not set (allowed: {rule['meta']['allowed']})"]
    shown_default = value is NOT_SET
    value = requirement["default"] if shown_default else value
    try:
        validator = _PolicyValidator({field: dict(rule)}, allow_unknown=True)
        validator.validate({field: value})
    except (SchemaError, TypeError, ValueError) as error:
        raise AnsibleFilterError(f"prosody_policy_results: requirement {requirement['name']!r}: {error}") from error
    context = schema._Context(validator.schema, {field: value}, {})
    note = f"not set, so Prosody's default {schema._show(value)} applies: " if shown_default else ""
    return [f"{where}: {note}{text}" for where, text in dict.fromkeys(schema._leaves(validator._errors, context))]


def _violations(name, policy, parameters, settings, host):
    messages = []
    for requirement in policy["requirements"]:
        if not _applies(requirement, settings):
            continue
        rule = _substitute(requirement["rule"], parameters)
        for path, value in _matches(settings, requirement["key"].split(".")):
            for problem in _problems(path, value, rule, requirement):
                messages.append(f"{host}: policy {name}: {requirement['name']}: {problem}")
    return messages


def prosody_policy_results(merged, policies, claimed, host):
    """Every policy's outcome on one host; see DOCUMENTATION."""
    if not isinstance(merged, Mapping):
        raise AnsibleFilterError(f"prosody_policy_results: expected the merged settings, got {schema._kind(merged)}")
    if not isinstance(policies, Mapping) or not policies:
        raise AnsibleFilterError("prosody_policy_results: policies must be a non-empty mapping {name: policy}")
    claimed = {} if claimed is None else claimed
    if not isinstance(claimed, Mapping):
        raise AnsibleFilterError(
            f"prosody_policies: expected a mapping {{policy name: parameters or null}}, got {schema._kind(claimed)}"
        )
    merged, policies, claimed = schema._plain(merged), schema._plain(policies), schema._plain(claimed)
    unknown = sorted(set(claimed) - set(policies))
    if unknown:
        allowed = ", ".join(sorted(policies))
        raise AnsibleFilterError(
            f"prosody_policies.{unknown[0]}: no such policy (allowed: {allowed}: the files in policies/)"
        )
    settings = _without_disabled_topics(merged)
    results = []
    for name in sorted(policies):
        problem = _policy_problem(name, policies[name])
        if problem:
            raise AnsibleFilterError(problem)
        parameters = _parameters(name, policies[name], claimed.get(name))
        violations = _violations(name, policies[name], parameters, settings, host)
        results.append(
            {
                "policy": name,
                "description": policies[name]["description"].strip(),
                "claimed": name in claimed,
                "holds": not violations,
                "parameters": parameters,
                "violations": violations,
            }
        )
    return results


def prosody_policy_report(outcomes):
    """The compliance report as text; see DOCUMENTATION."""
    if not isinstance(outcomes, Mapping):
        raise AnsibleFilterError(f"prosody_policy_report: expected {{host: results}}, got {schema._kind(outcomes)}")
    lines = []
    for host in sorted(outcomes):
        results = outcomes[host]
        if not schema._is_list(results):
            raise AnsibleFilterError(f"prosody_policy_report: {host}: expected a list of results")
        held = sum(result["holds"] for result in results)
        lines.append(f"{host}: {held} of {len(results)} policies hold")
        for result in results:
            state = "holds" if result["holds"] else f"BROKEN ({len(result['violations'])})"
            claim = "claimed" if result["claimed"] else "       "
            params = ", ".join(f"{key}={value}" for key, value in sorted(result["parameters"].items()))
            lines.append(f"  {result['policy']:<28} {claim}  {state}" + (f"  [{params}]" if params else ""))
            lines.extend(f"      - {message.split(': ', 2)[-1]}" for message in result["violations"])
    return "\n".join(lines)


class FilterModule:
    """Policies: requirements on the merged settings, and the compliance report."""

    def filters(self):
        return {
            "prosody_policy_results": prosody_policy_results,
            "prosody_policy_report": prosody_policy_report,
        }
