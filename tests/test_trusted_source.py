"""The per-rule trusted-source resource (``infra/trusted_source.py``) against a fake DigitalOcean API.

The DigitalOcean API cannot be reached from the machines that run these tests, and no Pulumi
engine exists here either. So the provider's create / read / update / delete / diff / check run
directly, through the REAL ``PydoFirewallApi``: pydo sends real HTTPS requests to
``tests/fake_do.py``, a stateful fake that enforces the API's documented semantics (a PUT
replaces the whole list, an empty list opens the cluster, at most 100 rules, no IPv6, bearer-token
authentication, DigitalOcean's error bodies) and can fail or silently drop chosen requests.

What must hold: a rule resource adds or removes its own rule and never another one, also when
two stacks work on one cluster; it refuses to add the first rule to an open cluster and to remove
the last rule; every write is verified by reading back; every failure is a sentence naming the
cluster and the HTTP status, never the token.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from infra.trusted_source import (
    MAX_RULES,
    UNKNOWN,
    ClusterNotFoundError,
    FirewallApi,
    PydoFirewallApi,
    Rule,
    TrustedSource,
    TrustedSourceArgs,
    TrustedSourceError,
    TrustedSourceProvider,
    add_rule,
    remove_rule,
    request_shape,
)
from tests.fake_do import FakeDigitalOcean

ROOT = Path(__file__).resolve().parent.parent

APP = {"type": "app", "value": "7b2e3f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "description": "production app"}
OFFICE = {"type": "ip_addr", "value": "10.20.0.0/24"}  # no description, as the API allows
UAT_RUNNER = {"type": "droplet", "value": "300000101", "description": "dbsync runner uat-1"}
STAGING_RUNNER = {"type": "droplet", "value": "300000202", "description": "dbsync runner staging-1"}


def api_for(fake: FakeDigitalOcean, token: str | None = None) -> PydoFirewallApi:
    """The real pydo-backed API pointed at the fake; no backoff so retries do not slow the tests."""
    return PydoFirewallApi(token or fake.token, fake.url, retries=2, backoff_seconds=0)


def provider_for(fake: FakeDigitalOcean, token: str | None = None, attempts: int = 3) -> TrustedSourceProvider:
    return TrustedSourceProvider(lambda: api_for(fake, token), attempts=attempts, settle_seconds=0)


def props(cluster_id: str, rule: dict[str, str]) -> dict[str, Any]:
    """Inputs as the dynamic-provider host passes them (with the pickled provider key)."""
    return {"cluster_id": cluster_id, "type": rule["type"], "value": rule["value"],
            "description": rule.get("description", ""), "__provider": "serialized"}


def keys(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["type"], r["value"]) for r in rules]


def firewall_path(cluster_id: str) -> str:
    return f"/v2/databases/{cluster_id}/firewall"


def puts(fake: FakeDigitalOcean, cluster_id: str) -> list[Any]:
    return [r.body for r in fake.requests_to("PUT", firewall_path(cluster_id))]


def by_key(rules: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["value"]): r for r in rules}


# --- create / delete ----------------------------------------------------------------------------


def test_create_adds_only_its_rule_and_keeps_every_other(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    before = by_key(fake_do.rules(cid))

    result = provider_for(fake_do).create(props(cid, UAT_RUNNER))

    after = fake_do.rules(cid)
    assert keys(after) == keys([APP, OFFICE, UAT_RUNNER])
    for key, rule in before.items():  # untouched: same uuid, created_at, description (or none)
        assert by_key(after)[key] == rule
    mine = by_key(after)[("droplet", UAT_RUNNER["value"])]
    assert mine["description"] == UAT_RUNNER["description"]
    assert result.id == f"{cid}:droplet:{UAT_RUNNER['value']}"
    assert result.outs == {"cluster_id": cid, "type": "droplet", "value": UAT_RUNNER["value"],
                           "description": UAT_RUNNER["description"], "rule_uuid": mine["uuid"], "adopted": False}
    assert len(puts(fake_do, cid)) == 1
    assert not fake_do.is_open(cid)


def test_put_body_has_exactly_the_documented_shape(fake_do: FakeDigitalOcean) -> None:
    """``{"rules": [{"type", "value", "description"?}]}``: no uuid, cluster_uuid or created_at
    echoed back, other rules' descriptions carried over, none invented where there was none."""
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    provider_for(fake_do).create(props(cid, UAT_RUNNER))

    [body] = puts(fake_do, cid)
    assert body == {"rules": [
        {"type": "app", "value": APP["value"], "description": "production app"},
        {"type": "ip_addr", "value": "10.20.0.0/24"},
        {"type": "droplet", "value": UAT_RUNNER["value"], "description": UAT_RUNNER["description"]},
    ]}
    assert all(isinstance(v, str) for rule in body["rules"] for v in rule.values())


