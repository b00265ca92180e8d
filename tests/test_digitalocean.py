"""The launcher's DigitalOcean side (``dbsync.launch.digitalocean``): preflight and the reaper.

The DigitalOcean API cannot be reached from the machines that run these tests. So these tests
run the REAL pydo requests against ``tests/fake_do.py``, a stateful HTTPS fake that enforces the
API's documented semantics: bearer-token authentication with DigitalOcean's 401 body, a firewall
PUT that replaces the whole list, an empty list that opens the cluster, paginated droplet lists
with ``links.pages.next`` and ``meta.total``, 404 bodies that pydo returns instead of raising.
The fake's request log shows the order of the calls, and ``fail_next`` fails chosen requests.

What must hold: preflight refuses a wrong token, an unknown or ambiguous cluster and the same
cluster twice with one clear sentence (never the token); the reaper destroys only expired runner
droplets (or one run's), removes only their rules and before the droplets, never removes a
cluster's last rule, leaves droplets of unknown age alone, and removes nothing when it cannot
see the whole list of droplets.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dbsync.errors import Refused, SameDatabase
from dbsync.launch.digitalocean import (
    RUNNER_TAG,
    CloudError,
    CloudNotFound,
    DigitalOcean,
    ReapReport,
    RemovedRule,
    cluster_problem,
    expires_at,
    preflight,
    reap,
)
from tests.fake_do import ApiError, FakeDigitalOcean

NOW = 1_750_000_000.0
PAST = int(NOW) - 3600
FUTURE = int(NOW) + 3600
APP = {"type": "app", "value": "7b2e3f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "description": "production app"}
OFFICE = {"type": "ip_addr", "value": "10.20.0.0/24"}
WRONG_TOKEN = "dop_v1_wrong_" + "7" * 51


def cloud(fake: FakeDigitalOcean, token: str | None = None, **options: Any) -> DigitalOcean:
    """The real pydo-backed client pointed at the fake, with no backoff and no settling pauses."""
    settings: dict[str, Any] = {"retries": 1, "backoff_seconds": 0, "settle_seconds": 0, **options}
    return DigitalOcean(token or fake.token, fake.url, **settings)


def runner_tags(stack: str, run: str, expires: int | None) -> list[str]:
    tags = [RUNNER_TAG, f"stack-{stack}", f"run-{run}"]
    return [*tags, f"expires-{expires}"] if expires is not None else tags


def runner_rule(droplet_id: int, run: str) -> dict[str, str]:
    return {"type": "droplet", "value": str(droplet_id), "description": f"dbsync runner {run}"}


def keys(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["type"], r["value"]) for r in rules]


def writes(fake: FakeDigitalOcean) -> list[tuple[str, str]]:
    """Every state-changing request, in order: (method, path)."""
    return [(r.method, r.path) for r in fake.requests if r.method in ("PUT", "DELETE", "POST")]


# --- preflight ----------------------------------------------------------------------------------


def test_preflight_finds_both_clusters_and_returns_private_endpoints_without_secrets(
    fake_do: FakeDigitalOcean,
) -> None:
    prod = fake_do.add_cluster("db-prod", version="16")
    uat = fake_do.add_cluster("db-uat", version="17")

    checked = preflight(cloud(fake_do), "db-prod", uat)  # by name and by id

    assert checked["source"]["id"] == prod and checked["source"]["name"] == "db-prod"
    assert checked["source"]["version"] == "16"
    assert checked["target"]["id"] == uat and checked["target"]["name"] == "db-uat"
    for side, cid in (("source", prod), ("target", uat)):
        private = fake_do.cluster(cid)["private_connection"]
        assert checked[side]["private_host"] == private["host"]
        assert checked[side]["private_port"] == private["port"] == 25060
        assert checked[side]["region"] == "fra1"
        text = json.dumps(checked)
        assert private["password"] not in text  # no password, no connection URI
        assert "uri" not in checked[side]
    assert fake_do.requests[0].path == "/v2/account"  # the token is checked first
    assert writes(fake_do) == []


def test_wrong_token_is_one_clear_sentence_without_the_token(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_cluster("db-prod")
    fake_do.add_cluster("db-uat")

    with pytest.raises(CloudError) as caught:
        preflight(cloud(fake_do, token=WRONG_TOKEN), "db-prod", "db-uat")

    message = str(caught.value)
    assert "the digitalocean token was refused" in message.lower()
    assert "DIGITALOCEAN_TOKEN" in message
    assert WRONG_TOKEN not in message and fake_do.token not in message
    assert caught.value.kind == "cloud" and caught.value.exit_code == 8
    assert caught.value.__cause__ is None  # no azure traceback carrying the request headers
    assert [r.path for r in fake_do.requests] == ["/v2/account"]  # stopped at the first call


def test_refused_token_on_a_later_call_says_so_too(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster("db-prod", rules=[APP])
    do = cloud(fake_do, token=WRONG_TOKEN)
    for call in (lambda: do.droplets(RUNNER_TAG), lambda: do.firewall_rules(cid),
                 lambda: do.find_cluster("db-prod")):
        with pytest.raises(CloudError, match=r"(?i)the digitalocean token was refused") as caught:
            call()
        assert WRONG_TOKEN not in str(caught.value)


def test_server_error_sentence_names_the_status_and_never_the_token(fake_do: FakeDigitalOcean) -> None:
    fake_do.fail_next("GET", "/v2/droplets", 500, times=2)
    with pytest.raises(CloudError) as caught:
        cloud(fake_do).droplets(RUNNER_TAG)
    assert "HTTP 500" in str(caught.value) and "droplets tagged dbsync-runner" in str(caught.value)
    assert fake_do.token not in str(caught.value)


def test_unknown_cluster_name_is_named(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_cluster("db-prod")
    fake_do.add_cluster("db-uat")

    with pytest.raises(CloudError, match="no database cluster named 'db-uta'") as caught:
        preflight(cloud(fake_do), "db-prod", "db-uta")
    assert "db-uat" in str(caught.value)  # the clusters that do exist, to spot the typo


def test_unknown_cluster_id_is_named(fake_do: FakeDigitalOcean) -> None:
    """pydo RETURNS the 404 body of get_cluster instead of raising: it must not pass as a cluster."""
    fake_do.add_cluster("db-prod")
    missing = "0b7e1d52-96a3-4d0c-9f32-6c1a2b3c4d5e"
    with pytest.raises(CloudError, match=f"no database cluster with id {missing}"):
        preflight(cloud(fake_do), "db-prod", missing)


def test_two_clusters_with_the_same_name_are_ambiguous(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_cluster("db-prod")
    first = fake_do.add_cluster("db-uat")
    second = fake_do.add_cluster("db-uat")

    with pytest.raises(CloudError, match="'db-uat' is ambiguous") as caught:
        preflight(cloud(fake_do), "db-prod", "db-uat")
    assert first in str(caught.value) and second in str(caught.value)
    assert "id instead" in str(caught.value)
    # by id, each is found
    assert cloud(fake_do).find_cluster(second)["id"] == second


def test_same_cluster_by_name_and_by_id_is_refused(fake_do: FakeDigitalOcean) -> None:
    prod = fake_do.add_cluster("db-prod")
    fake_do.add_cluster("db-uat")

    with pytest.raises(Refused) as caught:
        preflight(cloud(fake_do), "db-prod", prod)
    assert isinstance(caught.value, SameDatabase) and caught.value.exit_code == 3
    assert "same database cluster" in str(caught.value) and prod in str(caught.value)


def test_cluster_that_is_not_online_postgresql_is_refused() -> None:
    """The fake's clusters are always online PostgreSQL: the check itself is tested directly."""
    base = {"id": "c1", "name": "db-uat", "engine": "pg", "status": "online"}
    assert cluster_problem(base) is None
    assert "not online" in (cluster_problem({**base, "status": "creating"}) or "")
    assert "not PostgreSQL" in (cluster_problem({**base, "engine": "mysql"}) or "")


