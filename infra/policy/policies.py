"""The CrossGuard policies that guard dbsync's DigitalOcean stacks (uat, staging).

The pack itself is built in ``__main__.py`` only: constructing ``PolicyPack`` starts a gRPC server
and never returns, so this module holds the policies and nothing else, and tests call
``policy.validate(args, report_violation)`` directly.

How values reach a policy (pulumi-policy 1.21, checked in its source):

* Inputs arrive camelCase for provider resources (``vpcUuid``, ``userData``); our dynamic
  ``TrustedSource`` keeps its Python names (``cluster_id``, ``type``, ``value``, ``description``,
  ``__provider``) because a dynamic resource has no schema to translate them.
* Unknowns: during preview, a value computed from another resource's output is an "unknown"
  sentinel string (``pulumi_policy/proxy.py``: ``UNKNOWN_STRING_VALUE`` and friends), and
  ``args.props`` is wrapped in a proxy whose ``__getitem__`` raises ``UnknownValueError`` on it.
  The analyzer turns that exception into an advisory "can't run policy during preview" note, so
  these policies read the proxies' raw targets instead and treat an unknown as "not decidable now":
  accepted. ``pulumi up`` resolves inputs before it registers a resource, so the same policies
  see the real value there and still block a bad one.
* Secrets: the engine sends them wrapped in the secret sentinel
  (``{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": ...}``,
  ``KeepSecrets: true`` in pulumi's ``analyzer_plugin.go``), but ``Analyze`` in pulumi-policy
  deserializes with ``proxy_secrets=False``, which replaces the wrapper by its plain value
  (``deserialize.py``; pulumi-policy's own ``test_fully_unmarshalls_secrets`` asserts it; open
  issue pulumi/pulumi-policy#241: a policy cannot tell whether a value is a secret). Only
  ``Remediate`` keeps them, as ``pulumi_policy.Secret`` objects. This module recognises both
  forms, the sentinel dict and ``Secret``, and the password policy skips them; in a real
  ``pulumi preview`` a secret is indistinguishable from a plain value and is checked like one.
  That is why no message ever repeats a value that might be a password.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
)

# Internal to pulumi-policy, pinned to 1.21.0 in requirements.txt: the same names its own
# serializer uses to reach the raw values behind the proxies.
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    _DictProxy,
    _ListProxy,
)
from pulumi_policy.secret import _DictSecretsProxy, _ListSecretsProxy

DROPLET = "digitalocean:index/droplet:Droplet"
DATABASE_FIREWALL = "digitalocean:index/databaseFirewall:DatabaseFirewall"
SPACES_BUCKET = "digitalocean:index/spacesBucket:SpacesBucket"
SPACES_BUCKET_POLICY = "digitalocean:index/spacesBucketPolicy:SpacesBucketPolicy"
# Every Python dynamic resource has this type (with "/<module>:<Name>" when the subclass sets
# them); TrustedSource is recognised by its props.
DYNAMIC_RESOURCE_PREFIX = "pulumi-python:dynamic"
TRUSTED_SOURCE_PROPS = frozenset({"cluster_id", "type", "value"})

RUNNER_TAG = "dbsync-runner"
EXPIRES_TAG = re.compile(r"expires-[0-9]+")

_UNKNOWNS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)
_PROXIES = (_DictProxy, _ListProxy, _DictSecretsProxy, _ListSecretsProxy)

# RFC 1918 and RFC 6598 (carrier-grade NAT, which DigitalOcean VPCs may use).
PRIVATE_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
WIDEST_PREFIX = 24


# --- reading props ------------------------------------------------------------------------------


def _unproxy(value: Any) -> Any:
    """The container behind pulumi-policy's unknown-checking and secret-preserving proxies."""
    while isinstance(value, _PROXIES):
        value = value["__target"]
    return value


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in _UNKNOWNS


def is_secret(value: Any) -> bool:
    value = _unproxy(value)
    if isinstance(value, Secret):
        return True
    return isinstance(value, Mapping) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG


def _reveal(value: Any) -> Any:
    """The value with proxies and secret wrappers removed, for checks that do not care about secrecy."""
    while True:
        value = _unproxy(value)
        if isinstance(value, Secret):
            value = value.value
        elif isinstance(value, Mapping) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            value = value.get("value")
        else:
            return value


def _get(props: Any, key: str) -> Any:
    """``props[key]`` revealed; None when missing; an unknown stays the unknown sentinel."""
    props = _reveal(props)
    if not isinstance(props, Mapping):
        return None
    return _reveal(props.get(key))


