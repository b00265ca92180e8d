"""The Pulumi program under Pulumi's mocks.

Neither the Pulumi engine nor DigitalOcean can exist here, so the program runs against
``pulumi.runtime.Mocks``: every resource registration and every data-source call reaches the
mocks below, which answer like the provider would (ids, computed outputs, cluster look-ups).
The tests check the exact resources per stack, runner on and off, their key properties as the
provider receives them (camelCase inputs), what is secret, and that no resource is created
inside an ``apply`` (a preview would not show it).
"""

from __future__ import annotations

import contextvars
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

from infra.config import parse_stack_config
from infra.program import build

ROOT = Path(__file__).resolve().parent.parent
TRUSTED_SOURCE = "pulumi-python:dynamic/dbsync:TrustedSource"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
HOST_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAtestkey\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyForTests dbsync-host"
CLIENT_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClientKeyForTests dbsync-client"

_inside_apply: contextvars.ContextVar[bool] = contextvars.ContextVar("inside_apply", default=False)


class Mocks(pulumi.runtime.Mocks):
    """Answers like pulumi-digitalocean would, and records every registration."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == "digitalocean:index/droplet:Droplet":
            outputs.update(ipv4Address="203.0.113.10", ipv4AddressPrivate="10.110.0.7", status="active")
            return "424242", outputs
        if args.typ == "digitalocean:index/sshKey:SshKey":
            outputs["fingerprint"] = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"
        if args.typ == "digitalocean:index/spacesKey:SpacesKey":
            outputs.update(accessKey="DO00TESTACCESS", secretKey="test-secret-key-value")
        if args.typ == "digitalocean:index/databaseCluster:DatabaseCluster":
            outputs.update(privateHost=f"private-{args.resource_id}.db", port=25060, version="17")
            return args.resource_id or "cluster", outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append(args)
        if args.token == "digitalocean:index/getDatabaseCluster:getDatabaseCluster":
            name = args.args["name"]
            return {"id": f"uuid-of-{name}", "name": name, "privateHost": f"private-{name}.db", "port": 25060,
                    "version": "17", "engine": "pg"}
        if args.token == "digitalocean:index/getVpc:getVpc":
            return {"id": "vpc-uuid-0001", "name": args.args.get("name") or "vpc"}
        return {}


def stack_values(stack: str) -> dict[str, Any]:
    """The values of Pulumi.<stack>.yaml, without the namespace."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("dbsync:")}


def with_runner(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "runner": True, "runId": "run-7f3a", "runExpiresAt": 1893456000,
            "runnerSshPublicKey": CLIENT_PUBLIC, "runnerHostPublicKey": HOST_PUBLIC,
            "runnerHostPrivateKey": HOST_PRIVATE}


class Run:
    def __init__(self, mocks: Mocks, outputs: dict[str, Any], created_in_apply: list[str]) -> None:
        self.mocks = mocks
        self.outputs = outputs
        self.created_in_apply = created_in_apply

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.mocks.resources if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        [found] = self.of_type(typ)
        return found

    @property
    def types(self) -> list[str]:
        return sorted(r.typ for r in self.mocks.resources)

    def output(self, name: str) -> tuple[Any, bool]:
        value = self.outputs[name]
        if not isinstance(value, pulumi.Output):
            return value, False
        return _sync_await(value.future()), bool(_sync_await(value.is_secret()))