# --- the droplet listing ------------------------------------------------------------------------


def test_listing_follows_every_page(fake_do: FakeDigitalOcean) -> None:
    ids = [fake_do.add_droplet(f"runner-{n}", tags=runner_tags("uat", f"r{n}", PAST)) for n in range(30)]
    fake_do.add_droplet("web", tags=["web"])

    listed = cloud(fake_do, per_page=7).droplets(RUNNER_TAG)

    assert [d["id"] for d in listed] == ids
    assert len(fake_do.requests_to("GET", "/v2/droplets")) == 5  # 7+7+7+7+2


def test_a_failing_later_page_fails_the_whole_listing(
    fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(12):
        fake_do.add_droplet(f"runner-{n}", tags=runner_tags("uat", f"r{n}", PAST))
    original = fake_do._list_droplets

    def page_two_fails(path: str, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("page") == "2":
            raise ApiError(503, "service_unavailable", "Service unavailable.")
        return original(path, query)

    monkeypatch.setattr(fake_do, "_list_droplets", page_two_fails)
    with pytest.raises(CloudError, match="HTTP 503"):
        cloud(fake_do, per_page=5).droplets(RUNNER_TAG)


def test_a_listing_that_does_not_add_up_is_read_again(
    fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A droplet destroyed between two page reads shifts the pages, and one droplet would be
    skipped; the total the API reports tells, and the listing starts over."""
    ids = [fake_do.add_droplet(f"runner-{n}", tags=runner_tags("uat", f"r{n}", PAST)) for n in range(6)]
    original = fake_do._list_droplets
    calls = {"n": 0}

    def shifting(path: str, query: dict[str, str]) -> tuple[int, Any]:
        calls["n"] += 1
        status, body = original(path, query)
        if calls["n"] == 2:  # page 2 of the first round: as if one droplet went missing
            body = {**body, "droplets": body["droplets"][1:]}
        return status, body

    monkeypatch.setattr(fake_do, "_list_droplets", shifting)
    listed = cloud(fake_do, per_page=3).droplets(RUNNER_TAG)
    assert [d["id"] for d in listed] == ids
    assert len(fake_do.requests_to("GET", "/v2/droplets")) == 4


# --- the reaper ---------------------------------------------------------------------------------


def make_world(fake: FakeDigitalOcean) -> dict[str, Any]:
    """Production and UAT, the app's rules, one expired and one live runner of stack uat."""
    expired = fake.add_droplet("runner-old", tags=runner_tags("uat", "old", PAST))
    live = fake.add_droplet("runner-now", tags=runner_tags("uat", "now", FUTURE))
    web = fake.add_droplet("web", tags=["web"])
    rules = [APP, OFFICE, runner_rule(expired, "old"), runner_rule(live, "now")]
    prod = fake.add_cluster("db-prod", rules=rules)
    uat = fake.add_cluster("db-uat", rules=rules)
    return {"expired": expired, "live": live, "web": web, "prod": prod, "uat": uat}


def test_reap_removes_only_expired_runners_and_only_their_rules(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    before = {cid: fake_do.rules(cid) for cid in (w["prod"], w["uat"])}

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])

    assert report.reaped == [w["expired"]]
    assert report.live == [w["live"]]
    assert report.left_behind == [] and report.clean and bool(report) and report.changed
    assert report.rules_removed == [RemovedRule(w["prod"], "droplet", str(w["expired"])),
                                    RemovedRule(w["uat"], "droplet", str(w["expired"]))]
    assert fake_do.droplet_ids() == sorted([w["live"], w["web"]])
    for cid, old in before.items():
        expected = [r for r in old if r["value"] != str(w["expired"])]
        assert fake_do.rules(cid) == expected  # the others untouched: same uuid, description
        assert keys(fake_do.rules(cid)) == keys([APP, OFFICE, runner_rule(w["live"], "now")])


def test_reap_removes_rules_before_destroying_droplets(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    second = fake_do.add_droplet("runner-old-2", tags=runner_tags("uat", "old2", PAST))
    for cid in (w["prod"], w["uat"]):
        fake_do.set_rules(cid, [*fake_do.rules(cid), runner_rule(second, "old2")])

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])

    assert sorted(report.reaped) == sorted([w["expired"], second])
    order = writes(fake_do)
    puts = [i for i, (m, p) in enumerate(order) if m == "PUT" and p.endswith("/firewall")]
    deletes = [i for i, (m, p) in enumerate(order) if m == "DELETE" and p.startswith("/v2/droplets/")]
    assert len(puts) == 2 and len(deletes) == 2  # one write per cluster, one delete per droplet
    assert max(puts) < min(deletes)


def test_run_scoped_reap_destroys_that_runs_droplet_even_if_not_expired(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    untagged_age = fake_do.add_droplet("runner-now-b", tags=runner_tags("uat", "now", None))
    for cid in (w["prod"], w["uat"]):
        fake_do.set_rules(cid, [*fake_do.rules(cid), runner_rule(untagged_age, "now")])

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]], run_id="now")

    assert sorted(report.reaped) == sorted([w["live"], untagged_age])
    assert report.clean
    # the expired droplet of another run is not this reap's business
    assert fake_do.droplet_ids() == sorted([w["expired"], w["web"]])
    for cid in (w["prod"], w["uat"]):
        assert keys(fake_do.rules(cid)) == keys([APP, OFFICE, runner_rule(w["expired"], "old")])


