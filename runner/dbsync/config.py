"""The sync configuration: its defaults (the seed workflow's conventions) and its validation.

A Django multi-tenant database laid out like the seed's needs no config file at all. A file
(TOML or YAML) may change any key; it is validated in full before anything connects, and a
mistake is reported with the dotted key that is wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

DEFAULT_EXCLUDE = [
    "auth_*",
    "django_session",
    "authtoken_token",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
]

DEFAULT_NATURAL_KEYS = {
    "django_content_type": ["app_label", "model"],
    "auth_group": ["name"],
    "auth_permission": ["content_type_id", "codename"],
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantsConfig(_Strict):
    """Where tenants live and which of them are test tenants."""

    table: str = "apps_tenants_tenant"
    key_column: str = Field("tenant_id", description="A table with this column is tenant-scoped by it.")
    test_column: str = "schema_name"
    test_prefix: str = Field("test_", min_length=1)
    test_values: list[str] | None = Field(
        None,
        min_length=1,
        description="Test tenants by exact value of test_column (compared as the column's own "
        "type: 5.0 matches a numeric 5, any case of a uuid matches) instead of by prefix: for a "
        "tenant table without a naming convention (ids, codes). Not together with test_prefix.",
    )

    @field_validator("test_values", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """Ids may be written as numbers (``[7, 9]``); the column is compared as text."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @model_validator(mode="after")
    def _values_or_prefix(self) -> TenantsConfig:
        if self.test_values is not None and "test_prefix" in self.model_fields_set:
            raise ValueError("set test_prefix or test_values, not both")
        return self

    def test_match(self, alias: str) -> sql.Composed:
        """The SQL condition on ``alias``'s row of the tenant table that makes it a test tenant.
        Exact values are untyped literals, so PostgreSQL reads them as the column's own type
        (an integer, a numeric, a uuid in any case, an enum); a value that is not one is a
        configuration error (see ``dbsync.sync``). A prefix compares the column as text (no
        LIKE wildcard in it can misfire)."""
        if self.test_values is not None:
            return sql.SQL("{} IN ({})").format(
                sql.Identifier(alias, self.test_column),
                sql.SQL(", ").join(sql.Literal(v) for v in self.test_values),
            )
        column = sql.SQL("{}::text").format(sql.Identifier(alias, self.test_column))
        prefix = sql.Literal(self.test_prefix)
        return sql.SQL("left({}, length({})) = {}").format(column, prefix, prefix)


class UsersConfig(_Strict):
    """The user table, how users are matched across databases, and the fallback user."""

    table: str = "auth_user"
    natural_key: list[str] = Field(default_factory=lambda: ["username"], min_length=1)
    superuser_column: str = "is_superuser"
    fallback_username: str | None = Field(
        None, description="Target user that unmatched users map to; default: its first superuser."
    )


class GenericRelationConfig(_Strict):
    """A Django-style generic foreign key: a content type column plus an object id column."""

    table: str
    content_type_column: str = "content_type_id"
    object_id_column: str = "object_id"


class ReferenceConfig(_Strict):
    """A reference the database does not declare: columns holding a synced table's key without
    a foreign key (Django's ``db_constraint=False``; django-simple-history's historical rows,
    whose ``id`` is the tracked row's). Declared, it scopes rows to tenants and follows re-keys
    like a foreign key; it is not checked, since such a reference may name a row that is gone."""

    table: str
    columns: list[str] = Field(min_length=1)
    references: str
    ref_columns: list[str] | None = Field(
        None, min_length=1, description="Default: the referenced table's primary key."
    )


