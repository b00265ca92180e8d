"""The CrossGuard policies of infra/policy, called the way the analyzer calls them.

Props are built the way pulumi-policy 1.21's ``Analyze`` builds them (``engine_props``): JSON
through a protobuf ``Struct``, ``deserialize_properties`` (which opens secret wrappers) and the
unknown-checking proxy. Secret-wrapped values are also passed raw, as the secret sentinel dict or
as ``pulumi_policy.Secret``, the forms in which a policy can still see that they are secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "pulumi_policy", reason="pulumi-policy is not installed: pip install -r infra/policy/requirements.txt"
)

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    unknown_checking_proxy,
)
from pulumi_policy.version import VERSION

from infra.policy.policies import POLICIES, ip_addr_problem, password_forms

POLICY_DIR = Path(__file__).resolve().parent.parent / "infra" / "policy"

DROPLET = "digitalocean:index/droplet:Droplet"
SSH_KEY = "digitalocean:index/sshKey:SshKey"
SPACES_KEY = "digitalocean:index/spacesKey:SpacesKey"
SPACES_BUCKET = "digitalocean:index/spacesBucket:SpacesBucket"
SPACES_BUCKET_POLICY = "digitalocean:index/spacesBucketPolicy:SpacesBucketPolicy"
DATABASE_FIREWALL = "digitalocean:index/databaseFirewall:DatabaseFirewall"
# A dynamic resource's type: plain, or with the module and name its class declares, as
# infra/trusted_source.py's TrustedSource does.
DYNAMIC = "pulumi-python:dynamic:Resource"
TRUSTED_SOURCE = "pulumi-python:dynamic/dbsync:TrustedSource"

UNKNOWN = UNKNOWN_STRING_VALUE
PASSWORD = "hunter2-Zq9"  # must never appear in a violation message
SERIALIZED_PROVIDER = "gASVVwAAAAAAAACMCmRpbGwuX2RpbGyUjAxfY3JlYXRlX3R5cGWUk5SMDVRydXN0ZWRTb3VyY2U="


def secret(value: Any) -> dict[str, Any]:
    """A value as the engine marshals a secret (``KeepSecrets: true``)."""
    return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": value}


@dataclass(frozen=True)
class Res:
    type: str
    name: str
    props: dict[str, Any]

    @property
    def urn(self) -> str:
        return f"urn:pulumi:uat::dbsync::{self.type}::{self.name}"


def with_props(res: Res, **props: Any) -> Res:
    return replace(res, props={**res.props, **props})


def without(res: Res, key: str) -> Res:
    return replace(res, props={k: v for k, v in res.props.items() if k != key})


def engine_props(raw: dict[str, Any]) -> Any:
    """``args.props`` exactly as pulumi-policy 1.21's Analyze builds it from the engine's request."""
    struct = struct_pb2.Struct()
    struct.update(raw)
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))


NO_OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def violations(resources: list[Res], *, props_as: str = "engine") -> list[tuple[str, str, str]]:
    """(policy, resource, message) for every violation every policy reports.

    props_as: "engine" (what Analyze hands a policy), "raw" (secret sentinels kept) or "secret-objects"
    (secrets as ``pulumi_policy.Secret``, as Remediate hands them).
    """
    found: list[tuple[str, str, str]] = []

    def report(policy: str, resource: str, message: str, urn: str | None = None) -> None:
        found.append((policy, resource, message))

    for res in resources:
        if props_as == "engine":
            props = engine_props(res.props)
        elif props_as == "raw":
            props = res.props
        else:
            props = deserialize_properties(res.props, proxy_secrets=True)
        for policy in POLICIES:
            args = ResourceValidationArgs(res.type, props, res.urn, res.name, NO_OPTIONS, None, {}, {})
            assert policy.validate(args, partial(report, policy.name, res.name)) is None
    return found


def analyze(res: Res) -> list[tuple[str, int, str]]:
    """(policy, enforcement level, message) of the diagnostics the real analyzer servicer returns."""
    servicer = _PolicyAnalyzerServicer("dbsync-policies", "0.1.0", list(POLICIES), EnforcementLevel.ADVISORY)
    struct = struct_pb2.Struct()
    struct.update(res.props)
    request = proto.AnalyzeRequest(urn=res.urn, type=res.type, name=res.name, properties=struct)
    response = servicer.Analyze(request, None)
    return [(d.policyName, d.enforcementLevel, d.message) for d in response.diagnostics]


# --- realistic stacks ---------------------------------------------------------------------------

STACKS = {
    "uat": {
        "vpc": "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
        "cidr": "10.110.0.0/20",
        "runner_ip": "10.110.0.7",
        "office": "10.20.30.0/24",
        "target": "9cc10173-e9ea-4176-9dbc-a4cee4c4ff30",
        "region": "fra1",
    },
    "staging": {
        "vpc": "0d5c2a39-6b1e-4f59-b3a4-2a8f1e7c9d10",
        "cidr": "100.64.16.0/20",
        "runner_ip": "100.64.16.9",
        "office": "192.168.40.0/24",
        "target": "3f2e1d0c-b9a8-4765-8f43-21a0b9c8d7e6",
        "region": "ams3",
    },
}
PRODUCTION_CLUSTER = "6e0a8f52-1c3b-4d7e-9f80-a1b2c3d4e5f6"
RUN_ID = "20251121-114500-7f3a"
EXPIRES = "expires-1763729100"

CLOUD_INIT = """#cloud-config
ssh_deletekeys: true
ssh_keys:
  ed25519_private: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
    -----END OPENSSH PRIVATE KEY-----
  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0b6m0pWl7cQ7w1Xz host