def test_stack_scoped_reap_leaves_other_stacks(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    staging = fake_do.add_droplet("runner-staging", tags=runner_tags("staging", "s1", PAST))

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]], stack="staging")

    assert report.reaped == [staging]
    assert w["expired"] in fake_do.droplet_ids()


def test_droplet_without_expires_tag_is_left_and_reported(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    unknown = fake_do.add_droplet("runner-unknown", tags=[RUNNER_TAG, "stack-uat", "run-x"])
    for cid in (w["prod"], w["uat"]):
        fake_do.set_rules(cid, [*fake_do.rules(cid), runner_rule(unknown, "x")])

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])

    assert report.reaped == [w["expired"]]
    assert unknown in fake_do.droplet_ids()
    assert str(unknown) in {r["value"] for r in fake_do.rules(w["prod"])}
    [sentence] = report.left_behind
    assert str(unknown) in sentence and "age is unknown" in sentence
    assert not report and not report.clean


def test_failing_droplet_listing_removes_nothing(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    before = {cid: fake_do.rules(cid) for cid in (w["prod"], w["uat"])}
    droplets_before = fake_do.droplet_ids()
    fake_do.fail_next("GET", "/v2/droplets", 500, times=2)  # the first try and its one retry

    with pytest.raises(CloudError, match="HTTP 500"):
        reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])

    assert writes(fake_do) == []
    assert fake_do.droplet_ids() == droplets_before
    assert {cid: fake_do.rules(cid) for cid in before} == before