def run(values: dict[str, Any], stack: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run the program with ``values`` as its config under the mocks; every registration has
    reached the mocks when this returns (run_pulumi_func waits for all of them)."""
    created_in_apply: list[str] = []
    original_apply = pulumi.Output.apply
    original_init = pulumi.Resource.__init__

    def tracking_apply(self: pulumi.Output[Any], func: Any, run_with_unknowns: bool = False) -> Any:
        def wrapped(value: Any) -> Any:
            token = _inside_apply.set(True)
            try:
                return func(value)
            finally:
                _inside_apply.reset(token)

        return original_apply(self, wrapped, run_with_unknowns)

    def tracking_init(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        if _inside_apply.get():
            created_in_apply.append(f"{t} {name}")
        original_init(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Output, "apply", tracking_apply)
    monkeypatch.setattr(pulumi.Resource, "__init__", tracking_init)
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="dbsync", stack=stack, preview=False)
    cfg = parse_stack_config(values)
    holder: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        holder["outputs"] = build(cfg, stack=stack)

    program()
    return Run(mocks, holder["outputs"], created_in_apply)


ALWAYS = [
    "dbsync:index:BackupBucket",
    "digitalocean:index/spacesBucket:SpacesBucket",
    TRUSTED_SOURCE,  # baseline trusted source, source cluster
    TRUSTED_SOURCE,  # baseline trusted source, target cluster
]
RUNNER = [
    "dbsync:index:Runner",
    "digitalocean:index/droplet:Droplet",
    "digitalocean:index/spacesKey:SpacesKey",
    "digitalocean:index/sshKey:SshKey",
    TRUSTED_SOURCE,  # the runner's access to the source cluster
    TRUSTED_SOURCE,  # ... and to the target cluster
]


@pytest.mark.parametrize("stack", ["uat", "staging"])
def test_runner_off_provisions_only_the_bucket_and_baseline_rules(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(stack_values(stack), stack, monkeypatch)
    assert result.types == sorted(ALWAYS)
    assert result.created_in_apply == []
    bucket = result.one("digitalocean:index/spacesBucket:SpacesBucket").inputs
    assert bucket["acl"] == "private"
    assert bucket["forceDestroy"] is False
    rules = {r["id"]: r for r in bucket["lifecycleRules"]}
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUploadDays"] == 1
    expected_days = 30 if stack == "uat" else 7 * 7 * 3
    assert rules["expire-old-backups"]["expiration"]["days"] == expected_days
    assert "dropletAddress" not in result.outputs
    baseline = [r.inputs for r in result.of_type(TRUSTED_SOURCE)]
    assert sorted((r["type"], r["value"]) for r in baseline) == sorted(
        (rule["type"], rule["value"]) for rule in stack_values(stack)["trustedSources"]
    )
    # clusters are looked up by name, never created
    looked_up = sorted(c.args["name"] for c in result.mocks.calls if "getDatabaseCluster" in c.token)
    values = stack_values(stack)
    assert looked_up == sorted([values["sourceCluster"], values["targetCluster"]])
    assert not result.of_type("digitalocean:index/databaseCluster:DatabaseCluster")


@pytest.mark.parametrize("stack", ["uat", "staging"])
def test_runner_on_adds_the_droplet_and_its_access(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(with_runner(stack_values(stack)), stack, monkeypatch)
    assert result.types == sorted(ALWAYS + RUNNER)
    assert result.created_in_apply == []
    droplet = result.one("digitalocean:index/droplet:Droplet").inputs
    assert droplet["vpcUuid"] == "vpc-uuid-0001"
    assert droplet["tags"] == ["dbsync-runner", f"stack-{stack}", "run-run-7f3a", "expires-1893456000"]
    assert droplet["sshKeys"] == ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
    assert droplet["image"] == "ubuntu-24-04-x64" and droplet["region"] == "fra1"
    # user data is a secret, holds the preset host key and no database password
    user_data = droplet["userData"]
    assert isinstance(user_data, dict) and user_data.get(SECRET_SIG), user_data
    cloud_config = yaml.safe_load(user_data["value"])
    assert cloud_config["ssh_deletekeys"] is True
    assert cloud_config["ssh_keys"]["ed25519_public"] == HOST_PUBLIC
    assert any("postgresql-client-17" in " ".join(cmd) for cmd in cloud_config["runcmd"])
    assert "shutdown -P +180" in " ".join(cloud_config["runcmd"][0])
    assert "password" not in user_data["value"].lower() and "postgresql://" not in user_data["value"]
    ssh_key = result.one("digitalocean:index/sshKey:SshKey").inputs
    assert ssh_key["publicKey"] == CLIENT_PUBLIC
    grants = result.one("digitalocean:index/spacesKey:SpacesKey").inputs["grants"]
    assert grants == [{"bucket": stack_values(stack)["bucket"], "permission": "readwrite"}]
    access = [r.inputs for r in result.of_type(TRUSTED_SOURCE) if r.inputs["type"] == "droplet"]
    values = stack_values(stack)
    assert sorted(a["cluster_id"] for a in access) == sorted(
        [f"uuid-of-{values['sourceCluster']}", f"uuid-of-{values['targetCluster']}"]
    )
    assert all(a["value"] == "424242" for a in access)
    # outputs: where to connect, what to pin, secrets marked secret
    assert result.output("dropletAddress") == ("203.0.113.10", False)
    assert result.output("hostPublicKey") == (HOST_PUBLIC, False)
    assert result.output("sshUser") == ("root", False)
    assert result.output("targetHost") == (f"private-{values['targetCluster']}.db", False)
    assert result.output("spacesSecretKey") == ("test-secret-key-value", True)
    assert result.output("spacesAccessKey")[1] is True
    assert result.output("spacesEndpoint") == ("https://fra1.digitaloceanspaces.com", False)


def test_clusters_named_by_id_are_read_not_created(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {**stack_values("uat"), "sourceCluster": "3dd4f852-539e-45c2-b3a1-7649432bb1c4"}
    result = run(values, "uat", monkeypatch)
    [read] = result.of_type("digitalocean:index/databaseCluster:DatabaseCluster")
    assert read.resource_id == "3dd4f852-539e-45c2-b3a1-7649432bb1c4"


def test_sync_settings_use_the_runner_schema() -> None:
    cfg = parse_stack_config(stack_values("uat"))
    assert cfg.sync_config.sequence_headroom == 100000
    assert cfg.sync_config.tenants.table == "apps_tenants_tenant"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "copy"}, "dbsync:mode: Input should be 'sync' or 'restore'"),
        ({"bucket": "Not_A_Bucket"}, "dbsync:bucket: String should match pattern"),
        ({"trustedSources": [{"cluster": "source", "type": "ip", "value": "1.2.3.4"}]}, "dbsync:trustedSources.0.type"),
        ({"sync": {"tenants": {"tabel": "x"}}}, "dbsync:sync: tenants.tabel: unknown key"),
        ({"runner": True}, "runId is required while runner is true"),
        ({"colour": "blue"}, "unknown config key(s): dbsync:colour"),
        ({"targetCluster": "CHANGE-ME-production-cluster", "targetDatabase": "CHANGE-ME-production-database"},
         "name the same database"),
    ],
)
def test_invalid_config_names_the_key(change: dict[str, Any], message: str) -> None:
    from dbsync.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_stack_config({**stack_values("uat"), **change})
    assert message in str(caught.value)


def test_project_file_declares_every_key() -> None:
    from infra.config import KEYS

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert sorted(k.split(":", 1)[1] for k in declared) == sorted(KEYS)
    for stack in ("uat", "staging"):
        assert set(stack_values(stack)) <= set(KEYS)
    assert declared["dbsync:runnerHostPrivateKey"]["secret"] is True
    json.dumps(declared)  # plain data only