class SyncConfig(_Strict):
    """Everything ``dbsync sync`` can be told; every field has the seed's default."""

    schemas: list[str] = Field(default_factory=lambda: ["public"], min_length=1)
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    tenants: TenantsConfig = Field(default_factory=TenantsConfig)  # type: ignore[arg-type]
    users: UsersConfig = Field(default_factory=UsersConfig)  # type: ignore[arg-type]
    natural_keys: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_NATURAL_KEYS),
        description="Excluded table -> columns that identify a row across databases (added to the defaults).",
    )
    on_unmatched: dict[str, Literal["refuse", "null"]] = Field(
        default_factory=dict,
        description="Excluded table (other than users) -> what to do with a reference whose "
        "natural key has no match in the target. Default: refuse.",
    )
    on_remap_conflict: dict[str, Literal["keep_one", "refuse", "set_null"]] = Field(
        default_factory=dict,
        description="Synced table -> what to do when remapping makes rows collide on a unique "
        "constraint. Default: keep_one.",
    )
    content_type_table: str = Field(
        "django_content_type",
        description="Table of (id, app_label, model) that generic relations point through; "
        "model 'm' of app 'a' is the table 'a_m', as Django names tables by default.",
    )
    detect_generic_relations: bool = Field(
        True,
        description="Treat content_type_id + object_id (or object_pk) column pairs as generic relations.",
    )
    detect_history_tables: bool = Field(
        True,
        description="Treat django-simple-history's <app>_historical<model> tables (with history_id, "
        "history_date, history_type) as referencing <app>_<model> by its primary key column and "
        "as copying its foreign keys, column by column.",
    )
    generic_relations: list[GenericRelationConfig] = Field(
        default_factory=list, description="Generic relations to use besides the detected ones."
    )
    references: list[ReferenceConfig] = Field(
        default_factory=list,
        description="References between synced tables that no foreign key declares.",
    )
    sequence_headroom: int = Field(100_000, ge=0)
    lock_timeout_seconds: float = Field(30, gt=0)
    source_remap_limit: int = Field(
        20_000,
        ge=0,
        description="A natural-key map (users, content types) that changes at most this many ids "
        "is applied in production's SELECT, as a VALUES list in the COPY's query (~40 bytes an "
        "id), so the tables that use it load directly; a larger map is applied on the target, "
        "through a temporary table. 0 always applies maps on the target.",
    )
    load: Literal["direct", "staged"] = Field(
        "direct",
        description="direct (the default): empty the synced tables and COPY production's rows "
        "straight into them, each row written once (tables whose ids the remap rewrites still go "
        "through a temporary table). staged: COPY everything into temporary tables first and "
        "write the synced tables at the end; slower, but UAT's readers are blocked only from the "
        "apply step on instead of from the load on. Both are one transaction with the same proofs.",
    )
    skip_unchanged: bool = Field(
        True,
        description="In a direct load, leave a table's rows in place instead of emptying and "
        "loading it again when they already are exactly the rows production would send: the "
        "same count, and the same digest of every row (UAT's preserved rows set aside). A "
        "second sync of data that did not change writes almost nothing; the final proofs "
        "check such a table like any other. false always reloads every table.",
    )

    @field_validator("natural_keys", mode="before")
    @classmethod
    def _extend_default_keys(cls, value: Any) -> Any:
        """A declared natural key adds to (or overrides) the defaults; it does not drop them."""
        if isinstance(value, dict):
            return {**DEFAULT_NATURAL_KEYS, **value}
        return value

    @field_validator("natural_keys")
    @classmethod
    def _nonempty_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for table, columns in value.items():
            if not columns:
                raise ValueError(f"natural key of {table!r} must name at least one column")
        return value


def _outside_schemas(config: SyncConfig) -> str | None:
    """The first schema-qualified table name whose schema is not one dbsync reads: it could
    only ever be reported missing (or, as a key of a table mapping, be silently unused)."""
    named: list[tuple[str, str]] = [
        ("tenants.table", config.tenants.table),
        ("users.table", config.users.table),
        ("content_type_table", config.content_type_table),
    ]
    named += [(f"generic_relations.{i}.table", g.table) for i, g in enumerate(config.generic_relations)]
    for i, r in enumerate(config.references):
        named += [(f"references.{i}.table", r.table), (f"references.{i}.references", r.references)]
    for key in ("natural_keys", "on_unmatched", "on_remap_conflict"):
        named += [(f"{key}.{table}", table) for table in getattr(config, key)]
    for key, table in named:
        schema, dot, _ = table.partition(".")
        if dot and schema not in config.schemas:
            return (
                f"{key}: {table!r} is in schema {schema!r}, which is not in schemas "
                f"({', '.join(config.schemas)}); add it there"
            )
    return None


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_config(data: Any, origin: str = "config") -> SyncConfig:
    """Validate a mapping into a :class:`SyncConfig`, naming the first wrong key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a table of keys, not {type(data).__name__}")
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _location(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise ConfigError(f"{origin}: " + "; ".join(problems)) from None
    problem = _outside_schemas(config)
    if problem:
        raise ConfigError(f"{origin}: {problem}")
    return config


def load_config(path: Path | None) -> SyncConfig:
    """Read a TOML or YAML file (chosen by extension) and validate it; ``None`` gives defaults."""
    if path is None:
        return SyncConfig.model_validate({})
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return parse_config(data, origin=str(path))
