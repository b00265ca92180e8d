"""Config files: defaults, TOML and YAML, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbsync.config import DEFAULT_EXCLUDE, load_config
from dbsync.errors import ConfigError


def test_defaults_are_the_seed_conventions() -> None:
    config = load_config(None)
    assert config.exclude == DEFAULT_EXCLUDE
    assert config.tenants.table == "apps_tenants_tenant"
    assert config.tenants.key_column == "tenant_id"
    assert (config.tenants.test_column, config.tenants.test_prefix) == ("schema_name", "test_")
    assert config.users.table == "auth_user"
    assert config.users.natural_key == ["username"]
    assert config.natural_keys["django_content_type"] == ["app_label", "model"]


def test_toml_and_yaml_both_load(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[tenants]\ntest_prefix = "qa_"\n')
    (tmp_path / "c.yaml").write_text("tenants:\n  test_prefix: qa_\n")
    assert load_config(tmp_path / "c.toml").tenants.test_prefix == "qa_"
    assert load_config(tmp_path / "c.yaml").tenants.test_prefix == "qa_"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tenants]\ntabel = 'x'\n", r"tenants\.tabel: unknown key"),
        ("sequence_headroom = -1\n", r"sequence_headroom: Input should be greater than or equal to 0"),
        ("[on_remap_conflict]\nx = 'drop'\n", r"on_remap_conflict\.x: Input should be 'keep_one'"),
        ("[natural_keys]\nauth_group = []\n", r"natural_keys: Value error, natural key of 'auth_group'"),
        ("tenants = [", r"not valid TOML"),
        (
            "[tenants]\ntable = 'bookings.bookings'\n",
            r"tenants\.table: 'bookings\.bookings' is in schema 'bookings', which is not in schemas \(public\)",
        ),
        (
            "schemas = ['app']\n[natural_keys]\n'public.badge' = ['label']\n",
            r"natural_keys\.public\.badge: .* not in schemas \(app\)",
        ),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_qualified_names_in_the_schemas_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        "schemas = ['public', 'bookings']\n[tenants]\ntable = 'bookings.bookings'\n"
    )
    assert load_config(tmp_path / "c.toml").tenants.table == "bookings.bookings"


def test_test_values_are_untyped_literals_and_exclude_a_prefix(tmp_path: Path) -> None:
    """Values are kept as text and written as untyped literals, which PostgreSQL reads as the
    column's own type; naming a prefix as well is ambiguous and refused."""
    (tmp_path / "c.toml").write_text("[tenants]\ntest_column = 'id'\ntest_values = [7, 'QA-1']\n")
    tenants = load_config(tmp_path / "c.toml").tenants
    assert tenants.test_values == ["7", "QA-1"]
    assert tenants.test_match("t").as_string(None) == "\"t\".\"id\" IN ('7', 'QA-1')"
    (tmp_path / "c.toml").write_text("[tenants]\ntest_values = []\n")
    with pytest.raises(ConfigError, match=r"tenants\.test_values: List should have at least 1 item"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "c.toml").write_text("[tenants]\ntest_prefix = 'qa_'\ntest_values = [7]\n")
    with pytest.raises(ConfigError, match=r"tenants: .*set test_prefix or test_values, not both"):
        load_config(tmp_path / "c.toml")


def test_declared_natural_keys_extend_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[natural_keys]\nauth_badge = ['label']\nauth_group = ['slug']\n")
    keys = load_config(tmp_path / "c.toml").natural_keys
    assert keys["auth_badge"] == ["label"]
    assert keys["auth_group"] == ["slug"]
    assert keys["django_content_type"] == ["app_label", "model"]


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.toml"):
        (tmp_path / "c.ini").write_text("")
        load_config(tmp_path / "c.ini")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")