package_update: true
packages: [postgresql-client-16, python3-venv]
runcmd:
  - [sh, -c, "python3 -m venv /opt/dbsync && /opt/dbsync/bin/pip install /opt/dbsync-src"]
"""


def trusted_source(name: str, cluster: str, type_: str, value: Any, description: str) -> Res:
    return Res(
        TRUSTED_SOURCE,
        name,
        {
            "cluster_id": cluster,
            "type": type_,
            "value": value,
            "description": description,
            "__provider": secret(SERIALIZED_PROVIDER),
        },
    )


def stack(name: str, *, runner: bool, preview: bool = False) -> list[Res]:
    """The resources of a stack as its program declares them (secrets wrapped as the engine sends them)."""
    s = STACKS[name]
    bucket = f"dbsync-backups-{name}"
    resources = [
        Res(
            "pulumi:providers:digitalocean",
            "default_4_84_1",
            {
                "version": "4.84.1",
                "token": secret("dop_v1_0123456789abcdef"),
                "spacesAccessId": secret("DO00EXAMPLE"),
                "spacesSecretKey": secret("c2VjcmV0"),
            },
        ),
        Res(
            SPACES_BUCKET,
            bucket,
            {
                "name": bucket,
                "region": s["region"],
                "forceDestroy": False,
                "versioning": {"enabled": True},
                "lifecycleRules": [
                    {"enabled": True, "abortIncompleteMultipartUploadDays": 1, "expiration": {"days": 35}}
                ],
                # uat spells the acl out; staging relies on the provider default (private)
                **({"acl": "private"} if name == "uat" else {}),
            },
        ),
        Res(
            SPACES_BUCKET_POLICY,
            f"{bucket}-tls-only",
            {
                "bucket": bucket,
                "region": s["region"],
                "policy": (
                    '{"Version": "2012-10-17", "Statement": [{"Sid": "DenyPlainHttp", "Effect": "Deny", '
                    '"Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::' + bucket + '/*"], '
                    '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}'
                ),
            },
        ),
        trusted_source(
            f"{name}-baseline-vpc", s["target"], "ip_addr", s["cidr"].replace("/20", "/24"), "VPC clients"
        ),
        trusted_source(f"{name}-baseline-office", s["target"], "ip_addr", s["office"], "office VPN"),
        trusted_source(f"{name}-baseline-runner-tag", s["target"], "tag", "dbsync-runner", "runners"),
        trusted_source(
            f"{name}-baseline-app", s["target"], "app", "b6d1e7a2-7c4d-4f3b-9e1a-0c5d2f8e6a31", "the app"
        ),
    ]
    if runner:
        droplet = f"dbsync-runner-{name}-{RUN_ID}"
        resources += [
            Res(
                SSH_KEY,
                f"{droplet}-key",
                {
                    "name": f"{droplet}-key",
                    "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx0k dbsync-run",
                },
            ),
            Res(
                DROPLET,
                droplet,
                {
                    "name": droplet,
                    "image": "debian-12-x64",
                    "region": s["region"],
                    "size": "s-2vcpu-4gb",
                    "vpcUuid": s["vpc"],
                    "sshKeys": [UNKNOWN if preview else "3b:16:bf:e4:8b:00:8b:b8:59:8c"],
                    "tags": ["dbsync-runner", f"stack-{name}", f"run-{RUN_ID}", EXPIRES],
                    "userData": secret(CLOUD_INIT),
                    "monitoring": True,
                    "dropletAgent": False,
                    "gracefulShutdown": False,
                    "ipv6": False,
                },
            ),
            Res(
                SPACES_KEY,
                f"{droplet}-spaces",
                {"name": f"{droplet}-spaces", "grants": [{"bucket": bucket, "permission": "readwrite"}]},
            ),
            trusted_source(
                f"{droplet}-target",
                s["target"],
                "droplet",
                UNKNOWN if preview else "412345678",
                f"dbsync run {RUN_ID}",
            ),
            trusted_source(
                f"{droplet}-production",
                PRODUCTION_CLUSTER,
                "ip_addr",
                UNKNOWN if preview else s["runner_ip"],
                f"dbsync run {RUN_ID}",
            ),
        ]
    return resources


def find(resources: list[Res], type_: str, name_part: str = "") -> Res:
    return next(r for r in resources if r.type == type_ and name_part in r.name)


def only(resource: Res, props_as: str = "engine") -> list[tuple[str, str]]:
    return [(policy, message) for policy, _, message in violations([resource], props_as=props_as)]


# --- the pack -----------------------------------------------------------------------------------


def test_policies_are_named_described_and_mandatory() -> None:
    names = [p.name for p in POLICIES]
    assert names == [
        "droplet-in-vpc",
        "trusted-sources-private",
        "spaces-bucket-private",
        "runner-droplet-expires",
        "no-plain-database-password",
    ]
    for policy in POLICIES:
        assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)
        assert policy.description
        assert policy.enforcement_level is EnforcementLevel.MANDATORY
    assert "default" in next(p for p in POLICIES if p.name == "spaces-bucket-private").description


def test_pack_files() -> None:
    main = (POLICY_DIR / "__main__.py").read_text()
    assert 'PolicyPack(name="dbsync-policies", policies=list(POLICIES))' in main
    yaml = (POLICY_DIR / "PulumiPolicy.yaml").read_text()
    assert re.search(r"^runtime: python$", yaml, re.MULTILINE)
    assert re.search(r"^description: \S", yaml, re.MULTILINE)
    # policies.py reads pulumi-policy internals: the pin must be exact, and be what we test against.
    pins = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    assert f"pulumi-policy=={VERSION}" in pins, (
        f"pulumi-policy {VERSION} is installed: check policies.py against its proxy.py, secret.py and "
        "deserialize.py, then move the pin in infra/policy/requirements.txt"
    )


# --- compliant stacks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uat", "staging"])
@pytest.mark.parametrize("runner", [True, False], ids=["runner-on", "runner-off"])
@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
@pytest.mark.parametrize("props_as", ["engine", "raw", "secret-objects"])
def test_compliant_stacks_pass(name: str, runner: bool, preview: bool, props_as: str) -> None:
    resources = stack(name, runner=runner, preview=preview)
    assert len(resources) == (12 if runner else 7)
    assert violations(resources, props_as=props_as) == []


@pytest.mark.parametrize("name", ["uat", "staging"])
def test_compliant_stack_gets_no_diagnostic_from_the_analyzer_even_with_unknowns(name: str) -> None:
    # No violation, and no advisory "can't run policy during preview" either.
    for res in stack(name, runner=True, preview=True):
        assert analyze(res) == [], res.name


# --- trusted sources ----------------------------------------------------------------------------

BASELINE = find(stack("uat", runner=False), TRUSTED_SOURCE, "baseline-office")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "203.0.113.7",
            "ip_addr trusted source '203.0.113.7' is not a private (RFC 1918 / RFC 6598) address",
        ),
        ("10.0.0.0/8", "ip_addr trusted source '10.0.0.0/8' is wider than /24"),
        ("0.0.0.0/0", "ip_addr trusted source '0.0.0.0/0' is not a private (RFC 1918 / RFC 6598) address"),
    ],
)
@pytest.mark.parametrize("type_token", [TRUSTED_SOURCE, DYNAMIC])
def test_trusted_source_public_or_wide_is_rejected(value: str, message: str, type_token: str) -> None:
    res = replace(with_props(BASELINE, value=value), type=type_token)
    assert only(res) == [("trusted-sources-private", message)]


def test_trusted_source_secret_wrapped_public_address_is_still_rejected() -> None:
    # Secrecy does not make an address private.
    res = with_props(BASELINE, value=secret("198.51.100.4"))
    expected = [
        (
            "trusted-sources-private",
            "ip_addr trusted source '198.51.100.4' is not a private (RFC 1918 / RFC 6598) address",
        )
    ]
    assert only(res, "raw") == expected
    assert only(res, "engine") == expected


def test_trusted_source_other_types_are_not_addresses() -> None:
    assert only(with_props(BASELINE, type="tag", value="0.0.0.0/0")) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.1.2.3", None),
        ("10.1.2.0/24", None),
        (" 192.168.7.0/28 ", None),
        ("172.31.255.0/24", None),
        ("100.64.0.0/24", None),  # RFC 6598
        ("100.127.255.255", None),
        ("10.1.2.9/24", None),  # host bits set: still the /24 around it
        ("10.1.2.0/23", "is wider than /24"),
        ("172.16.0.0/12", "is wider than /24"),
        ("100.64.0.0/10", "is wider than /24"),
        ("172.32.0.1", "is not a private (RFC 1918 / RFC 6598) address"),
        ("100.128.0.1", "is not a private (RFC 1918 / RFC 6598) address"),
        ("8.8.8.8/32", "is not a private (RFC 1918 / RFC 6598) address"),
        ("127.0.0.1", "is not a private (RFC 1918 / RFC 6598) address"),
        ("fd00::1", "is not a private (RFC 1918 / RFC 6598) address"),
        ("db.example.com", "is not an IPv4 address or CIDR range"),
        ("", "is not an IPv4 address or CIDR range"),
    ],
)
def test_ip_addr_problem(value: str, problem: str | None) -> None:
    assert ip_addr_problem(value) == problem


def test_database_firewall_rules_are_checked_one_by_one() -> None:
    firewall = Res(
        DATABASE_FIREWALL,
        "uat-firewall",
        {
            "clusterId": STACKS["uat"]["target"],
            "rules": [
                {"type": "tag", "value": "dbsync-runner"},
                {"type": "ip_addr", "value": "10.0.0.0/8"},
                {"type": "ip_addr", "value": "198.51.100.0/24"},
                {"type": "ip_addr", "value": "10.110.0.0/24"},
                {"type": "ip_addr", "value": UNKNOWN},
                {"type": "app", "value": "b6d1e7a2-7c4d-4f3b-9e1a-0c5d2f8e6a31"},
            ],
        },
    )
    assert only(firewall) == [
        ("trusted-sources-private", "rules[1]: ip_addr trusted source '10.0.0.0/8' is wider than /24"),
        (
            "trusted-sources-private",
            "rules[2]: ip_addr trusted source '198.51.100.0/24' is not a private (RFC 1918 / RFC 6598) address",
        ),
    ]


@pytest.mark.parametrize("props_as", ["engine", "raw"])
@pytest.mark.parametrize(
    "firewall_rules",
    [
        UNKNOWN_ARRAY_VALUE,
        [UNKNOWN_OBJECT_VALUE],
        [{"type": UNKNOWN, "value": "0.0.0.0/0"}],
        [{"type": "ip_addr", "value": UNKNOWN}],
        [{"type": "ip_addr", "value": None}],
        [{"type": "ip_addr"}],
    ],
    ids=["rules", "rule", "type", "value", "null-value", "no-value"],
)
def test_unknown_or_non_string_firewall_values_are_accepted(firewall_rules: Any, props_as: str) -> None:
    firewall = Res(DATABASE_FIREWALL, "uat-firewall", {"clusterId": UNKNOWN, "rules": firewall_rules})
    assert only(firewall, props_as) == []
    assert analyze(firewall) == []


@pytest.mark.parametrize(
    "value", [UNKNOWN, None, 42, ["10.0.0.0/8"]], ids=["unknown", "null", "number", "list"]
)
def test_unknown_or_non_string_trusted_source_values_are_accepted(value: Any) -> None:
    res = with_props(BASELINE, value=value)
    assert only(res) == []
    assert only(res, "raw") == []
    assert analyze(res) == []


def test_other_dynamic_resources_are_not_trusted_sources() -> None:
    other = Res(
        DYNAMIC,
        "something-else",
        {"type": "ip_addr", "value": "0.0.0.0/0", "__provider": secret(SERIALIZED_PROVIDER)},
    )
    assert only(other) == []


# --- droplets -----------------------------------------------------------------------------------

RUNNER = find(stack("uat", runner=True), DROPLET)


def test_droplet_without_vpc_is_rejected() -> None:
    expected = [("droplet-in-vpc", "droplet has no vpcUuid: it would land in the region's default VPC")]
    assert only(without(RUNNER, "vpcUuid")) == expected
    assert only(with_props(RUNNER, vpcUuid="")) == expected
    assert only(with_props(RUNNER, vpcUuid=None)) == expected


def test_droplet_vpc_unknown_during_preview_is_accepted() -> None:
    res = with_props(RUNNER, vpcUuid=UNKNOWN)
    assert only(res) == []
    assert analyze(res) == []


def test_runner_droplet_without_expiry_tag_is_rejected() -> None:
    tags = ["dbsync-runner", "stack-uat", f"run-{RUN_ID}"]
    expected = [
        (
            "runner-droplet-expires",
            f"droplet tagged 'dbsync-runner' has no 'expires-<unix-epoch-seconds>' tag (tags: {tags})",
        )
    ]
    assert only(with_props(RUNNER, tags=tags)) == expected
    # "expires-" must be followed by the epoch seconds
    tags = ["dbsync-runner", "expires-soon", "expires-", "expires-17637291OO"]
    expected = [
        (
            "runner-droplet-expires",
            f"droplet tagged 'dbsync-runner' has no 'expires-<unix-epoch-seconds>' tag (tags: {tags})",
        )
    ]
    assert only(with_props(RUNNER, tags=tags)) == expected


def test_expiry_tag_is_only_required_of_runners_and_unknowns_are_accepted() -> None:
    assert only(with_props(RUNNER, tags=["stack-uat", "web"])) == []
    assert only(without(RUNNER, "tags")) == []
    assert only(with_props(RUNNER, tags=UNKNOWN_ARRAY_VALUE)) == []
    assert only(with_props(RUNNER, tags=["dbsync-runner", UNKNOWN])) == []
    assert analyze(with_props(RUNNER, tags=["dbsync-runner", UNKNOWN])) == []


# --- the Spaces bucket --------------------------------------------------------------------------

STAGING = stack("staging", runner=False)
BUCKET = find(stack("uat", runner=False), SPACES_BUCKET)
BUCKET_POLICY = find(STAGING, SPACES_BUCKET_POLICY)


def test_public_read_bucket_is_rejected() -> None:
    assert only(with_props(BUCKET, acl="public-read")) == [
        ("spaces-bucket-private", "bucket acl is 'public-read'; the backups bucket must be 'private'")
    ]


def test_bucket_without_acl_is_private_by_default_and_unknown_acl_is_accepted() -> None:
    assert "acl" not in find(STAGING, SPACES_BUCKET).props
    assert only(without(BUCKET, "acl")) == []
    assert only(with_props(BUCKET, acl=UNKNOWN)) == []


@pytest.mark.parametrize(
    "principal", ['"*"', '{"AWS": "*"}', '{"AWS": ["arn:aws:iam::1:root", "*"]}'], ids=["star", "aws", "list"]
)
def test_bucket_policy_with_public_principal_is_rejected(principal: str) -> None:
    policy = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}, '
        '{"Sid": "PublicRead", "Effect": "Allow", "Principal": ' + principal + ", "
        '"Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::dbsync-backups-staging/*"}]}'
    )
    assert only(with_props(BUCKET_POLICY, policy=policy)) == [
        (
            "spaces-bucket-private",
            "bucket policy Statement[1] allows [\"s3:GetObject\"] to Principal '*': "
            "the backups bucket must not be public",
        ),
    ]


def test_bucket_policy_edge_cases() -> None:
    single = '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket"}}'
    assert only(with_props(BUCKET_POLICY, policy=single)) == [
        (
            "spaces-bucket-private",
            "bucket policy Statement[0] allows \"s3:ListBucket\" to Principal '*': the backups bucket must not be public",
        ),
    ]
    not_principal = '{"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "s3:*"}]}'
    assert only(with_props(BUCKET_POLICY, policy=not_principal)) == [
        (
            "spaces-bucket-private",
            'bucket policy Statement[0] allows "s3:*" to everyone but its NotPrincipal: '
            "the backups bucket must not be public",
        ),
    ]
    assert only(with_props(BUCKET_POLICY, policy="{not json")) == [
        ("spaces-bucket-private", "bucket policy is not valid JSON, so it cannot be shown to be private"),
    ]
    named = '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:user/ci"]}, "Action": "s3:*"}]}'
    assert only(with_props(BUCKET_POLICY, policy=named)) == []
    assert only(with_props(BUCKET_POLICY, policy=UNKNOWN)) == []


# --- no plain database password -----------------------------------------------------------------

URL_DSN = (
    f"postgresql://doadmin:{PASSWORD}@uat-db-do-user-1-0.b.db.ondigitalocean.com:25060/app?sslmode=require"
)
KEYWORD_DSN = f"host=uat-db port=25060 user=doadmin password={PASSWORD} dbname=app sslmode=require"
USER_DATA_MESSAGE = (
    "userData holds a PostgreSQL password ({}): anything on the droplet can read user-data from "
    "the metadata service; pass database credentials another way"
)
PROP_MESSAGE = (
    "{} holds a PostgreSQL password in plain text ({}): make the input a secret, or better keep the "
    "password out of resource inputs"
)
URL_FORM = "URL form postgresql://user:***@"
KEYWORD_FORM = "keyword form password=***"


def test_plain_dsn_in_user_data_is_rejected() -> None:
    user_data = (
        CLOUD_INIT + f"write_files:\n  - path: /etc/dbsync.env\n    content: DBSYNC_TARGET_URL={URL_DSN}\n"
    )
    assert only(with_props(RUNNER, userData=user_data)) == [
        ("no-plain-database-password", USER_DATA_MESSAGE.format(URL_FORM))
    ]


def test_plain_dsn_in_a_nested_prop_is_rejected() -> None:
    res = with_props(
        BASELINE,
        description={
            "notes": ["ok", {"env": f"DBSYNC_SOURCE_URL={URL_DSN.replace('postgresql', 'postgres')}"}]
        },
    )
    assert only(res) == [
        ("no-plain-database-password", PROP_MESSAGE.format("description.notes[1].env", URL_FORM))
    ]


def test_keyword_form_dsn_is_rejected() -> None:
    res = with_props(BASELINE, description=KEYWORD_DSN)
    assert only(res) == [("no-plain-database-password", PROP_MESSAGE.format("description", KEYWORD_FORM))]
    res = with_props(RUNNER, userData=f"#!/bin/sh\nexport PGPASSWORD='{PASSWORD}'\npsql 'host=db user=x'\n")
    assert only(res) == [("no-plain-database-password", USER_DATA_MESSAGE.format("PGPASSWORD=***"))]


def test_messages_never_repeat_the_password() -> None:
    res = with_props(RUNNER, userData=f"{URL_DSN}\n{KEYWORD_DSN}\nPGPASSWORD={PASSWORD}\n")
    found = only(res)
    assert [m for _, m in found] == [
        USER_DATA_MESSAGE.format(f) for f in (URL_FORM, KEYWORD_FORM, "PGPASSWORD=***")
    ]
    assert not any(PASSWORD in m for _, m in found)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://reader@prod-host:25060/app?sslmode=require",  # the README's example: no password
        "postgresql://prod-host:25060/app",
        "postgresql://doadmin:@uat-host/app",  # empty password
        "postgresql://doadmin:${DB_PASSWORD}@uat-host/app",  # a reference, not a password
        "host=db user=doadmin password=''",
        "host=db user=doadmin password=",
        "host=db user=doadmin password=$PGPASS dbname=app",
        "sslpassword=keypass sslkey=/k",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx0k dbsync-run",
    ],
)
def test_password_forms_without_a_password(text: str) -> None:
    assert password_forms(text) == []


@pytest.mark.parametrize(
    ("text", "forms"),
    [
        (URL_DSN, [URL_FORM]),
        ("POSTGRES://u:p@h", [URL_FORM]),
        ("postgresql://u:p?w#x@h/db", [URL_FORM]),  # libpq reads userinfo up to '@'
        (KEYWORD_DSN, [KEYWORD_FORM]),
        ("host=db password='it''s' user=x", [KEYWORD_FORM]),
        (
            "password= dbname=app",
            [KEYWORD_FORM],
        ),  # libpq skips blanks after '=': the password is "dbname=app"
        ("postgresql://h/db?user=u&password=p", [KEYWORD_FORM]),
        ("export PGPASSWORD=p", ["PGPASSWORD=***"]),
    ],
)
def test_password_forms(text: str, forms: list[str]) -> None:
    assert password_forms(text) == forms


@pytest.mark.parametrize("props_as", ["raw", "secret-objects"])
def test_secret_wrapped_values_are_not_rejected(props_as: str) -> None:
    resources = [
        with_props(
            RUNNER, userData=secret(CLOUD_INIT + f"runcmd: [[dbsync, sync, --target, '{URL_DSN}']]\n")
        ),
        with_props(
            BASELINE, description={"notes": [secret(KEYWORD_DSN), {"deep": secret({"url": URL_DSN})}]}
        ),
    ]
    assert violations(resources, props_as=props_as) == []


def test_the_analyzer_opens_secrets_so_a_secret_dsn_in_user_data_is_still_reported() -> None:
    # pulumi-policy 1.21's Analyze deserializes without proxy_secrets: a policy sees the plain value and
    # cannot tell it was a secret (pulumi/pulumi-policy#241). For userData that is what we want anyway.
    res = with_props(RUNNER, userData=secret(f"DBSYNC_TARGET_URL={URL_DSN}"))
    assert only(res, "engine") == [("no-plain-database-password", USER_DATA_MESSAGE.format(URL_FORM))]
    assert analyze(res) == [
        (
            "no-plain-database-password",
            proto.MANDATORY,
            next(p for p in POLICIES if p.name == "no-plain-database-password").description
            + "\n"
            + USER_DATA_MESSAGE.format(URL_FORM),
        )
    ]


def test_unknown_user_data_is_accepted() -> None:
    res = with_props(RUNNER, userData=UNKNOWN, tags=UNKNOWN_ARRAY_VALUE, vpcUuid=UNKNOWN)
    assert only(res) == []
    assert analyze(res) == []


# --- through the analyzer -----------------------------------------------------------------------


def test_analyzer_reports_every_violation_of_a_bad_runner_as_mandatory() -> None:
    bad = with_props(without(RUNNER, "vpcUuid"), tags=["dbsync-runner"], userData=f"DSN={URL_DSN}")
    descriptions = {p.name: p.description for p in POLICIES}
    assert analyze(bad) == [
        (
            "droplet-in-vpc",
            proto.MANDATORY,
            descriptions["droplet-in-vpc"]
            + "\ndroplet has no vpcUuid: it would land in the region's default VPC",
        ),
        (
            "runner-droplet-expires",
            proto.MANDATORY,
            descriptions["runner-droplet-expires"]
            + "\ndroplet tagged 'dbsync-runner' has no 'expires-<unix-epoch-seconds>' tag (tags: ['dbsync-runner'])",
        ),
        (
            "no-plain-database-password",
            proto.MANDATORY,
            descriptions["no-plain-database-password"] + "\n" + USER_DATA_MESSAGE.format(URL_FORM),
        ),
    ]
