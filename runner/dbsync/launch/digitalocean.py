"""The launcher's DigitalOcean API side: preflight checks before a run, the reaper after one.

``dbsync run --stack uat`` provisions a short-lived runner droplet with Pulumi. Before Pulumi
spends minutes creating anything, :func:`preflight` proves what can be proven cheaply: the token
works, both database clusters exist under the names given, they are two different clusters,
online, PostgreSQL. After a run (and at the start of every later one), :func:`reap` removes what
failed runs left behind: runner droplets whose ``expires-<unix seconds>`` tag is in the past, or
all droplets of one run when its Pulumi teardown failed, together with their trusted-source rules.

Every runner droplet carries the tags ``dbsync-runner``, ``stack-<stack>``, ``run-<run id>`` and
``expires-<unix seconds>``, and each run adds the rule ``{"type": "droplet", "value": "<id>"}``
(description ``dbsync runner <run id>``) to the source and the target cluster.

Why these rules for the reaper:

* a listing that fails raises and nothing is removed: acting on half a list could leave the
  other half unnoticed, and "nothing to do" must never be concluded from an error;
* a droplet without an ``expires-`` tag has an unknown age: it may belong to a run that is still
  going, so it is left alone and reported, never guessed at;
* a droplet's rules go BEFORE the droplet: the reaper finds rules through the droplets' ids, so
  once a droplet is gone nothing would lead back to a rule that was not removed. When a rule
  cannot be removed (an API failure), its droplet is kept for a later reap to retry;
* the LAST rule of a cluster is never removed: an empty trusted-source list accepts connections
  from ANY source (see ``infra/trusted_source.py``). Such a rule is left and reported; its droplet
  is still destroyed, after which the rule admits nothing and the cluster stays closed.

The trusted-source calls reuse ``infra.trusted_source``: its pydo client (which handles pydo's
quirk of RETURNING DigitalOcean's 404 body instead of raising) and its pure ``remove_rule``, which
refuses to empty a list. So this module needs the ``[infra]`` extra (pydo, pulumi), as the
launcher does anyway. The token never appears in any message: it is replaced before a message
leaves this module and registered with :mod:`dbsync.redact` for everything printed later.
"""

from __future__ import annotations

import functools
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from infra.trusted_source import (
    DEFAULT_ENDPOINT,
    ENDPOINT_ENV,
    TOKEN_ENV,
    ClusterNotFoundError,
    PydoFirewallApi,
    Rule,
    TrustedSourceError,
    find_rule,
    http_error_sentence,
    remove_rule,
    rule_key,
)

from ..errors import DbsyncError, SameDatabase
from ..redact import remember_secret

RUNNER_TAG = "dbsync-runner"
STACK_TAG_PREFIX = "stack-"
RUN_TAG_PREFIX = "run-"
EXPIRES_TAG_PREFIX = "expires-"
_EXPIRES = re.compile(r"^expires-(\d{1,12})$")
# The most the API returns per page; fewer requests, same result.
MAX_PER_PAGE = 200
# A bound on pages when the API reports no total: never page forever.
MAX_PAGES = 10_000
# A listing whose pages disagree with its own total (droplets created or destroyed while we
# paged) is read again from the start, at most this many times, before giving up.
LISTING_ROUNDS = 3
_T = TypeVar("_T")


class CloudError(DbsyncError):
    """The DigitalOcean API refused a request, failed, or answered something unexpected.

    The message is a sentence naming what was attempted (the cluster, the droplet) and the HTTP
    status; never the token.
    """

    exit_code = 8
    kind = "cloud"


class CloudNotFound(CloudError):
    """The database cluster (or droplet) asked for does not exist (HTTP 404)."""


# --- the API ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRemoval:
    """What :meth:`DigitalOcean.remove_firewall_rules` did on one cluster.

    ``removed``: rules that were there and are verified gone. ``absent``: rules that were not
    there (nothing to do). ``kept_last``: rules left because removing them would have emptied the
    list, i.e. opened the cluster; ``sentences`` says so for people.
    """

    cluster_id: str
    removed: tuple[tuple[str, str], ...] = ()
    absent: tuple[tuple[str, str], ...] = ()
    kept_last: tuple[tuple[str, str], ...] = ()
    sentences: tuple[str, ...] = ()


