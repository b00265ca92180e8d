"""The stack's ``dbsync:`` config: read, validated in full, every mistake named with its key.

Pulumi's typed project config (Pulumi.yaml) covers strings, integers, booleans and arrays; the
structured values (``dbsync:sync``, ``dbsync:trustedSources``) are validated here, the sync
settings with the very model the runner uses for its config file, so a stack cannot hold a
setting the runner would reject.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dbsync.config import SyncConfig, parse_config
from dbsync.errors import ConfigError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEYS = (
    "mode",
    "region",
    "vpc",
    "sourceCluster",
    "sourceDatabase",
    "targetCluster",
    "targetDatabase",
    "dropletSize",
    "dropletImage",
    "runner",
    "runId",
    "runExpiresAt",
    "ttlMinutes",
    "bucket",
    "bucketRegion",
    "retain",
    "expireDays",
    "trustedSources",
    "sync",
    "runnerSshPublicKey",
    "runnerHostPublicKey",
    "runnerHostPrivateKey",
)


class TrustedSourceRule(BaseModel):
    """A baseline rule this stack manages on one of its clusters (e.g. the app's droplets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cluster: Literal["source", "target"]
    type: Literal["ip_addr", "droplet", "k8s", "tag", "app"]
    value: str = Field(min_length=1)
    description: str = ""


class StackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    mode: Literal["sync", "restore"]
    region: str = "fra1"
    vpc: str = Field(min_length=1, description="VPC name or id; the clusters' private network")
    source_cluster: str = Field(alias="sourceCluster", min_length=1)
    source_database: str = Field("defaultdb", alias="sourceDatabase", min_length=1)
    target_cluster: str = Field(alias="targetCluster", min_length=1)
    target_database: str = Field("defaultdb", alias="targetDatabase", min_length=1)
    droplet_size: str = Field("s-2vcpu-4gb", alias="dropletSize")
    droplet_image: str = Field("ubuntu-24-04-x64", alias="dropletImage")
    runner: bool = False
    run_id: str = Field("", alias="runId", pattern=r"^[a-z0-9-]{0,40}$")
    run_expires_at: int = Field(0, alias="runExpiresAt", ge=0)
    ttl_minutes: int = Field(180, alias="ttlMinutes", ge=10, le=24 * 60)
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    bucket_region: str | None = Field(None, alias="bucketRegion")
    retain: int = Field(7, ge=1)
    expire_days: int | None = Field(None, alias="expireDays", ge=1)
    trusted_sources: list[TrustedSourceRule] = Field(default_factory=list, alias="trustedSources")
    sync: dict[str, Any] = Field(default_factory=dict)
    runner_ssh_public_key: str = Field("", alias="runnerSshPublicKey")
    runner_host_public_key: str = Field("", alias="runnerHostPublicKey")
    runner_host_private_key: str = Field("", alias="runnerHostPrivateKey", repr=False)

    @field_validator("bucket_region", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return value or None

    @field_validator("expire_days", mode="before")
    @classmethod
    def _zero_is_derived(cls, value: Any) -> Any:
        return value or None

    @field_validator("sync")
    @classmethod
    def _sync_is_a_runner_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_config(value, origin="sync")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("sync: ")) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        if self.source_cluster == self.target_cluster and self.source_database == self.target_database:
            raise ValueError(
                "sourceCluster/sourceDatabase and targetCluster/targetDatabase name the same database; "
                "refusing to refresh production from itself"
            )
        if self.runner:
            for key, value in (
                ("runId", self.run_id),
                ("runnerSshPublicKey", self.runner_ssh_public_key),
                ("runnerHostPublicKey", self.runner_host_public_key),
                ("runnerHostPrivateKey", self.runner_host_private_key),
            ):
                if not value:
                    raise ValueError(f"{key} is required while runner is true")
            if not self.runner_host_public_key.startswith("ssh-ed25519 "):
                raise ValueError("runnerHostPublicKey must be an ssh-ed25519 public key")
            if "PRIVATE KEY" not in self.runner_host_private_key:
                raise ValueError("runnerHostPrivateKey must be an OpenSSH private key")
        return self

    @property
    def sync_config(self) -> SyncConfig:
        return parse_config(self.sync, origin="sync")

    @property
    def spaces_region(self) -> str:
        return self.bucket_region or self.region

    @property
    def backup_expiry_days(self) -> int:
        """An age-based safety net well past the newest N runs (daily sync, weekly restore)."""
        if self.expire_days is not None:
            return self.expire_days
        interval = 1 if self.mode == "sync" else 7
        return max(30, interval * self.retain * 3)

    def expires_at(self, now: float | None = None) -> int:
        """Unix time after which a runner is fair game for the reaper."""
        if self.run_expires_at:
            return self.run_expires_at
        return int((now or time.time()) + self.ttl_minutes * 60)


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate ``dbsync:`` config values (keys without the namespace), naming the wrong key."""
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError("unknown config key(s): " + ", ".join(f"dbsync:{k}" for k in unknown))
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"dbsync:{key}: {message}" if key else message)
        raise ConfigError("invalid stack config: " + "; ".join(problems)) from None