def test_reap_follows_pagination_completely(fake_do: FakeDigitalOcean) -> None:
    anchor = fake_do.add_droplet("app", tags=["app"])
    expired = [fake_do.add_droplet(f"runner-{n}", tags=runner_tags("uat", f"r{n}", PAST)) for n in range(30)]
    rules = [APP, {"type": "droplet", "value": str(anchor)}, *(runner_rule(d, "r") for d in expired)]
    prod = fake_do.add_cluster("db-prod", rules=rules)

    report = reap(cloud(fake_do, per_page=4), now=NOW, cluster_ids=[prod])

    assert sorted(report.reaped) == expired
    assert len(report.rules_removed) == 30
    assert fake_do.droplet_ids(RUNNER_TAG) == []
    assert keys(fake_do.rules(prod)) == keys(rules[:2])
    assert len(fake_do.requests_to("GET", "/v2/droplets?")) == 8  # ceil(30 / 4)


def test_last_rule_is_never_removed_and_is_reported(fake_do: FakeDigitalOcean) -> None:
    """A cluster whose only trusted source is the runner: removing it would open the cluster to
    every source. The rule stays (it then admits nothing), the droplet still goes."""
    expired = fake_do.add_droplet("runner-old", tags=runner_tags("uat", "old", PAST))
    lonely = fake_do.add_cluster("db-uat", rules=[runner_rule(expired, "old")])
    prod = fake_do.add_cluster("db-prod", rules=[APP, runner_rule(expired, "old")])

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[prod, lonely])

    assert not fake_do.is_open(lonely)
    assert keys(fake_do.rules(lonely)) == [("droplet", str(expired))]
    assert keys(fake_do.rules(prod)) == [("app", APP["value"])]
    assert fake_do.requests_to("PUT", f"/v2/databases/{lonely}/firewall") == []
    assert report.reaped == [expired]
    assert report.rules_removed == [RemovedRule(prod, "droplet", str(expired))]
    [sentence] = report.left_behind
    assert lonely in sentence and "last rule" in sentence and "open the cluster" in sentence