class DigitalOcean:
    """Thin, checked methods over pydo for the launcher.

    ``endpoint`` defaults to ``$DIGITALOCEAN_API_URL``, else the public API (as in
    ``infra/trusted_source.py`` and the pulumi-digitalocean provider). pydo (azure-core) retries
    408, 429 and 5xx ``retries`` times with exponential backoff; every call that still fails
    raises :class:`CloudError`. A pydo client is made per call, as in ``PydoFirewallApi``: no
    session outlives an operation. ``per_page`` bounds droplet list pages; ``attempts`` and
    ``settle_seconds`` bound the verified rule writes (a PUT the API accepted may not show at
    once, or another writer may replace the list between our read and our write).
    ``client_options`` go to ``pydo.Client`` (for example ``connection_verify=CA_FILE``).
    """

    def __init__(
        self,
        token: str,
        endpoint: str | None = None,
        *,
        retries: int = 3,
        backoff_seconds: float = 0.8,
        timeout_seconds: int = 60,
        per_page: int = MAX_PER_PAGE,
        attempts: int = 3,
        settle_seconds: float = 2.0,
        **client_options: Any,
    ) -> None:
        if not token:
            raise CloudError(f"No DigitalOcean API token was given: set {TOKEN_ENV}.")
        remember_secret(token)
        self._token = token
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
        self._options: dict[str, Any] = {
            "retry_total": retries,
            "retry_backoff_factor": backoff_seconds,
            "timeout": timeout_seconds,
            **client_options,
        }
        self._per_page = max(1, min(per_page, MAX_PER_PAGE))
        self._attempts = max(1, attempts)
        self._settle_seconds = settle_seconds
        self._firewall = PydoFirewallApi(
            token,
            self.endpoint,
            retries=retries,
            backoff_seconds=backoff_seconds,
            timeout_seconds=timeout_seconds,
            **client_options,
        )

    def __repr__(self) -> str:
        return f"DigitalOcean(endpoint={self.endpoint!r})"

    # -- account and clusters ------------------------------------------------------------------

    def check_token(self) -> dict[str, Any]:
        """The account the token belongs to (``GET /v2/account``); a refused token raises.

        Called first so that a wrong or expired token is one clear sentence, not the first
        failure of some later call."""
        result = self._call("read the account of the API token", lambda c: c.account.get())
        account = result.get("account") if isinstance(result, Mapping) else None
        if not isinstance(account, Mapping):
            raise self._unexpected("read the account of the API token", result)
        return dict(account)

    def find_cluster(self, name_or_id: str) -> dict[str, Any]:
        """The database cluster with this uuid, or else with exactly this name.

        A uuid is looked up directly. A name must match exactly one cluster: names are unique
        per account today, but a second match would mean we cannot tell which one is meant, and
        guessing between production clusters is not acceptable."""
        wanted = name_or_id.strip()
        if not wanted:
            raise CloudError("A database cluster name or id is required, and an empty one was given.")
        if _is_uuid(wanted):
            action = f"read database cluster {wanted}"
            result = self._call(action, lambda c: c.databases.get_cluster(wanted))
            if _is_not_found(result):  # pydo returns the 404 body instead of raising
                raise CloudNotFound(
                    f"There is no database cluster with id {wanted} in this DigitalOcean account (HTTP 404)."
                )
            cluster = result.get("database") if isinstance(result, Mapping) else None
            if not isinstance(cluster, Mapping):
                raise self._unexpected(action, result)
            return dict(cluster)
        clusters = self.clusters()
        matches = [c for c in clusters if c.get("name") == wanted]
        if not matches:
            known = ", ".join(sorted(str(c.get("name")) for c in clusters)) or "none"
            raise CloudNotFound(
                f"There is no database cluster named {wanted!r} in this DigitalOcean account "
                f"(clusters: {known})."
            )
        if len(matches) > 1:
            ids = ", ".join(str(c.get("id")) for c in matches)
            raise CloudError(
                f"The database cluster name {wanted!r} is ambiguous: {len(matches)} clusters "
                f"have it ({ids}); give the cluster's id instead."
            )
        return matches[0]

    def clusters(self) -> list[dict[str, Any]]:
        """Every database cluster of the account (the API does not paginate this list)."""
        action = "list the database clusters"
        result = self._call(action, lambda c: c.databases.list_clusters())
        if _is_not_found(result):
            raise self._unexpected(action, result)
        databases = result.get("databases", ()) if isinstance(result, Mapping) else None
        if databases is None:  # an account without clusters may answer null
            return []
        if not isinstance(databases, list) or not all(isinstance(c, Mapping) for c in databases):
            raise self._unexpected(action, result)
        return [dict(c) for c in databases]

    # -- droplets ------------------------------------------------------------------------------

    def droplets(self, tag: str) -> list[dict[str, Any]]:
        """Every droplet with this tag, all pages, or :class:`CloudError`: never a partial list.

        The reaper decides from this list what to destroy and what to keep, so a page that fails
        fails the whole listing. Pages follow ``links.pages.next``; the result must add up to the
        API's ``meta.total``, else (droplets came or went while we paged, shifting the pages) the
        listing is read again from the start."""
        action = f"list the droplets tagged {tag}"
        seen_total: int | None = None
        for _round in range(LISTING_ROUNDS):
            found: dict[int, dict[str, Any]] = {}
            page, pages_read, total = 1, 0, None
            while True:
                result = self._call(
                    action,
                    functools.partial(_list_droplets_page, tag=tag, per_page=self._per_page, page=page),
                )
                droplets = result.get("droplets") if isinstance(result, Mapping) else None
                if not isinstance(droplets, list) or not all(isinstance(d, Mapping) for d in droplets):
                    raise self._unexpected(action, result)
                for droplet in droplets:
                    found[_droplet_id(droplet)] = dict(droplet)
                pages_read += 1
                total = _meta_total(result)
                following = _next_page(result, page)
                if following is None:
                    break
                if pages_read > (total // self._per_page + 2 if total is not None else MAX_PAGES):
                    raise CloudError(
                        f"Could not {action}: the API kept announcing further pages beyond "
                        f"the {total} droplets it reported."
                    )
                page = following
            if total is None or total == len(found):
                return sorted(found.values(), key=_droplet_id)
            seen_total = total
        raise CloudError(
            f"Could not {action}: the pages listed {len(found)} droplets while the API "
            f"reported {seen_total}, {LISTING_ROUNDS} times; droplets are being created or "
            "destroyed meanwhile. Run again."
        )

    def destroy_droplet(self, droplet_id: int) -> bool:
        """Destroy one droplet: True when destroyed, False when it did not exist (HTTP 404)."""
        action = f"destroy droplet {droplet_id}"
        result = self._call(action, lambda c: c.droplets.destroy(int(droplet_id)))
        if result is None:  # 204
            return True
        if _is_not_found(result):  # pydo returns the 404 body instead of raising
            return False
        raise self._unexpected(action, result)

    def destroy_by_tag(self, tag: str) -> None:
        """Destroy every droplet carrying ``tag`` (``DELETE /v2/droplets?tag_name=``).

        Blunt by design: it does not remove trusted-source rules first. :func:`reap` destroys
        droplet by droplet after their rules; this is for tags that no rule refers to."""
        if not tag.strip():
            raise CloudError("Refusing to destroy droplets by an empty tag.")
        action = f"destroy the droplets tagged {tag}"
        result = self._call(action, lambda c: c.droplets.destroy_by_tag(tag_name=tag))
        if result is not None and not _is_not_found(result):
            raise self._unexpected(action, result)

    # -- trusted sources -----------------------------------------------------------------------

    def firewall_rules(self, cluster_id: str) -> list[Rule]:
        """The cluster's trusted sources as the API lists them (type, value, uuid, description)."""
        return self._firewall_call(lambda: self._firewall.list_rules(cluster_id))

    def remove_firewall_rule(self, cluster_id: str, type: str, value: str) -> RuleRemoval:
        """Remove the one rule ``(type, value)`` from the cluster, leaving every other rule.

        See :meth:`remove_firewall_rules`; the last rule of a cluster is never removed."""
        return self.remove_firewall_rules(cluster_id, [{"type": type, "value": value}])

    def remove_firewall_rules(self, cluster_id: str, rules: Iterable[Mapping[str, Any]]) -> RuleRemoval:
        """Remove these rules (by type and value) from the cluster in one verified write.

        Read-merge-write, as the API only replaces whole lists: read the list, drop our rules
        with ``infra.trusted_source.remove_rule`` (which refuses to drop the last rule: an empty
        list opens the cluster to every source), PUT, read back. A write that does not show (not
        applied yet, or overwritten by another writer between our read and our write) is retried
        from a fresh read, ``attempts`` times; then :class:`CloudError`. A rule that would be the
        last is left in place and reported in the result, not raised: the caller decides."""
        keys = list(dict.fromkeys(rule_key(r) for r in rules))
        current = self.firewall_rules(cluster_id)
        targets = [k for k in keys if _has(current, k)]
        kept: dict[tuple[str, str], str] = {}

        def plan(rules_now: list[Rule]) -> tuple[list[Rule], list[tuple[str, str]]]:
            """The list to PUT and the rules it removes; a rule that would be the last moves to
            ``kept`` (remove_rule refuses it) and stays."""
            remaining: list[Rule] = [dict(r) for r in rules_now]
            pending: list[tuple[str, str]] = []
            for key in targets:
                if key in kept or not _has(remaining, key):
                    continue
                try:
                    remaining = remove_rule(remaining, {"type": key[0], "value": key[1]}, cluster=cluster_id)
                except TrustedSourceError as exc:
                    kept[key] = str(exc)
                    continue
                pending.append(key)
            return remaining, pending

        remaining, pending = plan(current)
        writes = 0
        while pending:
            if writes == self._attempts:
                listed = ", ".join(f"{t} {v}" for t, v in pending)
                raise CloudError(
                    f"Trusted source(s) {listed} still present on database cluster {cluster_id} after "
                    f"{writes} verified write(s) that the API accepted: the change did not apply, or "
                    "another writer replaced the list at the same time."
                )
            if writes:  # the last write did not show: wait, look again, then write again
                time.sleep(self._settle_seconds)
                remaining, pending = plan(self.firewall_rules(cluster_id))
                if not pending:
                    break
            self._firewall_call(functools.partial(self._firewall.replace_rules, cluster_id, remaining))
            writes += 1
            remaining, pending = plan(self.firewall_rules(cluster_id))
        return RuleRemoval(
            cluster_id=cluster_id,
            removed=tuple(k for k in targets if k not in kept),
            absent=tuple(k for k in keys if k not in targets),
            kept_last=tuple(kept),
            sentences=tuple(kept.values()),
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _client(self) -> Any:
        import pydo

        return pydo.Client(self._token, endpoint=self.endpoint, **self._options)

    def _call(self, action: str, call: Callable[[Any], Any]) -> Any:
        """Run one pydo call; every failure becomes a :class:`CloudError` sentence without the token."""
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

        try:
            with self._client() as client:
                return call(client)
        except ClientAuthenticationError:
            raise CloudError(
                f"The DigitalOcean token was refused (HTTP 401) when trying to {action}: it is wrong, "
                f"expired or revoked; check {TOKEN_ENV}."
            ) from None
        except HttpResponseError as exc:
            raise CloudError(self._redact(http_error_sentence(action, exc))) from None
        except AzureError as exc:
            raise CloudError(
                self._redact(
                    f"Could not reach the DigitalOcean API at {self.endpoint} to {action}: {exc.message}"
                )
            ) from None

    def _firewall_call(self, call: Callable[[], _T]) -> _T:
        """A ``PydoFirewallApi`` call, its errors (already token-free sentences) as CloudError."""
        try:
            return call()
        except ClusterNotFoundError as exc:
            raise CloudNotFound(self._redact(str(exc))) from None
        except TrustedSourceError as exc:
            text = str(exc)
            if "HTTP 401" in text:
                text = f"The DigitalOcean token was refused: {text}"
            raise CloudError(self._redact(text)) from None

    def _unexpected(self, action: str, result: Any) -> CloudError:
        if isinstance(result, Mapping) and result.get("id"):
            detail = f"{result.get('id')}: {result.get('message', '')}"
        else:
            detail = f"unexpected response {str(result)[:300]}"
        return CloudError(self._redact(f"Could not {action}: {detail}."))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]")


def _list_droplets_page(client: Any, *, tag: str, per_page: int, page: int) -> Any:
    return client.droplets.list(tag_name=tag, per_page=per_page, page=page)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def _is_not_found(result: Any) -> bool:
    return isinstance(result, Mapping) and result.get("id") == "not_found"


def _has(rules: Sequence[Mapping[str, Any]], key: tuple[str, str]) -> bool:
    return find_rule(rules, {"type": key[0], "value": key[1]}) is not None


def _droplet_id(droplet: Mapping[str, Any]) -> int:
    value = droplet.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise CloudError(f"The DigitalOcean API listed a droplet without a valid id: {value!r}.")
    return int(value)


def _meta_total(result: Mapping[str, Any]) -> int | None:
    meta = result.get("meta")
    total = meta.get("total") if isinstance(meta, Mapping) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _next_page(result: Mapping[str, Any], page: int) -> int | None:
    """The page number ``links.pages.next`` points to, or None on the last page."""
    links = result.get("links")
    pages = links.get("pages") if isinstance(links, Mapping) else None
    following = pages.get("next") if isinstance(pages, Mapping) else None
    if not following:
        return None
    numbers = parse_qs(urlsplit(str(following)).query).get("page", [])
    number = int(numbers[-1]) if numbers and numbers[-1].isdigit() else page + 1
    if number <= page:
        raise CloudError(
            f"The DigitalOcean API's droplet listing points from page {page} back to page "
            f"{number}; refusing to page in circles."
        )
    return number


# --- preflight ----------------------------------------------------------------------------------


def cluster_problem(cluster: Mapping[str, Any]) -> str | None:
    """Why a run cannot use this cluster (not online, not PostgreSQL), or None."""
    name = cluster.get("name") or cluster.get("id")
    if cluster.get("engine") != "pg":
        return f"database cluster {name} runs {cluster.get('engine')!r}, not PostgreSQL (pg)"
    if cluster.get("status") != "online":
        return f"database cluster {name} is {cluster.get('status')!r}, not online"
    return None


def cluster_summary(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """What the launcher needs to know of a cluster: never its passwords or connection URIs."""
    private = cluster.get("private_connection")
    private = private if isinstance(private, Mapping) else {}
    return {
        "id": cluster.get("id"),
        "name": cluster.get("name"),
        "engine": cluster.get("engine"),
        "version": cluster.get("version"),
        "region": cluster.get("region"),
        "private_network_uuid": cluster.get("private_network_uuid"),
        "private_host": private.get("host"),
        "private_port": private.get("port"),
    }


def preflight(do: DigitalOcean, source: str, target: str) -> dict[str, dict[str, Any]]:
    """Check what the run needs from DigitalOcean before anything is provisioned.

    The token works; ``source`` and ``target`` (names or ids) each name exactly one cluster;
    they are NOT the same cluster (however named: the uuids decide); both are online PostgreSQL.
    Returns ``{"source": {...}, "target": {...}}`` with id, name, version, region, VPC and the
    private host and port (see :func:`cluster_summary`), without any secret."""
    do.check_token()
    found = {"source": do.find_cluster(source), "target": do.find_cluster(target)}
    if found["source"].get("id") == found["target"].get("id"):
        raise SameDatabase(
            f"Refusing to run: source {source!r} and target {target!r} are the same database cluster "
            f"({found['source'].get('name')}, id {found['source'].get('id')}); a sync would overwrite "
            "the source with itself."
        )
    problems = [
        f"{role}: {problem}"
        for role, cluster in found.items()
        if (problem := cluster_problem(cluster)) is not None
    ]
    if problems:
        raise CloudError("The database clusters cannot be used: " + "; ".join(problems) + ".")
    return {role: cluster_summary(cluster) for role, cluster in found.items()}


# --- the reaper ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemovedRule:
    """One trusted-source rule the reaper removed (verified gone)."""

    cluster_id: str
    type: str
    value: str


@dataclass
class ReapReport:
    """What :func:`reap` did.

    ``reaped``: ids of droplets destroyed (or already gone). ``rules_removed``: their rules,
    verified gone. ``left_behind``: one sentence per thing that could not be removed, and why
    (a droplet of unknown age, a last rule, an API failure). ``live``: runner droplets not yet
    expired, left running. ``notes``: anything else worth saying.

    ``bool(report)`` is :attr:`clean`: True when nothing was left behind.
    """

    reaped: list[int] = field(default_factory=list)
    rules_removed: list[RemovedRule] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.left_behind

    @property
    def changed(self) -> bool:
        return bool(self.reaped or self.rules_removed)

    def __bool__(self) -> bool:
        return self.clean

    def to_json(self) -> dict[str, Any]:
        return {
            "reaped": list(self.reaped),
            "rules_removed": [
                {"cluster_id": r.cluster_id, "type": r.type, "value": r.value} for r in self.rules_removed
            ],
            "left_behind": list(self.left_behind),
            "live": list(self.live),
            "notes": list(self.notes),
        }


def expires_at(tags: Iterable[str]) -> float | None:
    """The droplet's expiry from its ``expires-<unix seconds>`` tag; None when it has none.

    With several (a tag added by hand to extend a run), the latest wins: reaping later than
    meant costs money, reaping earlier could kill a run in progress."""
    times = [float(m.group(1)) for tag in tags if (m := _EXPIRES.match(tag))]
    return max(times) if times else None


def _describe(droplet: Mapping[str, Any]) -> str:
    return f"droplet {droplet.get('id')} ({droplet.get('name')})"


def reap(
    do: DigitalOcean,
    *,
    now: float,
    cluster_ids: list[str],
    stack: str | None = None,
    run_id: str | None = None,
) -> ReapReport:
    """Destroy expired runner droplets (or one run's) and their trusted-source rules first.

    Selects droplets tagged ``dbsync-runner`` (and ``stack-<stack>`` / ``run-<run_id>`` when
    given). Without ``run_id``: those whose ``expires-`` tag is at or before ``now``; a droplet
    without one is left and reported. With ``run_id`` (the fallback after a failed teardown):
    all of that run's droplets, expired or not. For each selected droplet, the rule
    ``droplet <id>`` is removed from every cluster in ``cluster_ids``, then the droplet is
    destroyed; a droplet whose rule could not be removed is kept (see the module doc).

    A failed listing raises :class:`CloudError` before anything is removed.
    """
    report = ReapReport()
    listed = do.droplets(RUNNER_TAG)  # raises: never act on a partial view
    selected: list[dict[str, Any]] = []
    for droplet in listed:
        tags = {str(t) for t in droplet.get("tags") or ()}
        if RUNNER_TAG not in tags:
            continue
        if stack is not None and f"{STACK_TAG_PREFIX}{stack}" not in tags:
            continue
        if run_id is not None:
            if f"{RUN_TAG_PREFIX}{run_id}" in tags:
                selected.append(droplet)
            continue
        expiry = expires_at(tags)
        if expiry is None:
            report.left_behind.append(
                f"Runner {_describe(droplet)} has no expires-<unix seconds> tag, so its age is unknown "
                "and it may belong to a run in progress: it was left alone. Destroy it by hand (after "
                "removing its trusted-source rules) if it is not in use."
            )
        elif expiry > now:
            report.live.append(_droplet_id(droplet))
        else:
            selected.append(droplet)
    if not selected:
        return report

    ids = [_droplet_id(d) for d in selected]
    blocked: dict[int, list[str]] = {i: [] for i in ids}
    for cluster_id in dict.fromkeys(cluster_ids):
        wanted = [{"type": "droplet", "value": str(i)} for i in ids]
        try:
            removal = do.remove_firewall_rules(cluster_id, wanted)
        except CloudError as exc:
            if isinstance(exc, CloudNotFound):
                report.notes.append(
                    f"Database cluster {cluster_id} does not exist (any more), so it has "
                    "no runner rules to remove."
                )
                continue
            for i in ids:
                blocked[i].append(str(exc))
            continue
        report.rules_removed += [RemovedRule(cluster_id, t, v) for t, v in removal.removed]
        for (rule_type, value), why in zip(removal.kept_last, removal.sentences, strict=True):
            report.left_behind.append(
                f"Trusted source {rule_type} {value} was left on database cluster {cluster_id}: it is the "
                "cluster's last rule, and removing it would open the cluster to every source. Its droplet "
                "is destroyed, so the rule admits nothing; add the cluster's own rules, then remove it. "
                f"({why})"
            )

    for droplet in selected:
        droplet_id = _droplet_id(droplet)
        if blocked[droplet_id]:
            report.left_behind.append(
                f"Runner {_describe(droplet)} was NOT destroyed because its trusted-source rule could not "
                f"be removed first (destroying it would leave the rule with nothing to find it by); a later "
                f"reap retries. {' '.join(blocked[droplet_id])}"
            )
            continue
        try:
            existed = do.destroy_droplet(droplet_id)
        except CloudError as exc:
            report.left_behind.append(f"Runner {_describe(droplet)} could not be destroyed: {exc}")
            continue
        report.reaped.append(droplet_id)
        if not existed:
            report.notes.append(f"Runner {_describe(droplet)} was already gone.")
    return report
