"""One redaction layer for every message: passwords in URLs (raw and percent-encoded), in
keyword connection strings, and any secret registered along the way."""

from __future__ import annotations

import pytest

from dbsync.redact import redact, remember_secret, secrets_of


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgresql://doadmin:AVNS_s3cr3t@db.example:25060/app?sslmode=require failed", "AVNS_s3cr3t"),
        ("postgres://u:p%40ss%2Fw0rd@h/db", "p%40ss%2Fw0rd"),
        ("host=h port=5432 user=u password=hunter2 dbname=x", "hunter2"),
        ("host=h password='with space' dbname=x", "with space"),
        ("dsn: PASSWORD = Sup3r dbname=x", "Sup3r"),
    ],
)
def test_dsn_passwords_are_removed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "***" in out


def test_remembered_secrets_in_any_encoding() -> None:
    remember_secret("P@ss w0rd!")
    for form in ("P@ss w0rd!", "P%40ss%20w0rd%21", "P%40ss w0rd!"):
        assert "P@ss" not in redact(f"error near {form} here") and "P%40ss" not in redact(f"x {form} y")


def test_secrets_of_finds_the_password_in_both_forms() -> None:
    assert "AVNS_x" in secrets_of("postgresql://a:AVNS_x@h/db")
    assert "pw" in secrets_of("host=h password=pw")
    assert secrets_of("postgresql://a@h/db") == []


def test_text_without_secrets_is_unchanged() -> None:
    assert redact("copied 1,234 rows of apps_orders_order") == "copied 1,234 rows of apps_orders_order"
