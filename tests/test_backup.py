"""Backups: taken before every sync, verified, restorable without dbsync, pruned to the newest N.

Real components throughout: PostgreSQL clusters from ``tests.fix_pg``, pg_dump/pg_restore from
the machine, a folder store, and moto's standalone S3 server on loopback (``tests.fix_s3``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbsync.backup import MANIFEST, Backup, Manifest, list_backups, plan_retention, prune
from dbsync.errors import StoreError, ToolMissing
from dbsync.pgtools import find_tool
from dbsync.store import ObjectInfo, open_store
from tests.checksum import snapshot
from tests.test_faults import term_while_committing, wait_for_no_sessions
from tests.test_sync import dbsync, execute, ok, rows, sync


def backups_in(store_url: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    proc = dbsync("backups", "list", "--backup-store", store_url, "--json", env=env)
    ok(proc)
    return json.loads(proc.stdout)


def dump_header(path: Path) -> dict[str, str]:
    """The archive's own header lines, as ``pg_restore --list`` prints them (``;  Key: value``)."""
    listing = subprocess.run(
        [find_tool("pg_restore", 15).path, "--list", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return dict(
        line[1:].strip().split(": ", 1)
        for line in listing.splitlines()
        if line.startswith(";") and ": " in line
    )


def test_sync_backs_up_the_target_first_and_the_dump_restores_with_plain_pg_restore(
    make_db: Any, tmp_path: Path
) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    store_url = f"file://{tmp_path}/store"
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, "--series", "uat-daily")
    ok(proc)
    assert report["backup"]["verified"] is True
    assert report["backup"]["check_seconds"] >= report["backup"]["check_waited_seconds"] >= 0
    [entry] = backups_in(store_url)
    assert entry["complete"] and entry["series"] == "uat-daily" and entry["run_id"] == report["run_id"]
    folder = tmp_path / "store" / entry["folder"]
    manifest = json.loads((folder / MANIFEST).read_text())
    stored = folder / "dump.pgdump.zst"
    assert manifest["kind"] == "pre-sync" and manifest["size"] == stored.stat().st_size
    assert manifest["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert entry["size"] == manifest["size"] == report["backup"]["size"]  # one figure everywhere
    # The manifest's counts are the target's as it was before the sync changed it.
    assert manifest["tables"]["public.apps_orders_order"] == before.row_counts["public.apps_orders_order"]
    assert manifest["tables"]["public.auth_user"] == before.row_counts["public.auth_user"]
    assert "postgres-pw" not in json.dumps(manifest)
    # By default pg_dump compresses nothing and dbsync stores its archive in a zstd frame; the
    # manifest says so and holds the archive's own hash, as zstd's command line unpacks it.
    assert manifest["format"] == "pg_dump custom (-Fc) --compress=0 | zstd -1"
    assert manifest["compression"] == "zstd"
    archive = tmp_path / "archive.pgdump"
    subprocess.run(["zstd", "-q", "-d", str(stored), "-o", str(archive)], check=True)
    assert manifest["content_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert dump_header(archive)["Compression"] == "0"
    assert stored.stat().st_size < archive.stat().st_size / 2
    # zstd and plain pg_restore, no dbsync, as the README says: the dump reproduces the target.
    cluster = make_db(2, "empty").cluster
    cluster.create_database(f"plain_restore_{os.getpid()}")
    scratch = cluster.url(f"plain_restore_{os.getpid()}")
    pg_restore = find_tool("pg_restore", 15)
    subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'zstd -dc "$1" | "$2" --no-owner --no-privileges --single-transaction -d "$3"',
         "-", str(stored), pg_restore.path, scratch],
        check=True,
        capture_output=True,
    )
    restored = snapshot(scratch)
    assert restored.tables == before.tables
    assert restored.sequences == before.sequences
    assert restored.schema_checksum == before.schema_checksum
    cluster.drop_database(f"plain_restore_{os.getpid()}")


def test_backup_to_s3(make_db: Any, tmp_path: Path, s3_server: Any) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    bucket = s3_server.new_bucket()
    store_url = f"s3://{bucket}/nightly?endpoint={s3_server.endpoint}&region={s3_server.region}"
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, env=s3_server.env())
    ok(proc)
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert [k.rsplit("/", 1)[-1] for k in keys] == ["dump.pgdump.zst", "manifest.json"]
    assert all(k.startswith("nightly/") for k in keys)
    assert report["backup"]["store"].startswith(f"s3://{bucket}/nightly")
    verify = dbsync("backups", "verify", "--backup-store", store_url, "latest", env=s3_server.env())
    ok(verify)
    assert s3_server.secret_key not in proc.stdout + proc.stderr + json.dumps(report)


def test_no_backup_is_explicit(make_db: Any, tmp_path: Path) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    proc, report = sync(prod, uat, tmp_path, "--no-backup")
    ok(proc)
    assert report["backup"] is None
    assert not (tmp_path / "backups").exists()


def test_upload_dying_half_way_leaves_no_backup_and_no_change(
    make_db: Any, tmp_path: Path, s3_server: Any
) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    bucket = s3_server.new_bucket()
    store_url = f"s3://{bucket}/b?endpoint={s3_server.endpoint}"
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url, env=s3_server.env())[0])
    before = snapshot(uat)
    before_objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    # A dump large enough for several multipart parts, cut after the first chunk.
    execute(
        uat,
        "CREATE TABLE apps_blob_blob (id serial PRIMARY KEY, data text); "
        "INSERT INTO apps_blob_blob (data) SELECT md5(g::text) || repeat(md5((g * 7)::text), 40) FROM generate_series(1, 20000) g",
    )
    before = snapshot(uat)
    env = {**s3_server.env(), "DBSYNC_FAULT": "backup.stream", "DBSYNC_S3_PART_SIZE": str(5 * 1024 * 1024)}
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, env=env)
    assert proc.returncode == 4, proc.stderr
    assert report["status"] == "rolled_back"
    after_objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in after_objects] == [
        o["Key"] for o in before_objects
    ]  # nothing new, nothing deleted
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert snapshot(uat).checksum == before.checksum


