"""The Pulumi program: what one stack (uat or staging) provisions.

Always: the Spaces bucket for backups, the baseline trusted sources the stack manages, and
look-ups of the two managed clusters and the VPC (clusters are looked up, never created).
Only while ``dbsync:runner`` is true: the per-run SSH key, the runner droplet in the VPC with a
preset host key and an expiry tag, a Spaces key scoped to the bucket, and one trusted-source
rule per cluster for that droplet. Setting ``runner`` back to false and running ``up`` again
removes exactly those, and nothing else.

Every resource is created while the program runs, never inside ``apply``: a preview must show
what an ``up`` will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_digitalocean as do
from pulumi import ComponentResource, CustomTimeouts, Output, ResourceOptions

from . import cloud_init
from .config import UUID, StackConfig, parse_stack_config
from .trusted_source import TrustedSource, TrustedSourceArgs

RUNNER_TAG = "dbsync-runner"


@dataclass(frozen=True)
class ClusterRef:
    """What the program needs of a managed cluster, however it was named."""

    id: Output[str]
    private_host: Output[str]
    port: Output[int]
    version: Output[str | None]


def lookup_cluster(label: str, name_or_id: str, opts: ResourceOptions) -> ClusterRef:
    if UUID.match(name_or_id):
        cluster = do.DatabaseCluster.get(f"{label}-cluster", name_or_id, opts=opts)
        return ClusterRef(cluster.id, cluster.private_host, cluster.port, cluster.version)
    found = do.get_database_cluster_output(name=name_or_id)
    return ClusterRef(found.id, found.private_host, found.port, found.version)


def lookup_vpc(name_or_id: str) -> Output[str]:
    if UUID.match(name_or_id):
        return do.get_vpc_output(id=name_or_id).id
    return do.get_vpc_output(name=name_or_id).id


@dataclass(frozen=True)
class BackupBucketArgs:
    name: str
    region: str
    expire_days: int


class BackupBucket(ComponentResource):
    """A private bucket; incomplete multipart uploads go after a day, any object after
    ``expire_days`` as a safety net (the runner itself keeps the newest N: Spaces lifecycle
    rules can only expire by age). Protected: a stack change cannot delete the backups."""

    def __init__(self, name: str, args: BackupBucketArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("dbsync:index:BackupBucket", name, None, opts)
        self.bucket = do.SpacesBucket(
            name,
            name=args.name,
            region=args.region,
            acl="private",
            force_destroy=False,
            lifecycle_rules=[
                do.SpacesBucketLifecycleRuleArgs(
                    id="abort-incomplete-uploads", enabled=True, abort_incomplete_multipart_upload_days=1
                ),
                do.SpacesBucketLifecycleRuleArgs(
                    id="expire-old-backups",
                    enabled=True,
                    expiration=do.SpacesBucketLifecycleRuleExpirationArgs(days=args.expire_days),
                ),
            ],
            opts=ResourceOptions(parent=self, protect=True),
        )
        self.endpoint = f"https://{args.region}.digitaloceanspaces.com"
        self.register_outputs({"bucket": self.bucket.name, "endpoint": self.endpoint})


@dataclass(frozen=True)
class RunnerArgs:
    stack: str
    config: StackConfig
    vpc_uuid: Output[str]
    source: ClusterRef
    target: ClusterRef
    bucket: do.SpacesBucket
    expires_at: int


class Runner(ComponentResource):
    """The short-lived droplet next to the databases, and what it needs to reach them."""

    def __init__(self, name: str, args: RunnerArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("dbsync:index:Runner", name, None, opts)
        cfg = args.config
        child = ResourceOptions(parent=self)
        label = f"dbsync-{args.stack}-{cfg.run_id}"
        self.ssh_key = do.SshKey(f"{name}-ssh", name=label, public_key=cfg.runner_ssh_public_key, opts=child)
        user_data = args.target.version.apply(
            lambda version: cloud_init.render(
                host_private_key=cfg.runner_host_private_key,
                host_public_key=cfg.runner_host_public_key,
                pg_major=version,
                ttl_minutes=cfg.ttl_minutes,
            )
        )
        self.droplet = do.Droplet(
            f"{name}-droplet",
            name=label,
            image=cfg.droplet_image,
            size=cfg.droplet_size,
            region=cfg.region,
            vpc_uuid=args.vpc_uuid,
            ssh_keys=[self.ssh_key.fingerprint],
            user_data=Output.secret(user_data),  # type: ignore[arg-type]  # secret() is typed Never
            tags=[RUNNER_TAG, f"stack-{args.stack}", f"run-{cfg.run_id}", f"expires-{args.expires_at}"],
            graceful_shutdown=False,
            monitoring=False,
            opts=ResourceOptions(parent=self, custom_timeouts=CustomTimeouts(delete="5m")),
        )
        self.spaces_key = do.SpacesKey(
            f"{name}-spaces",
            name=label,
            grants=[do.SpacesKeyGrantArgs(bucket=args.bucket.name, permission="readwrite")],
            opts=child,
        )
        droplet_id = self.droplet.id.apply(str)
        rule_opts = ResourceOptions(parent=self, depends_on=[self.droplet])
        self.source_rule = TrustedSource(
            f"{name}-source-access",
            TrustedSourceArgs(
                cluster_id=args.source.id,
                type="droplet",
                value=droplet_id,
                description=f"dbsync runner {cfg.run_id}",
            ),
            rule_opts,
        )
        self.target_rule = TrustedSource(
            f"{name}-target-access",
            TrustedSourceArgs(
                cluster_id=args.target.id,
                type="droplet",
                value=droplet_id,
                description=f"dbsync runner {cfg.run_id}",
            ),
            rule_opts,
        )
        self.register_outputs({"droplet": self.droplet.id})


def read_config() -> StackConfig:
    raw: dict[str, Any] = {}
    config = pulumi.Config("dbsync")
    from .config import KEYS

    for key in KEYS:
        value = config.get_object(key) if key in ("trustedSources", "sync") else config.get(key)
        if value is None:
            continue
        if key in ("runner",):
            value = config.get_bool(key)
        elif key in ("runExpiresAt", "ttlMinutes", "retain", "expireDays"):
            value = config.get_int(key)
        raw[key] = value
    return parse_stack_config(raw)


def build(cfg: StackConfig | None = None, stack: str | None = None) -> dict[str, Any]:
    """Declare the stack's resources and return its outputs (also exported)."""
    cfg = cfg or read_config()
    stack = stack or pulumi.get_stack()
    lookups = ResourceOptions()
    source = lookup_cluster("source", cfg.source_cluster, lookups)
    target = lookup_cluster("target", cfg.target_cluster, lookups)
    backups = BackupBucket(
        "backups",
        BackupBucketArgs(name=cfg.bucket, region=cfg.spaces_region, expire_days=cfg.backup_expiry_days),
    )
    for i, rule in enumerate(cfg.trusted_sources):
        cluster = source if rule.cluster == "source" else target
        TrustedSource(
            f"baseline-{rule.cluster}-{i}",
            TrustedSourceArgs(
                cluster_id=cluster.id,
                type=rule.type,
                value=rule.value,
                description=rule.description or f"dbsync baseline ({stack})",
            ),
        )
    outputs: dict[str, Any] = {
        "mode": cfg.mode,
        "bucket": backups.bucket.name,
        "spacesEndpoint": backups.endpoint,
        "spacesRegion": cfg.spaces_region,
        "sourceHost": source.private_host,
        "sourcePort": source.port,
        "sourceDatabase": cfg.source_database,
        "targetHost": target.private_host,
        "targetPort": target.port,
        "targetDatabase": cfg.target_database,
        "retain": cfg.retain,
        "runner": cfg.runner,
    }
    if cfg.runner:
        expires_at = cfg.expires_at()
        runner = Runner(
            f"runner-{cfg.run_id}",
            RunnerArgs(
                stack=stack,
                config=cfg,
                vpc_uuid=lookup_vpc(cfg.vpc),
                source=source,
                target=target,
                bucket=backups.bucket,
                expires_at=expires_at,
            ),
        )
        outputs.update(
            runId=cfg.run_id,
            dropletAddress=runner.droplet.ipv4_address,
            dropletPrivateAddress=runner.droplet.ipv4_address_private,
            dropletId=runner.droplet.id,
            hostPublicKey=cfg.runner_host_public_key,
            sshUser="root",
            expiresAt=expires_at,
            spacesAccessKey=Output.secret(runner.spaces_key.access_key),  # type: ignore[arg-type]
            spacesSecretKey=Output.secret(runner.spaces_key.secret_key),  # type: ignore[arg-type]
        )
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
