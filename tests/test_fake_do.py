"""The fake DigitalOcean API itself (``tests/fake_do.py``), driven through pydo.

The real API cannot be reached from here; these tests pin the documented behaviour the fake
enforces, so that code tested against it (the trusted-source provider, the launcher's droplet
clean-up and token checks) is tested against those semantics. They also record pydo's own
quirks that callers must handle (404 returned as a body by some operations).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pydo
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.fake_do import FakeDigitalOcean

RULE = {"type": "ip_addr", "value": "10.0.0.5", "description": "app"}


def client(fake: FakeDigitalOcean, token: str | None = None) -> Any:
    return pydo.Client(token or fake.token, endpoint=fake.url, retry_total=0)


def test_authentication_is_required(fake_do: FakeDigitalOcean) -> None:
    with client(fake_do) as c:
        assert c.account.get()["account"]["status"] == "active"
    with client(fake_do, "dop_v1_wrong") as c, pytest.raises(ClientAuthenticationError) as err:
        c.account.get()
    assert err.value.status_code == 401
    body = json.loads(err.value.response.text())
    assert {k: body[k] for k in ("id", "message")} == {"id": "Unauthorized", "message": "Unable to authenticate you"}
    request = urllib.request.Request(f"{fake_do.url}/v2/account")  # no Authorization at all
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, context=ssl.create_default_context(cafile=fake_do.ca_file), timeout=10)
    assert raw.value.code == 401
    raw.value.close()


def test_database_clusters(fake_do: FakeDigitalOcean) -> None:
    prod = fake_do.add_cluster("prod", tags=["production"])
    uat = fake_do.add_cluster("uat", backups=2)
    with client(fake_do) as c:
        db = c.databases.get_cluster(prod)["database"]
        assert (db["id"], db["name"], db["engine"], db["version"], db["status"]) == (prod, "prod", "pg", "17", "online")
        for conn in ("connection", "private_connection"):
            assert set(db[conn]) >= {"host", "port", "user", "database", "ssl"}
        assert db["private_connection"]["host"].startswith("private-")
        assert db["private_network_uuid"]
        assert [d["id"] for d in c.databases.list_clusters()["databases"]] == [prod, uat]
        assert [d["id"] for d in c.databases.list_clusters(tag_name="production")["databases"]] == [prod]
        backups = c.databases.list_backups(uat)["backups"]
        assert len(backups) == 2 and set(backups[0]) == {"created_at", "size_gigabytes"}
        # pydo quirk: get_cluster, list_firewall_rules (and others) return a 404's body, no exception.
        missing = "5d6c7b8a-0000-4000-8000-000000000000"
        assert c.databases.get_cluster(missing)["id"] == "not_found"
        assert c.databases.list_firewall_rules(missing)["id"] == "not_found"


def test_firewall_put_replaces_the_whole_list_and_keeps_uuids_of_unchanged_rules(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[RULE, {"type": "tag", "value": "web"}])
    [kept, dropped] = fake_do.rules(cid)
    assert set(kept) == {"uuid", "cluster_uuid", "type", "value", "created_at", "description"}
    assert "description" not in dropped
    with client(fake_do) as c:
        assert c.databases.update_firewall_rules(cid, body={"rules": [
            {"type": "ip_addr", "value": "10.0.0.5", "description": "renamed"},
            {"type": "droplet", "value": "123"},
        ]}) is None
        rules = c.databases.list_firewall_rules(cid)["rules"]
    assert [(r["type"], r["value"]) for r in rules] == [("ip_addr", "10.0.0.5"), ("droplet", "123")]
    assert (rules[0]["uuid"], rules[0]["created_at"], rules[0]["description"]) == (kept["uuid"], kept["created_at"],
                                                                                  "renamed")
    assert rules[1]["uuid"] not in (kept["uuid"], dropped["uuid"]) and rules[1]["cluster_uuid"] == cid


def test_an_empty_rule_list_opens_the_cluster(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[RULE])
    assert not fake_do.is_open(cid)
    with client(fake_do) as c:
        c.databases.update_firewall_rules(cid, body={"rules": []})
    assert fake_do.is_open(cid) and fake_do.rules(cid) == []


@pytest.mark.parametrize(("rules", "message"), [
    ([{"type": "vpc", "value": "x"}], "invalid type"),
    ([{"type": "ip_addr", "value": "2001:db8::1"}], "IPv6"),
    ([{"type": "ip_addr", "value": "10.0.0.300"}], "not a valid IP"),
    ([{"type": "droplet", "value": "web-1"}], "not a droplet id"),
    ([{"type": "k8s", "value": "cluster"}], "not a k8s uuid"),
    ([{"type": "droplet", "value": 123}], "must be a string"),
    ([RULE, RULE], "duplicate"),
    ([{"type": "ip_addr", "value": f"10.1.{i // 200}.{i % 200}"} for i in range(101)], "at most 100"),
])
def test_invalid_rule_lists_are_refused_whole(fake_do: FakeDigitalOcean, rules: list[Any], message: str) -> None:
    cid = fake_do.add_cluster(rules=[RULE])
    before = fake_do.rules(cid)
    with client(fake_do) as c, pytest.raises(HttpResponseError) as err:
        c.databases.update_firewall_rules(cid, body={"rules": rules})
    assert err.value.status_code == 422
    body = json.loads(err.value.response.text())
    assert body["id"] == "unprocessable_entity" and message in body["message"]
    assert fake_do.rules(cid) == before


def test_exactly_100_rules_are_accepted(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[RULE])
    with client(fake_do) as c:
        c.databases.update_firewall_rules(cid, body={"rules": [
            {"type": "ip_addr", "value": f"10.1.{i // 200}.{i % 200}"} for i in range(100)]})
    assert len(fake_do.rules(cid)) == 100


def test_droplets_paginate_filter_and_delete(fake_do: FakeDigitalOcean) -> None:
    ids = [fake_do.add_droplet(f"d{i}", tags=["dbsync-runner"] if i % 2 == 0 else ["web"]) for i in range(5)]
    with client(fake_do) as c:
        first = c.droplets.list(per_page=2, page=1)
        assert [d["id"] for d in first["droplets"]] == ids[:2] and first["meta"]["total"] == 5
        assert first["links"]["pages"]["next"] == f"{fake_do.url}/v2/droplets?page=2&per_page=2"
        last = c.droplets.list(per_page=2, page=3)
        assert [d["id"] for d in last["droplets"]] == ids[4:] and "next" not in last["links"]["pages"]
        tagged = c.droplets.list(tag_name="dbsync-runner")
        assert [d["id"] for d in tagged["droplets"]] == ids[0::2] and tagged["meta"]["total"] == 3
        one = c.droplets.get(ids[1])["droplet"]
        assert isinstance(one["id"], int) and one["status"] == "active" and one["tags"] == ["web"]
        assert {n["type"] for n in one["networks"]["v4"]} == {"public", "private"} and one["vpc_uuid"]

        assert c.droplets.destroy(ids[1]) is None
        assert fake_do.droplet(ids[1]) is None
        assert c.droplets.destroy(ids[1])["id"] == "not_found"  # pydo quirk: 404 as a body
        assert c.droplets.destroy_by_tag(tag_name="dbsync-runner") is None
    assert fake_do.droplet_ids() == [ids[3]]


def test_fail_next_injects_once_and_logs_everything(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[RULE])
    fake_do.fail_next("GET", f"/v2/databases/{cid}", 500)
    with client(fake_do) as c:
        with pytest.raises(HttpResponseError) as err:
            c.databases.get_cluster(cid)
        assert err.value.status_code == 500
        assert c.databases.get_cluster(cid)["database"]["id"] == cid
    assert [(r.method, r.path) for r in fake_do.requests] == [("GET", f"/v2/databases/{cid}")] * 2
    assert fake_do.pending_failures() == 0 and fake_do.server_errors == []