def test_create_of_an_existing_rule_adopts_it_and_delete_leaves_it(fake_do: FakeDigitalOcean) -> None:
    """Both stacks' baselines may list the production app's rule: whoever declares it must not
    remove it on delete, since it was there before."""
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    before = fake_do.rules(cid)
    provider = provider_for(fake_do)

    result = provider.create(props(cid, {**APP, "description": "dbsync baseline (uat)"}))
    assert result.outs is not None and result.outs["adopted"] is True
    assert result.outs["rule_uuid"] == by_key(before)[("app", APP["value"])]["uuid"]
    provider.delete(result.id, {**props(cid, APP), **result.outs})

    assert fake_do.rules(cid) == before  # its description was not rewritten either
    assert puts(fake_do, cid) == []


def test_a_rule_left_by_an_interrupted_create_is_claimed_not_adopted(fake_do: FakeDigitalOcean) -> None:
    """A create whose PUT applied but whose call failed leaves a rule Pulumi knows nothing of; the
    next create finds it with its own description and owns it, so a later delete removes it."""
    cid = fake_do.add_cluster(rules=[APP, UAT_RUNNER])
    provider = provider_for(fake_do)
    created = provider.create(props(cid, UAT_RUNNER))
    assert created.outs is not None and created.outs["adopted"] is False
    provider.delete(created.id, {**props(cid, UAT_RUNNER), **created.outs})
    assert keys(fake_do.rules(cid)) == keys([APP])