def test_remove_firewall_rule_leaves_the_last_rule_and_says_so(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster("db-uat", rules=[OFFICE])
    removal = cloud(fake_do).remove_firewall_rule(cid, "ip_addr", OFFICE["value"])
    assert removal.kept_last == (("ip_addr", OFFICE["value"]),) and removal.removed == ()
    assert "last rule" in removal.sentences[0]
    assert not fake_do.is_open(cid)


def test_remove_firewall_rule_removes_only_that_rule_and_is_idempotent(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster("db-uat", rules=[APP, OFFICE, runner_rule(300000101, "a")])
    do = cloud(fake_do)

    first = do.remove_firewall_rule(cid, "droplet", "300000101")
    second = do.remove_firewall_rule(cid, "droplet", "300000101")

    assert first.removed == (("droplet", "300000101"),)
    assert second.removed == () and second.absent == (("droplet", "300000101"),)
    assert keys(fake_do.rules(cid)) == keys([APP, OFFICE])
    assert len(fake_do.requests_to("PUT", f"/v2/databases/{cid}/firewall")) == 1


def test_a_rule_write_that_does_not_apply_is_written_again(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster("db-uat", rules=[APP, runner_rule(300000101, "a")])
    fake_do.fail_next("PUT", f"/v2/databases/{cid}/firewall", 204)  # "succeeds", changes nothing

    removal = cloud(fake_do).remove_firewall_rule(cid, "droplet", "300000101")

    assert removal.removed == (("droplet", "300000101"),)
    assert keys(fake_do.rules(cid)) == keys([APP])
    assert len(fake_do.requests_to("PUT", f"/v2/databases/{cid}/firewall")) == 2


def test_a_rule_that_cannot_be_removed_keeps_its_droplet(fake_do: FakeDigitalOcean) -> None:
    """Destroying the droplet would leave its rule with nothing that leads back to it."""
    w = make_world(fake_do)
    fake_do.fail_next("PUT", f"/v2/databases/{w['uat']}/firewall", 403)

    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])

    assert report.reaped == []
    assert w["expired"] in fake_do.droplet_ids()
    assert report.rules_removed == [RemovedRule(w["prod"], "droplet", str(w["expired"]))]
    [sentence] = report.left_behind
    assert "NOT destroyed" in sentence and "HTTP 403" in sentence and fake_do.token not in sentence

    again = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"], w["uat"]])  # a later reap
    assert again.reaped == [w["expired"]] and again.clean
    assert str(w["expired"]) not in {r["value"] for r in fake_do.rules(w["uat"])}


def test_a_cluster_that_no_longer_exists_has_no_rules_to_remove(fake_do: FakeDigitalOcean) -> None:
    """pydo RETURNS the firewall's 404 body: a deleted cluster took its rules with it, so it
    neither blocks the droplet nor passes silently."""
    w = make_world(fake_do)
    gone = "0b7e1d52-96a3-4d0c-9f32-6c1a2b3c4d5e"
    report = reap(cloud(fake_do), now=NOW, cluster_ids=[gone, w["prod"]])
    assert report.reaped == [w["expired"]] and report.clean
    assert any(gone in note and "does not exist" in note for note in report.notes)
    with pytest.raises(CloudNotFound, match=gone):
        cloud(fake_do).firewall_rules(gone)


def test_a_droplet_already_gone_counts_as_reaped(fake_do: FakeDigitalOcean) -> None:
    w = make_world(fake_do)
    fake_do.fail_next("DELETE", f"/v2/droplets/{w['expired']}", 404)
    report = reap(cloud(fake_do), now=NOW, cluster_ids=[w["prod"]])
    assert report.reaped == [w["expired"]] and report.clean
    assert any("already gone" in note for note in report.notes)


def test_nothing_expired_means_no_request_beyond_the_listing(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_droplet("runner-now", tags=runner_tags("uat", "now", FUTURE))
    prod = fake_do.add_cluster("db-prod", rules=[APP])
    report = reap(cloud(fake_do), now=NOW, cluster_ids=[prod])
    assert report == ReapReport(live=report.live) and report.clean and not report.changed
    assert [r.path.split("?")[0] for r in fake_do.requests] == ["/v2/droplets"]


def test_destroy_by_tag_and_destroy_droplet(fake_do: FakeDigitalOcean) -> None:
    a = fake_do.add_droplet("a", tags=["run-x"])
    b = fake_do.add_droplet("b", tags=["run-x"])
    c = fake_do.add_droplet("c", tags=["run-y"])
    do = cloud(fake_do)
    do.destroy_by_tag("run-x")
    assert fake_do.droplet_ids() == [c]
    assert do.destroy_droplet(c) is True
    assert do.destroy_droplet(a) is False  # pydo returns the 404 body: already gone
    assert b not in fake_do.droplet_ids()


def test_expires_tag_parsing() -> None:
    assert expires_at(["dbsync-runner", "expires-100"]) == 100
    assert expires_at(["expires-100", "expires-200"]) == 200  # the latest wins
    assert expires_at(["expires-soon", "dbsync-runner"]) is None