def _items(value: Any) -> list[Any] | None:
    """The revealed elements of a list prop; None when the list itself is unknown or not a list."""
    value = _reveal(value)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return None
    return [_reveal(item) for item in value]


# --- droplets in the VPC ------------------------------------------------------------------------


def _validate_droplet_in_vpc(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != DROPLET:
        return
    vpc = _get(args.props, "vpcUuid")
    if is_unknown(vpc):
        return  # set from a VPC not created yet: known, and checked again, at `pulumi up`
    if not isinstance(vpc, str) or not vpc.strip():
        report_violation("droplet has no vpcUuid: it would land in the region's default VPC", None)


droplet_in_vpc = ResourceValidationPolicy(
    name="droplet-in-vpc",
    description="Every droplet is placed in our VPC explicitly (vpcUuid set and non-empty).",
    validate=_validate_droplet_in_vpc,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- trusted sources: private and narrow --------------------------------------------------------


def ip_addr_problem(value: str) -> str | None:
    """Why an ``ip_addr`` trusted-source value is not acceptable, or None when it is."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return "is not an IPv4 address or CIDR range"
    if not isinstance(network, ipaddress.IPv4Network) or not any(
        network.subnet_of(private) for private in PRIVATE_NETWORKS
    ):
        return "is not a private (RFC 1918 / RFC 6598) address"
    if network.prefixlen < WIDEST_PREFIX:
        return f"is wider than /{WIDEST_PREFIX}"
    return None


def _check_rule(rule: Any, where: str, report_violation: ReportViolation) -> None:
    rule_type = _get(rule, "type")
    value = _get(rule, "value")
    # A value unknown at preview (or anything but a string) cannot be judged: accept it.
    if rule_type != "ip_addr" or not isinstance(value, str) or is_unknown(value):
        return
    problem = ip_addr_problem(value)
    if problem:
        report_violation(f"{where}ip_addr trusted source {value.strip()!r} {problem}", None)


def _validate_trusted_sources(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == DATABASE_FIREWALL:
        rules = _items(_get(args.props, "rules"))
        for index, rule in enumerate(rules or []):
            _check_rule(rule, f"rules[{index}]: ", report_violation)
    elif args.resource_type.startswith(DYNAMIC_RESOURCE_PREFIX):
        props = _reveal(args.props)
        if isinstance(props, Mapping) and set(props) >= TRUSTED_SOURCE_PROPS:
            _check_rule(props, "", report_violation)


trusted_sources_private = ResourceValidationPolicy(
    name="trusted-sources-private",
    description=(
        "Database trusted sources of type ip_addr (our TrustedSource dynamic resource and "
        "DatabaseFirewall rules) must be a private RFC 1918 / RFC 6598 IPv4 address or range "
        f"no wider than /{WIDEST_PREFIX}. Values unknown during preview are accepted and checked at update."
    ),
    validate=_validate_trusted_sources,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- the Spaces bucket stays private ------------------------------------------------------------


def _is_wildcard_principal(principal: Any) -> bool:
    principal = _reveal(principal)
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(_is_wildcard_principal(v) for v in principal.values())
    items = _items(principal)
    return items is not None and any(_is_wildcard_principal(v) for v in items)


def _bucket_policy_problems(document: Any) -> Iterator[str]:
    statements = _reveal(document.get("Statement")) if isinstance(document, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    for index, statement in enumerate(_items(statements) or []):
        if not isinstance(statement, Mapping) or str(statement.get("Effect", "")).lower() != "allow":
            continue
        actions = statement.get("Action", statement.get("NotAction", "?"))
        if "NotPrincipal" in statement:
            yield f"Statement[{index}] allows {json.dumps(actions)} to everyone but its NotPrincipal"
        elif _is_wildcard_principal(statement.get("Principal")):
            yield f"Statement[{index}] allows {json.dumps(actions)} to Principal '*'"


def _validate_spaces_bucket_private(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == SPACES_BUCKET:
        acl = _get(args.props, "acl")
        if acl is not None and not is_unknown(acl) and acl != "private":
            report_violation(f"bucket acl is {acl!r}; the backups bucket must be 'private'", None)
    elif args.resource_type == SPACES_BUCKET_POLICY:
        policy = _get(args.props, "policy")
        if not isinstance(policy, str) or is_unknown(policy):
            return
        try:
            document = json.loads(policy)
        except ValueError:
            report_violation("bucket policy is not valid JSON, so it cannot be shown to be private", None)
            return
        for problem in _bucket_policy_problems(document):
            report_violation(f"bucket policy {problem}: the backups bucket must not be public", None)


spaces_bucket_private = ResourceValidationPolicy(
    name="spaces-bucket-private",
    description=(
        "Spaces buckets are private: SpacesBucket acl is 'private' (a missing acl is accepted, the "
        "provider's default being 'private'), and no SpacesBucketPolicy allows anything to Principal '*'."
    ),
    validate=_validate_spaces_bucket_private,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- runner droplets expire ---------------------------------------------------------------------


def _validate_runner_expiry(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != DROPLET:
        return
    tags = _items(_get(args.props, "tags"))
    if tags is None:
        return  # no tags, or a whole list unknown during preview
    known = [t for t in tags if isinstance(t, str) and not is_unknown(t)]
    if RUNNER_TAG not in known or any(EXPIRES_TAG.fullmatch(t) for t in known):
        return
    if len(known) < len(tags):
        return  # an unknown tag may be the expiry; decided at `pulumi up`
    report_violation(
        f"droplet tagged {RUNNER_TAG!r} has no 'expires-<unix-epoch-seconds>' tag (tags: {known})", None
    )


runner_droplet_expires = ResourceValidationPolicy(
    name="runner-droplet-expires",
    description=(
        f"A droplet tagged '{RUNNER_TAG}' also carries an 'expires-<unix-epoch-seconds>' tag, so a "
        "runner left behind by a failed run can be found and destroyed."
    ),
    validate=_validate_runner_expiry,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- no database password in plain config -------------------------------------------------------

# libpq reads the userinfo of a URI up to the first '@' or '/', the password after its first ':'.
_URL_PASSWORD = re.compile(r"postgres(?:ql)?://[^\s/@:]*:(?P<password>[^\s/@]*)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(
    r"(?<![\w.-])password\s*=\s*(?P<password>'(?:[^'\\]|\\.)*'|[^\s'\";&]*)", re.IGNORECASE
)
_PGPASSWORD = re.compile(r"(?<![\w.-])PGPASSWORD\s*=\s*(?P<password>'[^']*'|\"[^\"]*\"|[^\s'\";&]*)")
_PASSWORD_FORMS = (
    ("URL form postgresql://user:***@", _URL_PASSWORD),
    ("keyword form password=***", _KEYWORD_PASSWORD),
    ("PGPASSWORD=***", _PGPASSWORD),
)


def _is_literal_password(password: str) -> bool:
    # '' and "$VAR" / "${VAR}" (a shell or template reference, not a password) are not literals.
    password = password.strip("'\"")
    return bool(password) and not password.startswith("$")


def password_forms(text: str) -> list[str]:
    """The kinds of PostgreSQL password written out in ``text`` (never the password itself)."""
    return [
        form
        for form, pattern in _PASSWORD_FORMS
        if any(_is_literal_password(m.group("password")) for m in pattern.finditer(text))
    ]


def plain_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, string) in a prop tree that is neither secret-wrapped nor unknown."""
    value = _unproxy(value)
    if is_secret(value) or is_unknown(value):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key in value:
            yield from plain_strings(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{path}[{index}]")


def _validate_no_plain_password(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for path, text in plain_strings(args.props):
        for form in password_forms(text):
            if args.resource_type == DROPLET and path == "userData":
                report_violation(
                    f"userData holds a PostgreSQL password ({form}): anything on the droplet can read "
                    "user-data from the metadata service; pass database credentials another way",
                    None,
                )
            else:
                report_violation(
                    f"{path} holds a PostgreSQL password in plain text ({form}): make the input a "
                    "secret, or better keep the password out of resource inputs",
                    None,
                )


no_plain_database_password = ResourceValidationPolicy(
    name="no-plain-database-password",
    description=(
        "No resource input (nested values included) and no droplet userData holds a plain-text "
        "PostgreSQL password: a connection URL with user:password@, a keyword-form password=..., "
        "or PGPASSWORD=.... Secret-wrapped values are skipped where the policy SDK marks them."
    ),
    validate=_validate_no_plain_password,
    enforcement_level=EnforcementLevel.MANDATORY,
)


POLICIES: list[ResourceValidationPolicy] = [
    droplet_in_vpc,
    trusted_sources_private,
    spaces_bucket_private,
    runner_droplet_expires,
    no_plain_database_password,
]