def test_pg_dump_failure_fails_the_run_before_any_change(make_db: Any, tmp_path: Path) -> None:
    """A sequence pg_dump must read and the sync's role may not: pg_dump fails, the run stops
    before anything destructive, and no complete backup is left behind."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    execute(
        uat,
        "DO $$ BEGIN CREATE ROLE limited LOGIN PASSWORD 'limited-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
    )
    execute(
        uat,
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO limited; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO limited;"
        "CREATE SEQUENCE secret_seq;",
    )
    target = uat.cluster.url(uat.dbname, user="limited", password="limited-pw")
    before = snapshot(uat)
    proc, report = sync(prod, target, tmp_path)
    assert proc.returncode == 4
    assert "permission denied" in proc.stderr
    assert report["error"]["step"] == "backup"
    assert snapshot(uat).checksum == before.checksum
    assert [b for b in backups_in(f"file://{tmp_path}/backups") if b["complete"]] == []


def test_corrupted_backup_fails_verify_and_restore(make_db: Any, tmp_path: Path) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url)[0])
    [entry] = backups_in(store_url)
    dump = tmp_path / "store" / entry["folder"] / "dump.pgdump.zst"
    corrupt(dump)
    verify = dbsync("backups", "verify", "--backup-store", store_url, entry["run_id"])
    assert verify.returncode == 6 and "corrupt" in verify.stderr
    before = snapshot(uat)
    restore = dbsync("backups", "restore", "--backup-store", store_url, "--target", uat, entry["run_id"])
    assert restore.returncode == 6
    assert snapshot(uat).checksum == before.checksum


def restamp(folder: Path, dump: Path) -> None:
    """Make the manifest agree with the stored object again, as a damage that happened before
    the upload (or a manifest rewritten by hand) would: only the archive's checks are left."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["size"] = dump.stat().st_size
    manifest["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_a_damaged_zstd_frame_is_caught_by_the_archive_s_own_checks(
    make_db: Any, tmp_path: Path, damage: str
) -> None:
    """The stored object's sha256 catches damage after the upload. Damage its manifest agrees
    with is caught inside the frame: a flipped byte by zstd's content checksum or its decoding,
    a frame cut short (which zstd's streaming reader lets through) by the archive's sha256 in
    the manifest. verify and backups restore both refuse it (exit 6) and the target is not
    changed. (Bytes after a whole frame leave the archive intact; the object's sha256, over
    the whole object, notices them.)"""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url)[0])
    [entry] = backups_in(store_url)
    folder = tmp_path / "store" / entry["folder"]
    dump = folder / "dump.pgdump.zst"
    data = dump.read_bytes()
    if damage == "flipped":
        corrupt(dump)
    else:
        dump.write_bytes(data[: len(data) - 200])
    restamp(folder, dump)
    verify = dbsync("backups", "verify", "--backup-store", store_url, entry["run_id"])
    assert verify.returncode == 6 and "Traceback" not in verify.stderr, verify.stderr
    assert "corrupt" in verify.stderr or "damaged" in verify.stderr
    before = snapshot(uat)
    restore = dbsync("backups", "restore", "--backup-store", store_url, "--target", uat, entry["run_id"])
    assert restore.returncode == 6 and "Traceback" not in restore.stderr, restore.stderr
    assert snapshot(uat).checksum == before.checksum


def test_restore_brings_the_target_back_to_before_the_sync(make_db: Any, tmp_path: Path) -> None:
    """The seed's rollback procedure, done safely."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    store_url = f"file://{tmp_path}/store"
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url)
    ok(proc)
    assert snapshot(uat).checksum != before.checksum
    restore = dbsync(
        "backups", "restore", "--backup-store", store_url, "--keep-owners", "--target", uat, report["run_id"]
    )
    ok(restore)
    after = snapshot(uat)
    assert after.tables == before.tables, after.diff(before)
    assert after.sequences == before.sequences
    assert after.schema_checksum == before.schema_checksum


def test_failed_restore_leaves_the_target_unchanged(make_db: Any, tmp_path: Path) -> None:
    """The manifest says a table holds one row more than the dump restores: the final check
    fails inside the restore's transaction, so nothing of it is committed."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url)[0])
    [entry] = backups_in(store_url)
    manifest_path = tmp_path / "store" / entry["folder"] / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["public.apps_orders_order"] += 1
    manifest_path.write_text(json.dumps(manifest))
    before = snapshot(uat)
    restore = dbsync("backups", "restore", "--backup-store", store_url, "--target", uat, "latest")
    assert restore.returncode == 4, restore.stderr
    assert "restore check: public.apps_orders_order" in restore.stderr
    assert snapshot(uat).checksum == before.checksum


def test_restore_stopped_by_the_target_names_the_targets_reason(make_db: Any, tmp_path: Path) -> None:
    """A view in another schema depends on a table the backup's restore must drop first: psql
    stops on the DROP at the start, pg_restore stops reading a 32 MB backup it has barely
    begun, and the run says why in the server's words (not a broken pipe), exit 4, with the
    target unchanged."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    execute(
        uat,
        "CREATE TABLE public.z_bulk AS SELECT i, repeat(md5(i::text), 200) AS body "
        "FROM generate_series(1, 5000) AS i",
    )
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url, "--compress", "0")[0])
    execute(
        uat, "CREATE SCHEMA reports; CREATE VIEW reports.orders AS SELECT * FROM public.apps_orders_order"
    )
    before = snapshot(uat)
    restore = dbsync("backups", "restore", "--backup-store", store_url, "--target", uat, "latest")
    assert restore.returncode == 4, restore.stderr
    assert "reports.orders" in restore.stderr and "Broken pipe" not in restore.stderr, restore.stderr
    assert "Traceback" not in restore.stderr
    assert snapshot(uat).checksum == before.checksum


def test_restore_waits_for_the_targets_locks_only_as_long_as_told(make_db: Any, tmp_path: Path) -> None:
    """An application's open transaction has read a table the backup replaces: the restore
    waits --lock-timeout for its lock, not for ever (pg_restore's script would drop the table
    with lock_timeout 0, and every later query on it would queue behind that DROP), then
    stops with exit 4 and the lock timeout named; the target is unchanged. Once the
    application's transaction ends, the same restore goes through."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    ok(sync(prod, uat, tmp_path, "--backup-store", store_url)[0])
    after_sync = snapshot(uat)
    args = ("backups", "restore", "--backup-store", store_url, "--target", uat, "--lock-timeout", "1")
    with psycopg.connect(uat) as app:
        app.execute("SELECT count(*) FROM apps_orders_order").fetchone()  # holds ACCESS SHARE
        restore = dbsync(*args, "latest")
        assert restore.returncode == 4, restore.stderr
        assert "lock timeout" in restore.stderr and "Traceback" not in restore.stderr, restore.stderr
        app.rollback()
    assert snapshot(uat).checksum == after_sync.checksum
    # the failed run left its (complete) backup of the target; latest still means the sync's
    ok(dbsync(*args, "latest"))
    assert snapshot(uat).checksum != after_sync.checksum