def test_delete_removes_only_its_own_rule(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    provider = provider_for(fake_do)
    created = provider.create(props(cid, UAT_RUNNER))
    before = by_key(fake_do.rules(cid))

    provider.delete(created.id, {**props(cid, UAT_RUNNER), **(created.outs or {})})

    after = fake_do.rules(cid)
    assert keys(after) == keys([APP, OFFICE])
    assert all(before[k] == rule for k, rule in by_key(after).items())
    assert puts(fake_do, cid)[-1] == {"rules": [request_shape(APP), request_shape(OFFICE)]}


def test_delete_of_a_rule_already_gone_writes_nothing(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    provider_for(fake_do).delete("x", props(cid, UAT_RUNNER))
    assert puts(fake_do, cid) == []
    assert keys(fake_do.rules(cid)) == keys([APP])


def test_create_refuses_the_first_rule_of_an_open_cluster(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[])
    assert fake_do.is_open(cid)

    with pytest.raises(TrustedSourceError) as err:
        provider_for(fake_do).create(props(cid, UAT_RUNNER))

    message = str(err.value)
    assert cid in message
    assert "adding the first rule would lock out every client that is not listed" in message
    assert "add the baseline rules first" in message
    assert puts(fake_do, cid) == []
    assert fake_do.rules(cid) == [] and fake_do.is_open(cid)  # unchanged: nobody locked out


def test_delete_refuses_to_remove_the_last_rule(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    provider = provider_for(fake_do)
    created = provider.create(props(cid, UAT_RUNNER))
    fake_do.set_rules(cid, [r for r in fake_do.rules(cid) if r["type"] == "droplet"])  # the app's rule went away
    before = fake_do.rules(cid)
    writes = len(puts(fake_do, cid))

    with pytest.raises(TrustedSourceError) as err:
        provider.delete(created.id, {**props(cid, UAT_RUNNER), **(created.outs or {})})

    assert "removing the last rule would open the cluster to every source" in str(err.value)
    assert cid in str(err.value)
    assert len(puts(fake_do, cid)) == writes
    assert fake_do.rules(cid) == before and not fake_do.is_open(cid)


def test_delete_on_a_cluster_that_no_longer_exists_is_done(fake_do: FakeDigitalOcean) -> None:
    provider_for(fake_do).delete("x", props("5d6c7b8a-0000-4000-8000-000000000000", UAT_RUNNER))


def test_create_on_an_unknown_cluster_names_it(fake_do: FakeDigitalOcean) -> None:
    missing = "5d6c7b8a-0000-4000-8000-000000000000"
    with pytest.raises(ClusterNotFoundError, match=f"database cluster {missing}: HTTP 404"):
        provider_for(fake_do).create(props(missing, UAT_RUNNER))


# --- two stacks on one cluster ------------------------------------------------------------------


def test_two_stacks_interleaved_never_remove_each_others_rules(fake_do: FakeDigitalOcean) -> None:
    """uat and staging share production: each adds and removes its runner's rule (and staging a
    second one) in interleaved order; at every step the other's rules and the baseline are there."""
    prod = fake_do.add_cluster(rules=[APP, OFFICE])
    uat, staging = provider_for(fake_do), provider_for(fake_do)
    staging_extra = {"type": "tag", "value": "dbsync-staging", "description": "staging tag"}
    baseline = keys([APP, OFFICE])
    present: dict[str, dict[str, str]] = {}

    def check() -> None:
        assert sorted(keys(fake_do.rules(prod))) == sorted(baseline + keys(list(present.values())))
        assert not fake_do.is_open(prod)

    def create(provider: TrustedSourceProvider, name: str, rule: dict[str, str]) -> None:
        provider.create(props(prod, rule))
        present[name] = rule
        check()

    def delete(provider: TrustedSourceProvider, name: str) -> None:
        provider.delete("x", props(prod, present.pop(name)))
        check()

    create(uat, "uat", UAT_RUNNER)
    create(staging, "staging", STAGING_RUNNER)
    delete(uat, "uat")
    create(uat, "uat", {**UAT_RUNNER, "value": "300000102"})
    create(staging, "staging-tag", staging_extra)
    delete(staging, "staging")
    delete(uat, "uat")
    create(staging, "staging", {**STAGING_RUNNER, "value": "300000203"})
    delete(staging, "staging-tag")
    delete(staging, "staging")
    assert keys(fake_do.rules(prod)) == baseline


class Interleaving:
    """A FirewallApi that runs ``hook`` once, right after its first PUT and before anything else
    reads: another stack's write landing between our PUT and our read-back."""

    def __init__(self, inner: FirewallApi, hook: Callable[[], None]) -> None:
        self.inner = inner
        self.hook: Callable[[], None] | None = hook

    def list_rules(self, cluster_id: str) -> list[Rule]:
        return self.inner.list_rules(cluster_id)

    def replace_rules(self, cluster_id: str, rules: list[Rule]) -> None:
        self.inner.replace_rules(cluster_id, rules)
        hook, self.hook = self.hook, None
        if hook:
            hook()


def test_a_concurrent_stale_write_is_caught_by_the_read_back_and_repaired(fake_do: FakeDigitalOcean) -> None:
    """The API has no compare-and-swap: staging read the list before uat wrote, and PUTs its
    stale list right after uat's PUT, dropping uat's rule. uat's read-back sees its rule missing
    and merges again, keeping staging's rule."""
    prod = fake_do.add_cluster(rules=[APP])
    staging_api = api_for(fake_do)
    stale = staging_api.list_rules(prod)

    def staging_stale_put() -> None:
        staging_api.replace_rules(prod, add_rule(stale, STAGING_RUNNER))

    uat = TrustedSourceProvider(lambda: Interleaving(api_for(fake_do), staging_stale_put), settle_seconds=0)
    uat.create(props(prod, UAT_RUNNER))

    assert sorted(keys(fake_do.rules(prod))) == sorted(keys([APP, UAT_RUNNER, STAGING_RUNNER]))
    assert len(puts(fake_do, prod)) == 3  # uat, staging's stale one, uat's repair


def test_refresh_reports_a_rule_lost_to_another_writer_as_gone(fake_do: FakeDigitalOcean) -> None:
    """The race the API cannot prevent (a stale PUT after our read-back) shows as drift."""
    prod = fake_do.add_cluster(rules=[APP])
    provider = provider_for(fake_do)
    created = provider.create(props(prod, UAT_RUNNER))
    state = {**props(prod, UAT_RUNNER), **(created.outs or {})}

    live = provider.read(created.id, state)
    assert live.id == created.id and live.outs is not None
    assert live.outs["rule_uuid"] == state["rule_uuid"]

    fake_do.set_rules(prod, [APP])  # someone's stale list
    gone = provider.read(created.id, state)
    assert gone.id == "" and gone.outs == {}


def test_read_by_id_alone_imports_the_rule(fake_do: FakeDigitalOcean) -> None:
    prod = fake_do.add_cluster(rules=[APP, {"type": "tag", "value": "k8s:pool-1"}])
    found = provider_for(fake_do).read(f"{prod}:tag:k8s:pool-1", {})
    assert found.id == f"{prod}:tag:k8s:pool-1"
    assert found.outs is not None and found.outs["value"] == "k8s:pool-1"
    assert provider_for(fake_do).read("5d6c7b8a-0000-4000-8000-000000000000:tag:x", {}).id == ""


# --- failures -----------------------------------------------------------------------------------


def test_a_failing_put_surfaces_a_clear_error_and_changes_nothing(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    before = fake_do.rules(cid)
    fake_do.fail_next("PUT", firewall_path(cid), 500, times=10)

    with pytest.raises(TrustedSourceError) as err:
        provider_for(fake_do).create(props(cid, UAT_RUNNER))

    message = str(err.value)
    assert f"replace the trusted sources of database cluster {cid}: HTTP 500" in message
    assert "server_error" in message and "after retries" in message
    assert len(puts(fake_do, cid)) == 3  # pydo's first try and its 2 retries, then it gives up
    assert fake_do.rules(cid) == before


def test_a_single_rate_limit_is_retried(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    fake_do.fail_next("PUT", firewall_path(cid), 429, headers={"Retry-After": "0"})
    provider_for(fake_do).create(props(cid, UAT_RUNNER))
    assert keys(fake_do.rules(cid)) == keys([APP, UAT_RUNNER])
    assert len(puts(fake_do, cid)) == 2 and fake_do.pending_failures() == 0


@pytest.mark.parametrize("operation", ["create", "delete"])
def test_a_put_that_succeeds_without_applying_is_caught_by_the_read_back(
    fake_do: FakeDigitalOcean, operation: str
) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    provider = provider_for(fake_do, attempts=3)
    if operation == "delete":
        provider.create(props(cid, UAT_RUNNER))
    before = fake_do.rules(cid)
    writes = len(puts(fake_do, cid))
    fake_do.fail_next("PUT", firewall_path(cid), 204, times=3)  # "204" and nothing applied

    with pytest.raises(TrustedSourceError) as err:
        getattr(provider, operation)(*([props(cid, UAT_RUNNER)] if operation == "create"
                                       else ["x", props(cid, UAT_RUNNER)]))

    state = "still missing from" if operation == "create" else "still present in"
    assert f"{state} the trusted-source list of database cluster {cid} after 3 verified write(s)" in str(err.value)
    assert len(puts(fake_do, cid)) == writes + 3
    assert fake_do.rules(cid) == before


def test_a_put_dropped_once_is_repaired_by_the_next_round(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    fake_do.fail_next("PUT", firewall_path(cid), 204)
    provider_for(fake_do).create(props(cid, UAT_RUNNER))
    assert keys(fake_do.rules(cid)) == keys([APP, UAT_RUNNER])
    assert len(puts(fake_do, cid)) == 2


def test_a_wrong_token_gives_a_clear_sentence_without_the_token(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    wrong = "dop_v1_" + "f" * 64

    with pytest.raises(TrustedSourceError) as err:
        provider_for(fake_do, token=wrong).create(props(cid, UAT_RUNNER))

    message = str(err.value)
    assert message == (
        f"DigitalOcean refused to list the trusted sources of database cluster {cid}: HTTP 401 "
        "(Unauthorized: Unable to authenticate you). The API token was not accepted: check DIGITALOCEAN_TOKEN."
    )
    shown = "".join(traceback.format_exception(err.value))
    assert wrong not in shown and wrong[:20] not in shown
    assert wrong not in repr(api_for(fake_do, wrong))
    assert fake_do.requests[-1].method == "GET"  # nothing was written
    assert keys(fake_do.rules(cid)) == keys([APP])


def test_an_unreachable_api_is_a_sentence_too(fake_do: FakeDigitalOcean) -> None:
    api = PydoFirewallApi(fake_do.token, "https://127.0.0.1:9", retries=0)
    with pytest.raises(TrustedSourceError, match=r"Could not reach the DigitalOcean API at https://127\.0\.0\.1:9 "
                                                 r"to list the trusted sources of database cluster c1"):
        api.list_rules("c1")


def test_the_token_comes_from_the_environment(fake_do: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    # The fixture set DIGITALOCEAN_TOKEN and DIGITALOCEAN_API_URL to the fake's.
    assert keys(PydoFirewallApi().list_rules(cid)) == keys([APP])
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(TrustedSourceError, match="DIGITALOCEAN_TOKEN is not set"):
        TrustedSourceProvider().create(props(cid, UAT_RUNNER))


def test_the_api_validation_errors_reach_the_user(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP])
    with pytest.raises(TrustedSourceError, match=r"HTTP 422 \(unprocessable_entity: rules\[1\]: IPv6"):
        api_for(fake_do).replace_rules(cid, [APP, {"type": "ip_addr", "value": "2001:db8::1"}])
    missing = "5d6c7b8a-0000-4000-8000-000000000000"
    with pytest.raises(ClusterNotFoundError, match=f"database cluster {missing}: HTTP 404"):
        api_for(fake_do).replace_rules(missing, [APP])
    assert keys(fake_do.rules(cid)) == keys([APP])


# --- update, diff, check ------------------------------------------------------------------------


def test_update_changes_only_the_description_of_its_own_rule(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    provider = provider_for(fake_do)
    created = provider.create(props(cid, UAT_RUNNER))
    olds = {**props(cid, UAT_RUNNER), **(created.outs or {})}
    before = by_key(fake_do.rules(cid))
    news = props(cid, {**UAT_RUNNER, "description": "dbsync runner uat-2"})

    assert provider.diff(created.id, olds, news).replaces == []
    updated = provider.update(created.id, olds, news)

    after = by_key(fake_do.rules(cid))
    mine = ("droplet", UAT_RUNNER["value"])
    assert after[mine]["description"] == "dbsync runner uat-2"
    assert after[mine]["uuid"] == before[mine]["uuid"]
    assert {k: v for k, v in after.items() if k != mine} == {k: v for k, v in before.items() if k != mine}
    assert updated.outs is not None and updated.outs["description"] == "dbsync runner uat-2"


def test_update_leaves_an_adopted_rule_as_its_owner_made_it(fake_do: FakeDigitalOcean) -> None:
    cid = fake_do.add_cluster(rules=[APP, OFFICE])
    provider = provider_for(fake_do)
    created = provider.create(props(cid, {**APP, "description": "dbsync baseline"}))
    olds = {**props(cid, APP), **(created.outs or {})}
    before = fake_do.rules(cid)
    provider.update(created.id, olds, props(cid, {**APP, "description": "renamed"}))
    assert fake_do.rules(cid) == before and puts(fake_do, cid) == []


def test_diff_replaces_on_identity_changes_and_creates_before_deleting() -> None:
    provider = TrustedSourceProvider(lambda: pytest.fail("diff must not call the API"))
    olds = {**props("c1", UAT_RUNNER), "rule_uuid": "u1", "adopted": False}

    same = provider.diff("id", olds, props("c1", UAT_RUNNER))
    assert same.changes is False and same.replaces == []

    for key, value in [("cluster_id", "c2"), ("type", "tag"), ("value", "300000999"), ("value", UNKNOWN)]:
        result = provider.diff("id", olds, {**props("c1", UAT_RUNNER), key: value})
        assert result.changes is True and result.replaces == [key]
        assert result.delete_before_replace is False

    described = provider.diff("id", olds, props("c1", {**UAT_RUNNER, "description": "other"}))
    assert described.changes is True and described.replaces == []


def test_check_reports_invalid_rules_and_accepts_unknowns() -> None:
    provider = TrustedSourceProvider(lambda: pytest.fail("check must not call the API"))

    def failures(**change: Any) -> list[tuple[str, str]]:
        result = provider.check({}, {**props("c1", UAT_RUNNER), **change})
        return [(f.property, f.reason) for f in result.failures]

    assert failures() == []
    assert failures(value=UNKNOWN, cluster_id=UNKNOWN) == []
    assert failures(type="vpc")[0][0] == "type"
    assert "IPv6" in failures(type="ip_addr", value="2001:db8::/64")[0][1]
    assert failures(type="ip_addr", value="10.0.0.0/33")[0][0] == "value"
    assert "droplet id" in failures(value="my-droplet")[0][1]
    assert failures(cluster_id="")[0][0] == "cluster_id"


# --- the pure list logic --------------------------------------------------------------------------


LIVE = [
    {"uuid": "u1", "cluster_uuid": "c", "type": "app", "value": APP["value"], "description": "production app",
     "created_at": "2025-01-01T00:00:00Z"},
    {"uuid": "u2", "cluster_uuid": "c", "type": "ip_addr", "value": "10.20.0.0/24", "created_at": "2025-01-01T00:00:00Z"},
]


def test_add_rule_appends_keeps_the_others_and_is_idempotent() -> None:
    added = add_rule(LIVE, UAT_RUNNER)
    assert added == [request_shape(APP), request_shape(OFFICE), request_shape(UAT_RUNNER)]
    assert add_rule(added, UAT_RUNNER) == added
    assert add_rule(added, {**UAT_RUNNER, "description": "another"}) == added  # an existing rule is left as is
    assert add_rule(LIVE, {"type": "app", "value": APP["value"]}) == [request_shape(APP), request_shape(OFFICE)]


def test_add_rule_refuses_an_empty_list_and_a_full_one() -> None:
    with pytest.raises(TrustedSourceError, match="adding the first rule would lock out every client that is not "
                                                 "listed; add the baseline rules first"):
        add_rule([], UAT_RUNNER, cluster="c9")
    full = [{"type": "ip_addr", "value": f"10.0.{i // 250}.{i % 250}"} for i in range(MAX_RULES)]
    with pytest.raises(TrustedSourceError, match="already has 100 rules"):
        add_rule(full, UAT_RUNNER)
    assert add_rule(full, full[7]) == full  # already there: nothing to add


def test_remove_rule_removes_only_its_own_and_refuses_the_last() -> None:
    with_mine = [*LIVE, {"uuid": "u3", "type": "droplet", "value": UAT_RUNNER["value"]}]
    assert remove_rule(with_mine, UAT_RUNNER) == [request_shape(APP), request_shape(OFFICE)]
    assert remove_rule(LIVE, UAT_RUNNER) == [request_shape(APP), request_shape(OFFICE)]  # absent: unchanged
    # Matched by (type, value) only: a droplet rule does not remove a tag rule of the same value.
    assert remove_rule(LIVE, {"type": "tag", "value": "10.20.0.0/24"}) == [request_shape(APP), request_shape(OFFICE)]
    with pytest.raises(TrustedSourceError, match="removing the last rule would open the cluster to every source"):
        remove_rule([LIVE[0]], APP, cluster="c9")
    assert remove_rule([], UAT_RUNNER) == []  # nothing to remove: nothing written, nothing refused


# --- as a Pulumi resource -----------------------------------------------------------------------


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return "rule-id", {**args.inputs, "rule_uuid": "u-1", "adopted": False}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def test_the_resource_registers_exactly_the_documented_props(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy pack and the program's mock tests rely on these names (Python names: a dynamic
    resource has no schema to camelCase them). The token is nowhere in the registration."""
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="dbsync", stack="uat", preview=False)
    token = "dop_v1_" + "a" * 64
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", token)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        droplet_id = pulumi.Output.from_input(300000101).apply(str)
        rule = TrustedSource("prod-runner", TrustedSourceArgs(
            cluster_id="5d6c7b8a-0000-4000-8000-000000000001", type="droplet", value=droplet_id,
            description="dbsync runner run-1"))
        return pulumi.Output.all(rule.value, rule.rule_uuid)

    program()
    [args] = mocks.resources
    assert args.typ == "pulumi-python:dynamic/dbsync:TrustedSource"
    assert set(args.inputs) == {"cluster_id", "type", "value", "description", "__provider"}
    assert {k: v for k, v in args.inputs.items() if k != "__provider"} == {
        "cluster_id": "5d6c7b8a-0000-4000-8000-000000000001", "type": "droplet", "value": "300000101",
        "description": "dbsync runner run-1"}
    assert token not in repr(args.inputs)


def test_the_resource_refuses_invalid_plain_values_when_declared() -> None:
    with pytest.raises(TrustedSourceError, match="IPv6"):
        TrustedSource("bad", TrustedSourceArgs(cluster_id="c", type="ip_addr", value="2001:db8::1"))
    with pytest.raises(TrustedSourceError, match="type must be one of"):
        TrustedSource("bad", TrustedSourceArgs(cluster_id="c", type="vpc", value="x"))


def test_the_pickled_provider_holds_no_token_and_works_in_a_fresh_process(fake_do: FakeDigitalOcean) -> None:
    """Pulumi pickles the provider into state and unpickles it in its dynamic-provider host, a
    separate process: the pickle must hold no token, and must work there with the token taken
    from that process's environment (and the repository root importable, as the host needs)."""
    cid = fake_do.add_cluster(rules=[APP])
    pickled = serialize_provider(TrustedSourceProvider())
    assert fake_do.token.encode() not in base64.b64decode(pickled)

    script = textwrap.dedent(f"""
        import base64, dill
        provider = dill.loads(base64.b64decode({pickled!r}))
        result = provider.create({{"cluster_id": {cid!r}, "type": "droplet", "value": "300000101",
                                   "description": "from the host"}})
        print(result.id)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the fixture's DIGITALOCEAN_* point at the fake
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "infra", env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{cid}:droplet:300000101"
    assert keys(fake_do.rules(cid)) == [("app", APP["value"]), ("droplet", "300000101")]