def test_eleven_runs_leave_the_seven_newest(make_db: Any, tmp_path: Path) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    run_ids = []
    for _ in range(11):
        proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, "--series", "s", "--quiet")
        ok(proc)
        run_ids.append(report["run_id"])
    remaining = backups_in(store_url)
    assert sorted(b["run_id"] for b in remaining) == sorted(run_ids[-7:])
    assert all(b["complete"] for b in remaining)


def test_prune_dry_run_and_retain(make_db: Any, tmp_path: Path) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    for _ in range(3):
        ok(sync(prod, uat, tmp_path, "--backup-store", store_url, "--series", "s", "--quiet")[0])
    dry = dbsync(
        "backups", "prune", "--backup-store", store_url, "--series", "s", "--retain", "1", "--dry-run"
    )
    ok(dry)
    assert dry.stdout.count("would delete") == 2
    assert len(backups_in(store_url)) == 3
    ok(dbsync("backups", "prune", "--backup-store", store_url, "--series", "s", "--retain", "1"))
    assert len(backups_in(store_url)) == 1


# -- retention, pure -----------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def complete(folder: str, created: datetime, modified: datetime | None = None) -> Backup:
    manifest = Manifest(
        series="s",
        run_id=folder.rsplit("-", 1)[-1],
        created_at=created.isoformat(),
        kind="pre-sync",
        database={},
        server_version="15",
        pg_dump="15",
        format="custom",
        dump_key=f"s/{folder}/dump.pgdump",
        size=1,
        sha256="x",
    )
    when = modified or created
    objects = [ObjectInfo(f"s/{folder}/dump.pgdump", 1, when), ObjectInfo(f"s/{folder}/{MANIFEST}", 1, when)]
    return Backup("s", f"s/{folder}", objects, manifest)


def incomplete(folder: str, modified: datetime) -> Backup:
    return Backup("s", f"s/{folder}", [ObjectInfo(f"s/{folder}/dump.pgdump", 1, modified)])


def test_retention_orders_by_manifest_time_not_key_name() -> None:
    # Key names sort the opposite way from the manifests' times.
    backups = [complete(f"z{9 - i}-run{i}", NOW - timedelta(days=10 - i)) for i in range(10)]
    plan = plan_retention(backups, 7, NOW)
    assert sorted(b.run_id for b in plan.keep) == sorted(f"run{i}" for i in range(3, 10))
    assert sorted(b.run_id for b in plan.delete) == ["run0", "run1", "run2"]


def test_retention_never_deletes_the_protected_run_nor_goes_below_n() -> None:
    backups = [complete(f"a-run{i}", NOW - timedelta(days=i)) for i in range(3)]
    assert plan_retention(backups, 7, NOW).delete == []
    oldest_protected = plan_retention(backups, 1, NOW, protect=["run2"])
    assert [b.run_id for b in oldest_protected.delete] == ["run1"]


def test_incomplete_leftovers_are_pruned_only_after_a_day() -> None:
    backups = [
        complete("a-run1", NOW),
        incomplete("b-old", NOW - timedelta(days=2)),
        incomplete("c-young", NOW - timedelta(hours=3)),
    ]
    plan = plan_retention(backups, 7, NOW)
    assert [b.folder for b in plan.leftovers] == ["s/b-old"]
    assert plan.delete == []


class FailingListStore:
    """A store whose listing fails: prune must delete nothing."""

    url = "test://failing"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        raise StoreError("backup store test://failing: cannot list: connection reset")

    def delete(self, key: str) -> None:
        self.deleted.append(key)

    def put_stream(self, key: str, chunks: Any) -> Any:
        raise AssertionError("not used")

    def read_stream(self, key: str) -> Iterator[bytes]:
        raise AssertionError("not used")

    def head(self, key: str) -> ObjectInfo | None:
        raise AssertionError("not used")


def test_failing_list_deletes_nothing() -> None:
    store = FailingListStore()
    with pytest.raises(StoreError, match="cannot list"):
        prune(store, "s", 1)  # type: ignore[arg-type]
    assert store.deleted == []


def test_prune_deletes_data_before_manifest(tmp_path: Path) -> None:
    order: list[str] = []
    store = open_store(f"file://{tmp_path}")
    for i in range(2):
        folder = f"s/2026010{i}T000000Z-run{i}"
        store.put_stream(f"{folder}/dump.pgdump", [b"x"])
        manifest = complete(f"x-run{i}", NOW - timedelta(days=5 - i))
        manifest.manifest.dump_key = f"{folder}/dump.pgdump"  # type: ignore[union-attr]
        store.put_stream(f"{folder}/{MANIFEST}", [manifest.manifest.to_bytes()])  # type: ignore[union-attr]
    real_delete = store.delete

    def recording_delete(key: str) -> None:
        order.append(key)
        real_delete(key)

    store.delete = recording_delete  # type: ignore[method-assign]
    prune(store, "s", 1)
    assert order == ["s/20260100T000000Z-run0/dump.pgdump", f"s/20260100T000000Z-run0/{MANIFEST}"]
    assert [b.run_id for b in list_backups(store, "s")] == ["run1"]


def test_old_incomplete_folder_is_pruned_from_a_real_store(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.put_stream("s/20200101T000000Z-dead/dump.pgdump", [b"partial"])
    old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    os.utime(tmp_path / "s/20200101T000000Z-dead/dump.pgdump", (old, old))
    store.put_stream("s/20990101T000000Z-fresh/dump.pgdump", [b"partial"])
    plan = prune(store, "s", 7)
    assert [b.folder for b in plan.leftovers] == ["s/20200101T000000Z-dead"]
    assert [o.key for o in store.list("s/")] == ["s/20990101T000000Z-fresh/dump.pgdump"]


def test_pg_dump_newer_than_the_server_is_required() -> None:
    assert find_tool("pg_dump", 10).major >= 15
    with pytest.raises(ToolMissing, match=r"pg_dump of PostgreSQL 99 or newer.*postgresql-client-99"):
        find_tool("pg_dump", 99)


def test_unusable_store_is_bad_input_before_anything_changes(
    make_db: Any, tmp_path: Path, s3_server: Any
) -> None:
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    env = {**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-QQQ"}
    missing = f"s3://no-such-bucket-dbsync/x?endpoint={s3_server.endpoint}"
    proc, _ = sync(prod, uat, tmp_path, "--backup-store", missing, env=s3_server.env())
    assert proc.returncode == 14 and "no-such-bucket-dbsync" in proc.stderr and "does not exist" in proc.stderr
    bucket = s3_server.new_bucket()
    proc, _ = sync(
        prod, uat, tmp_path, "--backup-store", f"s3://{bucket}/x?endpoint={s3_server.endpoint}", env=env
    )
    assert proc.returncode == 14 and "credentials were refused" in proc.stderr
    assert "wrong-secret-QQQ" not in proc.stderr + proc.stdout
    proc, _ = sync(prod, uat, tmp_path, "--backup-store", "ftp://nowhere/x")
    assert proc.returncode == 2 and "use file:///path or s3://bucket/prefix" in proc.stderr
    assert snapshot(uat).checksum == before.checksum


def test_compression_level_reaches_pg_dump_and_a_bad_one_changes_nothing(
    make_db: Any, tmp_path: Path
) -> None:
    """--compress (or DBSYNC_COMPRESS): a level 0-9 is pg_dump's own zlib, stored as a plain
    dump.pgdump (the archive's header says so); zstd:N is dbsync's frame at that level. Every
    one restores with backups restore. Anything else is bad input (exit 2) before anything
    happens."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    for bad in ("10", "zstd:10", "zstd:19", "lz4"):
        store_url = f"file://{tmp_path}/bad"
        proc, _ = sync(prod, uat, tmp_path, "--backup-store", store_url, "--compress", bad)
        assert proc.returncode == 2 and "--compress" in proc.stderr and "Traceback" not in proc.stderr
        assert snapshot(uat) == before and not (tmp_path / "bad").exists()
    ok(sync(prod, uat, tmp_path, "--no-backup")[0])  # from here on, each run backs up the same data
    synced = snapshot(uat)
    sizes = {}
    for level in ("0", "9", "zstd:1", "zstd:9"):
        store_url = f"file://{tmp_path}/{level.replace(':', '')}"
        proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, env={"DBSYNC_COMPRESS": level})
        ok(proc)
        [entry] = backups_in(store_url)
        folder = tmp_path / level.replace(":", "") / entry["folder"]
        manifest = json.loads((folder / MANIFEST).read_text())
        if level.isdigit():
            assert dump_header(folder / "dump.pgdump")["Compression"] == level
            assert manifest["format"].endswith(f"--compress={level}") and manifest["compression"] is None
        else:
            assert (folder / "dump.pgdump.zst").exists() and not (folder / "dump.pgdump").exists()
            assert manifest["format"].endswith(f"--compress=0 | zstd -{level[5:]}")
        sizes[level] = report["backup"]["size"]
        # Each restores the synced data (a sync of the same data changes nothing in it).
        execute(uat, "UPDATE apps_catalog_tag SET name = name || ' (changed)'")
        ok(dbsync("backups", "restore", "--backup-store", store_url, "--target", uat, "--no-target-backup",
                  "--keep-owners", entry["run_id"]))
        assert snapshot(uat).checksum == synced.checksum
    # The same synced data dumped four times: level 9 is smaller than none at all, and zstd's
    # levels order the same way.
    assert sizes["9"] < sizes["0"] and sizes["zstd:9"] <= sizes["zstd:1"] < sizes["0"]


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def run_paused(
    run: Callable[[dict[str, str]], Any], checkpoint: str, tmp_path: Path
) -> tuple[threading.Thread, Path, dict[str, Any]]:
    """Start ``run`` (given the env) on a thread, pausing at ``checkpoint`` until the returned
    release file exists; the run's return value lands in the dict as "run"."""
    release = tmp_path / "release"
    result: dict[str, Any] = {}
    env = {"DBSYNC_FAULT": f"{checkpoint}:pause={release}"}
    thread = threading.Thread(target=lambda: result.update(run=run(env)), daemon=True)
    thread.start()
    return thread, release, result


def wait_for_lock(
    url: str, mode: str, relation: str, thread: threading.Thread, *, granted: bool = True
) -> None:
    """Until another session holds (or, with ``granted=False``, waits for) a lock of ``mode``
    on ``relation`` in the database ``url`` names, while the run on ``thread`` goes on."""
    deadline = time.monotonic() + 120
    while not rows(
        url,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
        "AND l.mode = %s AND l.granted = %s "
        "AND l.relation = (SELECT oid FROM pg_class WHERE relname = %s)",
        (mode, granted, relation),
    )[0][0]:
        assert thread.is_alive(), "the run ended before the lock was seen"
        assert time.monotonic() < deadline, f"no {mode} on {relation} (granted={granted})"
        time.sleep(0.05)


def wait_for_exclusive_lock(url: str, relation: str, thread: threading.Thread) -> None:
    """Until a session of the run holds an ACCESS EXCLUSIVE lock on ``relation``: the run is
    making its changes (pg_dump's share locks, while it lived, would have blocked it)."""
    wait_for_lock(url, "AccessExclusiveLock", relation, thread)


def hangs_behind_a_queued_alter(url: str, thread: threading.Thread, release: Path) -> bool:
    """With the run on ``thread`` paused (until ``release`` exists) while it holds its writer
    lock on apps_orders_order: queue an ALTER TABLE behind that lock, release the run, and say
    whether it hung. A hung run is let go by cancelling the ALTER, so that a test fails
    instead of hanging; otherwise the ALTER, granted once the run rolled back, is rolled back."""
    import psycopg

    wait_for_lock(url, "ShareRowExclusiveLock", "apps_orders_order", thread)
    with psycopg.connect(url) as ddl:

        def alter() -> None:
            with contextlib.suppress(psycopg.errors.QueryCanceled):  # cancelled if the run hung
                ddl.execute("ALTER TABLE apps_orders_order ADD COLUMN x int")

        altering = threading.Thread(target=alter, daemon=True)
        altering.start()
        wait_for_lock(url, "AccessExclusiveLock", "apps_orders_order", thread, granted=False)
        release.touch()
        thread.join(60)
        hung = thread.is_alive()
        if altering.is_alive():
            ddl.cancel()
        altering.join(60)
        ddl.rollback()
        thread.join(300)
    return hung


def test_backup_is_read_back_beside_the_sync_and_gates_its_commit(make_db: Any, tmp_path: Path) -> None:
    """The backup's read-back runs on a thread while the sync makes its changes, and COMMIT
    waits for it. Paused in the read-back, the run goes on to change the target in its
    transaction (it holds ACCESS EXCLUSIVE locks there); the stored dump is then corrupted and
    the read-back released: the run rolls back with the backup's exit code, the target is as it
    was, and the store holds no complete backup."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    store_url = f"file://{tmp_path}/store"
    thread, release, result = run_paused(
        lambda env: sync(prod, uat, tmp_path, "--backup-store", store_url, env=env), "backup.check", tmp_path
    )
    wait_for_exclusive_lock(uat, "apps_orders_order", thread)
    [dump] = list((tmp_path / "store").rglob("dump.pgdump.zst"))
    corrupt(dump)
    release.touch()
    thread.join(300)
    proc, report = result["run"]
    assert proc.returncode == 6, proc.stderr
    assert "reads back as" in proc.stderr and "nothing was committed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert report["status"] == "rolled_back" and report["error"]["step"] == "backup"
    assert snapshot(uat).checksum == before.checksum
    assert [b for b in backups_in(store_url) if b["complete"]] == []


def test_ddl_queued_behind_the_sync_s_lock_cannot_hang_its_backup(make_db: Any, tmp_path: Path) -> None:
    """An ALTER TABLE on a synced table sent after the sync locked it waits for that lock;
    pg_dump's share lock queues behind the ALTER, and the run waits for pg_dump. pg_dump's
    wait is bounded by lock_timeout_seconds: the target is reported in use, nothing changed."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    before = snapshot(uat)
    config = tmp_path / "sync.toml"
    config.write_text("lock_timeout_seconds = 2\n")
    thread, release, result = run_paused(
        lambda env: sync(prod, uat, tmp_path, "--config", str(config), env=env), "backup", tmp_path
    )
    assert not hangs_behind_a_queued_alter(uat, thread, release), "the sync hung behind the queued ALTER"
    proc, report = result["run"]
    assert proc.returncode == 4, proc.stderr
    assert (
        "in use" in proc.stderr and "lock_timeout_seconds" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert report["status"] == "rolled_back" and report["error"]["step"] == "backup"
    assert snapshot(uat).checksum == before.checksum


def test_a_run_failing_after_its_backup_still_completes_it(make_db: Any, tmp_path: Path) -> None:
    """The read-back runs beside the work; a run that fails later (here at prove) waits for it,
    so the backup is complete and verified in the store and in the report, as it was when the
    read-back came first."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, env={"DBSYNC_FAULT": "prove"})
    assert proc.returncode == 4, proc.stderr
    assert report["backup"]["verified"] is True and "check_seconds" in report["backup"]
    [entry] = backups_in(store_url)
    assert entry["complete"] and entry["run_id"] == report["run_id"]
    assert report["backup"]["restore_with"].endswith(f"{report['run_id']} --target URL")


def test_the_restore_lock_skips_tables_the_role_may_not_lock(make_db: Any) -> None:
    """sql/lock_user_tables.sql locks every user table the role may write, and leaves a table
    it may only read (an extension's table owned by the provider) unlocked instead of failing
    the restore, which may still drop it with its schema."""
    uat = make_db(1, "uat")
    execute(
        uat,
        "DO $$ BEGIN CREATE ROLE restorer LOGIN PASSWORD 'restorer-pw'; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        "CREATE TABLE public.z_readonly (k int); GRANT SELECT ON public.z_readonly TO restorer;"
        "GRANT UPDATE ON public.apps_orders_order TO restorer;",
    )
    from dbsync.sqlfiles import query

    url = uat.cluster.url(uat.dbname, user="restorer", password="restorer-pw")
    with psycopg.connect(url) as conn:
        conn.execute(query("lock_user_tables"))
        locked = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = pg_backend_pid() AND l.mode = 'ShareRowExclusiveLock'"
            )
        }
        conn.rollback()
    assert "apps_orders_order" in locked and "z_readonly" not in locked


# -- backups restore backs its target up first ----------------------------------------------------


def pre_backups_restore(store_url: str) -> list[dict[str, Any]]:
    return [b for b in backups_in(store_url) if b["series"].endswith("-pre-backups-restore")]


def counts(url: str) -> dict[str, int]:
    """Every ordinary user table's row count, by "schema.table"."""
    names = rows(
        url,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%'",
    )
    return {
        f"{schema}.{name}": rows(url, f'SELECT count(*) FROM ONLY "{schema}"."{name}"')[0][0]
        for schema, name in names
    }


def synced_with_own_work(make_db: Any, tmp_path: Path) -> tuple[str, str, str]:
    """A UAT synced with its backup in the store, then changed by its own users: what a
    ``backups restore`` of that backup would overwrite. Returns (uat, store URL, the sync's
    run id)."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url)
    ok(proc)
    execute(
        uat,
        "UPDATE apps_orders_order SET total = total + 1 WHERE id IN (SELECT min(id) FROM apps_orders_order)",
    )
    return uat, store_url, report["run_id"]


def test_backups_restore_backs_the_target_up_first_so_a_wrong_choice_loses_nothing(
    make_db: Any, tmp_path: Path
) -> None:
    """The manual recovery command overwrites its target; the target's contents are backed up
    first, in the restore's own transaction, and that backup restores them exactly."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    current, expected = snapshot(uat), counts(uat)
    args = ("backups", "restore", "--backup-store", store_url, "--keep-owners", "--target", uat)
    restore = dbsync(*args, run_id)
    ok(restore)
    assert snapshot(uat).tables != current.tables
    [saved] = pre_backups_restore(store_url)
    assert saved["complete"] and f"the target's previous contents: backup {saved['folder']}" in restore.stdout
    manifest = json.loads((tmp_path / "store" / saved["folder"] / MANIFEST).read_text())
    assert manifest["kind"] == "pre-backups-restore"
    assert manifest["tables"] == expected
    ok(dbsync(*args, saved["run_id"]))
    after = snapshot(uat)
    assert after.tables == current.tables, after.diff(current)
    assert after.sequences == current.sequences
    assert after.schema_checksum == current.schema_checksum
    assert len(pre_backups_restore(store_url)) == 2  # the undo backed up what it replaced too
    latest = dbsync("backups", "verify", "--backup-store", store_url, "latest")
    ok(latest)  # not ambiguous: latest never picks a backups restore's copy of its target
    assert latest.stdout.startswith(f"{saved['series'].replace('-pre-backups-restore', '-pre-sync')}/")


def test_backups_restore_locks_writers_out_from_its_backup_on(make_db: Any, tmp_path: Path) -> None:
    """Between the target's backup and its replacement no write can land (it would be in
    neither): paused right after its locks, the run keeps a writer out (lock timeout) and lets
    a reader in, and the backup's counts are those of the target it replaced."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    expected = counts(uat)
    args = ("backups", "restore", "--backup-store", store_url, "--target", uat, run_id)
    thread, release, result = run_paused(lambda env: dbsync(*args, env=env), "target-backup.locked", tmp_path)
    wait_for_lock(uat, "ShareRowExclusiveLock", "apps_orders_order", thread)
    with psycopg.connect(uat) as app:
        app.execute("SET lock_timeout = '500ms'")
        assert app.execute("SELECT count(*) FROM apps_orders_order").fetchone()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            app.execute("DELETE FROM apps_orders_order WHERE id IN (SELECT min(id) FROM apps_orders_order)")
    release.touch()
    thread.join(300)
    ok(result["run"])
    [saved] = pre_backups_restore(store_url)
    manifest = json.loads((tmp_path / "store" / saved["folder"] / MANIFEST).read_text())
    assert manifest["tables"] == expected


BACKUPS_RESTORE_CHECKPOINTS = [
    "target-backup.locked",
    "target-backup.stream",
    "target-backup.check",
    "backups-restore.replace",
    "backups-restore.load",
    "backups-restore.commit",
]


@pytest.mark.parametrize("how", ["raise", "kill", "term"])
@pytest.mark.parametrize("where", BACKUPS_RESTORE_CHECKPOINTS)
def test_backups_restore_fault_leaves_the_target_unchanged(
    make_db: Any, tmp_path: Path, where: str, how: str
) -> None:
    """Failed, killed or sent SIGTERM (a cancelled CI job) at each step of ``backups restore``,
    the target is exactly as it was; a failure after the target's backup was dumped still
    completes that backup."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    before = snapshot(uat)
    fault = where if how == "raise" else f"{where}:{how}"
    proc = dbsync(
        "backups",
        "restore",
        "--backup-store",
        store_url,
        "--target",
        uat,
        run_id,
        env={"DBSYNC_FAULT": fault},
    )
    assert snapshot(uat).checksum == before.checksum
    if how == "kill":
        assert proc.returncode == -9
        return
    if how == "term":
        assert proc.returncode == 130, proc.stderr
        assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
        wait_for_no_sessions(uat)  # psql and pg_dump are gone, and their sessions with them
        return
    assert proc.returncode == 4, proc.stderr
    assert f"fault injected at {where}" in proc.stderr and "the target was not changed" in proc.stderr
    assert "Traceback" not in proc.stderr
    completed = [b for b in pre_backups_restore(store_url) if b["complete"]]
    # dumped before the fault (the replace's steps): completed; else none
    assert len(completed) == (1 if where.startswith("backups-restore") else 0)


def test_backups_restore_sigterm_while_commit_is_in_flight_is_settled_by_the_server(
    make_db: Any, tmp_path: Path
) -> None:
    """SIGTERM while ``backups restore``'s COMMIT waits (for a synchronous standby): before,
    "outcome unknown" (exit 5). psql is told to cancel (the wait ends, the commit stands), the
    server's commit log says committed: exit 130 saying so, and the target is changed."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    before = snapshot(uat)
    proc, err = term_while_committing(uat, "backups", "restore", "--backup-store", store_url, "--target", uat, run_id)
    assert proc.returncode == 130, err
    assert "interrupted during COMMIT, which the server completed: the restore is committed" in err, err
    assert "COMMIT was interrupted (a signal), and the server had committed it" in err
    assert "Traceback" not in err
    assert snapshot(uat).checksum != before.checksum


def test_backups_restore_whose_target_backup_reads_back_wrong_commits_nothing(
    make_db: Any, tmp_path: Path
) -> None:
    """The target's backup is read back beside the load; paused there, with the target already
    replaced inside the transaction, its stored dump is corrupted: exit 6, nothing committed."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    before = snapshot(uat)
    args = ("backups", "restore", "--backup-store", store_url, "--target", uat, run_id)
    thread, release, result = run_paused(lambda env: dbsync(*args, env=env), "target-backup.check", tmp_path)
    wait_for_exclusive_lock(uat, "apps_orders_order", thread)
    [saved] = [p for p in (tmp_path / "store").rglob("dump.pgdump.zst") if "pre-backups-restore" in str(p)]
    corrupt(saved)
    release.touch()
    thread.join(300)
    proc = result["run"]
    assert proc.returncode == 6, proc.stderr
    assert "reads back as" in proc.stderr and "nothing was committed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(uat).checksum == before.checksum
    assert [b for b in pre_backups_restore(store_url) if b["complete"]] == []


def test_backups_restore_without_a_target_backup_is_explicit(make_db: Any, tmp_path: Path) -> None:
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    ok(
        dbsync(
            "backups", "restore", "--backup-store", store_url, "--target", uat, "--no-target-backup", run_id
        )
    )
    assert pre_backups_restore(store_url) == []


def test_backups_restore_of_a_target_being_written_is_refused_as_in_use(make_db: Any, tmp_path: Path) -> None:
    """An application's open write transaction keeps the target's backup from locking writers
    out: after --lock-timeout the run says the target is in use, exit 4, nothing changed."""
    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    before = snapshot(uat)
    args = ("backups", "restore", "--backup-store", store_url, "--target", uat, "--lock-timeout", "1", run_id)
    with psycopg.connect(uat) as app:
        app.execute(
            "UPDATE apps_orders_order SET total = total WHERE id IN (SELECT min(id) FROM apps_orders_order)"
        )
        proc = dbsync(*args)
        app.rollback()
    assert proc.returncode == 4, proc.stderr
    assert "in use" in proc.stderr and "--lock-timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(uat).checksum == before.checksum
    assert pre_backups_restore(store_url) == []


# -- one database name on two clusters of one host -------------------------------------------


@contextlib.contextmanager
def namesake(make_db: Any, of: Any, index: int, kind: str) -> Iterator[str]:
    """A database of ``kind`` on cluster ``index`` under ``of``'s name: the test clusters all
    listen on 127.0.0.1, so the two differ only in their port. Renamed back on the way out,
    for the fixture to drop."""
    twin = make_db(index, kind)
    rename = 'ALTER DATABASE "{}" RENAME TO "{}"'
    twin.cluster.execute("postgres", rename.format(twin.dbname, of.dbname))
    try:
        yield str(twin.cluster.url(of.dbname))
    finally:
        twin.cluster.execute(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (of.dbname,),
        )
        twin.cluster.execute("postgres", rename.format(of.dbname, twin.dbname))


def manifests_by_series(store: Path) -> dict[str, list[str]]:
    """Each series' backups, newest last, by the place (host:port/dbname) their manifest names."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in store.glob(f"*/*/{MANIFEST}"):
        manifest = json.loads(path.read_text())
        place = manifest["database"]["description"].rsplit("@", 1)[-1]
        found.setdefault(path.parent.parent.name, []).append((manifest["created_at"], place))
    return {series: [place for _, place in sorted(items)] for series, items in found.items()}


def place(url: Any) -> str:
    return f"127.0.0.1:{url.cluster.port}/{url.dbname}"


def test_two_databases_of_one_name_on_one_host_keep_their_own_backups(make_db: Any, tmp_path: Path) -> None:
    """The default series is ``<dbname>-<host>-pre-sync``: a second UAT of the same name on the
    same host (another cluster, another port) would share it, and its ``--retain 1`` would
    delete the first one's backup. It goes to ``<dbname>-<host>-<port>-pre-sync`` instead,
    with a warning, and each database's retention keeps to its own backups."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    with namesake(make_db, uat, 2, "uat") as twin:
        twin_port = twin.rsplit(":", 1)[1].split("/")[0]
        ok(sync(prod, uat, tmp_path, "--backup-store", store_url, "--retain", "1")[0])
        proc, report = sync(prod, twin, tmp_path, "--backup-store", store_url, "--retain", "1")
        ok(proc)
        plain = f"{uat.dbname}-127.0.0.1-pre-sync"
        own = f"{uat.dbname}-127.0.0.1-{twin_port}-pre-sync"
        assert report["backup"]["series"] == own
        assert [w for w in report["warnings"] if f"go to series {own}" in w and plain in w]
        proc, report = sync(prod, uat, tmp_path, "--backup-store", store_url, "--retain", "1")
        ok(proc)
        assert report["backup"]["series"] == plain and not [w for w in report["warnings"] if "series" in w]
        twin_place = f"127.0.0.1:{twin_port}/{uat.dbname}"
    assert manifests_by_series(tmp_path / "store") == {plain: [place(uat)], own: [twin_place]}


def test_a_series_two_databases_share_on_purpose_loses_neither_one_s_backups(
    make_db: Any, tmp_path: Path
) -> None:
    """An explicit ``--series`` given to two databases: each run's ``--retain 1`` keeps to its
    own database's backups (the manifests' cluster identifier and database name)."""
    prod, uat = make_db(0, "prod"), make_db(1, "uat")
    store_url = f"file://{tmp_path}/store"
    with namesake(make_db, uat, 2, "uat") as twin:
        twin_place = f"127.0.0.1:{twin.rsplit(':', 1)[1].split('/')[0]}/{uat.dbname}"
        for target in (uat, twin, uat):
            ok(sync(prod, target, tmp_path, "--backup-store", store_url, "--series", "shared", "--retain", "1")[0])
    assert manifests_by_series(tmp_path / "store") == {"shared": [twin_place, place(uat)]}
    identifiers = {
        json.loads(m.read_text())["database"]["system_identifier"] for m in (tmp_path / "store").glob(f"*/*/{MANIFEST}")
    }
    assert len(identifiers) == 2  # the two clusters


def test_two_productions_and_two_stagings_of_one_name_keep_their_own_backups(
    make_db: Any, tmp_path: Path
) -> None:
    """The same for a restore's two default series (production's and staging's) and for
    ``backups restore``'s backup of its target."""
    from tests.test_restore import restore  # test_restore imports this module's helpers
    prod, staging = make_db(0, "prod"), make_db(2, "uat")
    store_url = f"file://{tmp_path}/store"
    with namesake(make_db, prod, 1, "prod") as prod_twin, namesake(make_db, staging, 1, "uat") as twin:
        port = twin.rsplit(":", 1)[1].split("/")[0]
        ok(restore(staging, tmp_path, "--retain", "1", source=prod)[0])
        proc, report = restore(twin, tmp_path, "--retain", "1", source=prod_twin)
        ok(proc)
        moved = [w for w in report["warnings"] if "go to series" in w]
        assert len(moved) == 2, report["warnings"]
        proc = dbsync(
            "backups", "restore", "--backup-store", store_url, "--series",
            f"{prod.dbname}-127.0.0.1-production", "latest", "--target", staging, "--retain", "1",
        )
        ok(proc)
        proc = dbsync(
            "backups", "restore", "--backup-store", store_url, "--series",
            f"{prod.dbname}-127.0.0.1-production", "latest", "--target", twin, "--retain", "1",
        )
        ok(proc)
        assert "go to series" in proc.stdout + proc.stderr
        twin_place = f"127.0.0.1:{port}/{staging.dbname}"
        prod_twin_place = f"127.0.0.1:{prod_twin.rsplit(':', 1)[1].split('/')[0]}/{prod.dbname}"
    host = "127.0.0.1"
    assert manifests_by_series(tmp_path / "store") == {
        f"{prod.dbname}-{host}-production": [place(prod)],
        f"{prod.dbname}-{host}-{prod_twin_place.split(':')[1].split('/')[0]}-production": [prod_twin_place],
        f"{staging.dbname}-{host}-pre-restore": [place(staging)],
        f"{staging.dbname}-{host}-{port}-pre-restore": [twin_place],
        f"{staging.dbname}-{host}-pre-backups-restore": [place(staging)],
        f"{staging.dbname}-{host}-{port}-pre-backups-restore": [twin_place],
    }


def test_a_backup_s_database_is_its_cluster_s_identifier_and_its_name(tmp_path: Path) -> None:
    """Which database a backup is of: the cluster's system identifier and the database name
    in its manifest, whatever URL reached it; a manifest without the identifier, by its name
    and its URL's host:port/dbname (one database under another role is the same). A default
    series holding another database's backups sends the run to the port-qualified one, even
    when that is taken too (planted here): retention keeps to each database's own anyway."""
    from dbsync.backup import Manifest, Owner, series_for
    from dbsync.connect import endpoint

    planted = iter(range(100))

    def plant(series: str, database: dict[str, str]) -> None:
        folder = tmp_path / "store" / series / f"20260101T000000Z-r{next(planted)}"
        folder.mkdir(parents=True)
        fields = dict(series=series, run_id=folder.name[-2:], created_at="2026-01-01T00:00:00+00:00",
                      kind="pre-sync", database=database, server_version="15", pg_dump="15",
                      format="-Fc", dump_key=f"{series}/x/{'dump.pgdump'}", size=0, sha256="")
        (folder / MANIFEST).write_text(json.dumps(fields))

    store = open_store(f"file://{tmp_path}/store")
    mine = endpoint("target", "postgresql://u@db.example:6432/app")
    owner = Owner("7001", "app", mine.description)
    assert series_for(store, mine, "pre-sync", owner, "6432") == ("app-db.example-pre-sync", None)
    plant("app-db.example-pre-sync", {"description": "v@db.example:6432/app", "dbname": "app"})
    plant("app-db.example-pre-sync",  # the same cluster, reached another way
          {"description": "u@10.0.0.5:5432/app", "dbname": "app", "system_identifier": "7001"})
    assert series_for(store, mine, "pre-sync", owner, "6432") == ("app-db.example-pre-sync", None)
    plant("app-db.example-pre-sync",  # the same URL, another cluster (a tunnel, a PGPORT, ...)
          {"description": "u@db.example:6432/app", "dbname": "app", "system_identifier": "7002"})
    series, warning = series_for(store, mine, "pre-sync", owner, "6432")
    assert series == "app-db.example-6432-pre-sync" and warning and "db.example:6432/app" in warning
    plant("app-db.example-6432-pre-sync", {"description": "u@db_example:6432/app", "dbname": "app"})
    series, warning = series_for(store, mine, "pre-sync", owner, "6432")
    assert series == "app-db.example-6432-pre-sync" and warning

    def manifest(database: dict[str, str]) -> Manifest:
        return Manifest("s", "r", "2026-01-01T00:00:00+00:00", "pre-sync", database, "15", "15", "-Fc", "k", 0, "")

    socket = "(default user)@(local socket):5432/(default database)"  # service=uat and service=qa alike
    uat = Owner(None, "uat", socket)
    assert uat.owns(manifest({"description": socket, "dbname": "uat"}))
    assert not uat.owns(manifest({"description": socket, "dbname": "qa"}))


def test_retention_keeps_to_its_own_database_s_backups() -> None:
    """A run's retention counts and deletes only its own database's backups: another
    database's, in a series they share (an explicit --series, or a default one before the
    split), are never its to delete."""
    from dbsync.backup import Owner

    now = datetime(2026, 6, 1, tzinfo=UTC)

    def of(folder: str, system_identifier: str, hours: int) -> Backup:
        backup = complete(folder, now - timedelta(hours=hours))
        assert backup.manifest is not None
        backup.manifest.database.update(dbname="app", system_identifier=system_identifier)
        return backup

    mine = Owner("7001", "app", "u@h:5432/app")
    backups = [of("1-a", "7001", 1), of("2-b", "7002", 2), of("3-c", "7001", 3), of("4-d", "7002", 4)]
    plan = plan_retention(backups, 1, now, owner=mine)
    assert [b.folder for b in plan.delete] == ["s/3-c"]
    assert [b.folder for b in plan_retention(backups, 1, now).delete] == ["s/2-b", "s/3-c", "s/4-d"]


def test_a_long_name_keeps_the_kind_in_its_default_series() -> None:
    """Series names are cut to 120 characters; the cut falls in the database and host names,
    so that the kinds of one database's backups never share a series."""
    from dbsync.backup import default_series
    from dbsync.connect import endpoint

    long = endpoint("target", f"postgresql://u@{'h' * 70}.example:25060/{'d' * 60}")
    names = {kind: default_series(long, kind) for kind in ("pre-sync", "pre-backups-restore", "production")}
    for kind, name in names.items():
        assert len(name) <= 120 and name.endswith(f"-{kind}") and name.startswith("d" * 60 + "-hhh")
    assert default_series(long, "pre-sync", port="25060") == names["pre-sync"]  # the port is cut too
    short = endpoint("target", "postgresql://u@db.example:25060/app")
    assert default_series(short, "pre-sync") == "app-db.example-pre-sync"
    assert default_series(short, "pre-sync", port="25060") == "app-db.example-25060-pre-sync"


class StallingStore:
    """A store whose second read of ``key`` (the load's, after verify's) stalls until
    ``release`` is set: a Spaces read that stops answering."""

    def __init__(self, store: Any, key: str) -> None:
        self.store, self.key, self.url = store, key, store.url
        self.release = threading.Event()
        self.reads = 0

    def read_stream(self, key: str) -> Iterator[bytes]:
        stream = self.store.read_stream(key)
        if key != self.key:
            return stream
        self.reads += 1
        return stream if self.reads == 1 else self._stalled(stream)

    def _stalled(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        self.release.wait(60)
        yield from stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_failed_backups_restore_lets_the_target_go_while_a_read_is_stalled(
    make_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``backups restore`` fails while its read of the backup is stalled (a fault right after
    the load starts): psql is killed first, so the target's locks are released and the call
    returns at once, not when the read comes back; the target is as it was."""
    from dbsync.backup import find_backup
    from dbsync.connect import endpoint
    from dbsync.errors import RolledBack
    from dbsync.restore_backup import restore_backup

    uat, store_url, run_id = synced_with_own_work(make_db, tmp_path)
    before = snapshot(uat)
    plain = open_store(store_url)
    backup = find_backup(plain, run_id)
    assert backup.manifest is not None
    store = StallingStore(plain, backup.manifest.dump_key)
    threading.Timer(30, store.release.set).start()  # the old code's join returns then
    monkeypatch.setenv("DBSYNC_FAULT", "backups-restore.load")
    started = time.monotonic()
    try:
        with pytest.raises(RolledBack, match="fault injected"):
            restore_backup(store, backup, endpoint("target", uat))  # type: ignore[arg-type]
        assert time.monotonic() - started < 15
        assert not store.release.is_set()  # the read is still stalled
        with psycopg.connect(uat, autocommit=True) as conn:
            locked = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'apps_orders_order' AND l.pid <> pg_backend_pid()"
            ).fetchone()
        assert locked == (0,)
    finally:
        store.release.set()
    assert snapshot(uat).checksum == before.checksum


def test_the_read_back_unpacks_a_frame_before_its_manifest_is_written(tmp_path: Path) -> None:
    """A frame that reads back byte for byte as sent, but does not unpack to the archive
    pg_dump wrote (a compressor that lost its last block, say), is no backup: the seal
    raises and writes no manifest. The right frame seals. A manifest that calls its dump zstd
    but holds no archive hash is refused by verify before anything is read."""
    from dbsync.backup import UnsealedBackup, verify_backup
    from dbsync.compression import compress
    from dbsync.errors import BackupInvalid

    store = open_store(f"file://{tmp_path}/store")
    archive = b"PGDMP" + os.urandom(300_000)
    good = hashlib.sha256(archive).hexdigest()

    def unsealed(folder: str, frame_of: bytes) -> UnsealedBackup:
        written = store.put_stream(f"{folder}/dump.pgdump.zst", compress([frame_of], level=1))
        manifest = Manifest(
            series="s", run_id=folder[-4:], created_at=datetime.now(UTC).isoformat(), kind="pre-sync",
            database={}, server_version="15", pg_dump="15", format="-Fc", dump_key=written.key,
            size=written.size, sha256=written.sha256, compression="zstd", content_sha256=good,
        )
        return UnsealedBackup(store, written, folder, lambda: manifest, "backup", "zstd", good)

    with pytest.raises(BackupInvalid, match="unpacks to an archive with sha256"):
        unsealed("s/20260101T000000Z-bad1", archive[:-1000]).seal()
    assert not (tmp_path / "store" / "s/20260101T000000Z-bad1" / MANIFEST).exists()
    sealed = unsealed("s/20260101T000000Z-good", archive).seal()
    [backup] = [b for b in list_backups(store, "s") if b.manifest]
    assert verify_backup(store, backup) == sealed
    backup.manifest.content_sha256 = None  # type: ignore[union-attr]
    with pytest.raises(BackupInvalid, match="holds no content_sha256"):
        verify_backup(store, backup)
