"""One database trusted-source rule as its own Pulumi resource.

Why not ``digitalocean.DatabaseFirewall``: it owns a cluster's WHOLE rule list. Its create and
update PUT its rules and so remove every other rule, its refresh reports other rules as drift,
and its delete PUTs an empty list. The DigitalOcean API has no per-rule call either:
``PUT /v2/databases/{uuid}/firewall`` replaces the whole list, and there is no get-one or patch
(terraform-provider-digitalocean #1005 asks for a per-rule resource). Two stacks (uat and
staging) share the production cluster, so a resource that owns the list would remove the other
stack's rules, and the production application's own.

And an EMPTY list does not mean "nobody": a cluster without trusted sources accepts connections
from ANY source. So removing the last rule opens the cluster to the internet, and adding a first
rule to an open cluster locks out every client that is not listed.

So each :class:`TrustedSource` manages exactly one rule, identified by ``(type, value)``, by
read-merge-write (what ``doctl databases firewalls append`` does on the client side):

* create reads the list, adds its rule (never removing another one), PUTs the list and reads it
  back to VERIFY that its rule is there, retrying the whole read-merge-write a few times (another
  writer may have replaced the list between our GET and PUT);
* delete reads, removes only its own rule, PUTs and verifies that it is gone;
* both REFUSE what would change who may connect beyond their own rule: adding to an empty list
  (it would lock everybody else out) and removing the last rule (it would open the cluster);
* a rule that already existed before create (another stack's, or the production application's
  own, declared in both stacks' baselines) is ADOPTED: the resource records ``adopted=True`` and
  its delete leaves that rule in place, because deleting must restore what was there before.
  An existing rule with exactly our (non-empty) description is taken as ours instead, left by an
  earlier create that failed after its PUT applied; so descriptions must differ between stacks
  (the program's default baseline description names the stack);
* read (``pulumi refresh``) reports the resource gone when its rule no longer exists (drift);
* changing cluster_id, type or value replaces the resource, creating the new rule BEFORE the old
  one is deleted, so the list never passes through an empty state.

What remains unsafe and cannot be fixed client-side: the API has no compare-and-swap, so two
writers that read the same list and PUT different ones within the same instant lose one rule.
Rules written by this provider within one process are serialised per cluster (Pulumi runs
resource operations in parallel threads); the verification catches the lost rule when the other
write lands before our read-back, and retries. Runs of the two stacks should still not overlap.

The API token is read from ``DIGITALOCEAN_TOKEN`` by the provider process when it runs an
operation, never passed as an input: Pulumi stores inputs (and the pickled provider) in state.
``DIGITALOCEAN_API_URL`` overrides the endpoint, as for the pulumi-digitalocean provider.

The pickled provider is unpickled by Pulumi's dynamic-provider host, a separate Python process:
this module must be importable there under the same name (``infra.trusted_source``), i.e. the
repository root on its ``sys.path`` (``PYTHONPATH``) or the package installed (pulumi/pulumi#7960).
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
from pulumi import dynamic

DEFAULT_ENDPOINT = "https://api.digitalocean.com"
TOKEN_ENV = "DIGITALOCEAN_TOKEN"
ENDPOINT_ENV = "DIGITALOCEAN_API_URL"
RULE_TYPES = ("ip_addr", "droplet", "k8s", "tag", "app")
MAX_RULES = 100
KEY_PROPS = ("cluster_id", "type", "value")
# What Pulumi passes for a value not known yet (preview): pulumi.runtime.rpc.UNKNOWN.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Rule = dict[str, Any]


class TrustedSourceError(Exception):
    """A trusted-source operation failed or was refused; the message is a sentence for people."""


class ClusterNotFoundError(TrustedSourceError):
    """The database cluster does not exist (HTTP 404)."""


# --- the API ------------------------------------------------------------------------------------


class FirewallApi(Protocol):
    """The two calls the API offers for a cluster's trusted sources: read all, replace all."""

    def list_rules(self, cluster_id: str) -> list[Rule]:
        """The cluster's rules as the API lists them (type, value, uuid, description, ...)."""
        ...

    def replace_rules(self, cluster_id: str, rules: list[Rule]) -> None:
        """Replace the cluster's WHOLE rule list with ``rules`` ({type, value, description?})."""
        ...


class PydoFirewallApi:
    """:class:`FirewallApi` over pydo, DigitalOcean's official client.

    The token defaults to ``$DIGITALOCEAN_TOKEN`` and the endpoint to ``$DIGITALOCEAN_API_URL``
    or the public API. Every error comes out as :class:`TrustedSourceError` naming the cluster
    and the HTTP status, never the token. pydo (through azure-core) retries 408, 429, 500, 502,
    503 and 504 ``retries`` times with exponential backoff: a full-list PUT is idempotent.

    Two pydo traps are handled here: ``list_firewall_rules`` and ``update_firewall_rules``
    do NOT raise on 404, they return DigitalOcean's error body instead of the result; and pydo's
    bearer-token policy refuses plain-HTTP endpoints (the test fake speaks HTTPS).
    ``client_options`` go to ``pydo.Client`` (for example ``connection_verify=CA_FILE``).
    """

    def __init__(
        self,
        token: str | None = None,
        endpoint: str | None = None,
        *,
        retries: int = 3,
        backoff_seconds: float = 0.8,
        timeout_seconds: int = 60,
        **client_options: Any,
    ) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if not token:
            raise TrustedSourceError(
                f"{TOKEN_ENV} is not set: the trusted-source provider needs a DigitalOcean API token "
                "in the environment of the Pulumi run (it is never taken from resource inputs)."
            )
        self._token = token
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
        self._options: dict[str, Any] = {
            "retry_total": retries,
            "retry_backoff_factor": backoff_seconds,
            "timeout": timeout_seconds,
            **client_options,
        }

    def __repr__(self) -> str:
        return f"PydoFirewallApi(endpoint={self.endpoint!r})"

    def _client(self) -> Any:
        import pydo

        # A client per call: nothing (no session, no token) outlives the operation.
        return pydo.Client(self._token, endpoint=self.endpoint, **self._options)

    def list_rules(self, cluster_id: str) -> list[Rule]:
        action = "list the trusted sources of"
        result = self._call(action, cluster_id, lambda c: c.databases.list_firewall_rules(cluster_id))
        if isinstance(result, Mapping) and "rules" in result:
            rules = result["rules"]
            if rules is None:  # an empty list may come back as null
                return []
            if isinstance(rules, list) and all(isinstance(r, Mapping) for r in rules):
                return [dict(r) for r in rules]
        raise self._unexpected(action, cluster_id, result)

    def replace_rules(self, cluster_id: str, rules: list[Rule]) -> None:
        action = "replace the trusted sources of"
        body = {"rules": [request_shape(r) for r in rules]}
        result = self._call(
            action, cluster_id, lambda c: c.databases.update_firewall_rules(cluster_id, body=body)
        )
        if result is not None:  # 204 has no body; a 404 comes back as its error body
            raise self._unexpected(action, cluster_id, result)

    def _call(self, action: str, cluster_id: str, call: Callable[[Any], Any]) -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            with self._client() as client:
                return call(client)
        except HttpResponseError as exc:
            sentence = http_error_sentence(
                f"{action} database cluster {cluster_id}",
                exc,
                permission=" (it needs write access to databases)",
                after_failure=" The rule list may or may not have changed.",
            )
            raise TrustedSourceError(self._redact(sentence)) from None
        except AzureError as exc:
            raise TrustedSourceError(
                self._redact(
                    f"Could not reach the DigitalOcean API at {self.endpoint} to {action} database cluster "
                    f"{cluster_id}: {exc.message}"
                )
            ) from None

    def _unexpected(self, action: str, cluster_id: str, result: Any) -> TrustedSourceError:
        if isinstance(result, Mapping) and result.get("id") == "not_found":
            return ClusterNotFoundError(
                f"Could not {action} database cluster {cluster_id}: HTTP 404, no such cluster "
                f"({result.get('message', 'not found')})."
            )
        text = json.dumps(result, default=str)[:300]
        return TrustedSourceError(
            self._redact(f"Could not {action} database cluster {cluster_id}: unexpected response {text}.")
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


def http_error_sentence(what: str, exc: Any, *, permission: str = "", after_failure: str = "") -> str:
    """One sentence for a failed DigitalOcean API call (pydo raises azure-core's
    ``HttpResponseError``): the status, DigitalOcean's own error id and message, and a hint.
    Shared by this provider and the launcher's API client (``dbsync.launch.digitalocean``)."""
    status = getattr(exc, "status_code", None)
    error_id, message = "", str(getattr(exc, "reason", "") or "")
    response = getattr(exc, "response", None)
    try:
        body = json.loads(response.text()) if response is not None else None
    except Exception:
        body = None
    if isinstance(body, Mapping):
        error_id = str(body.get("id") or "")
        message = str(body.get("message") or message)
    detail = f"{error_id}: {message}" if error_id else message
    hint = ""
    if status == 401:
        hint = f" The API token was not accepted: check {TOKEN_ENV}."
    elif status == 403:
        hint = f" The API token lacks the permission{permission or ' for this'}."
    elif status == 429:
        hint = " The API rate limit was hit, also after retries; run again later."
    elif isinstance(status, int) and status >= 500:
        hint = " DigitalOcean's API failed, also after retries." + after_failure
    return f"DigitalOcean refused to {what}: HTTP {status} ({detail}).{hint}"


def _default_api() -> FirewallApi:
    return PydoFirewallApi()


# --- pure rule-list logic -----------------------------------------------------------------------


def rule_key(rule: Mapping[str, Any]) -> tuple[str, str]:
    """A rule's identity: the API keeps one rule per (type, value)."""
    return str(rule["type"]), str(rule["value"])


def request_shape(rule: Mapping[str, Any]) -> Rule:
    """The rule as a PUT body item: type, value and (when it has one) description, nothing else."""
    shaped: Rule = {"type": str(rule["type"]), "value": str(rule["value"])}
    description = rule.get("description")
    if description:
        shaped["description"] = str(description)
    return shaped


def find_rule(current: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]) -> Rule | None:
    key = rule_key(rule)
    for existing in current:
        if rule_key(existing) == key:
            return dict(existing)
    return None


def _describe(rule: Mapping[str, Any]) -> str:
    return f"{rule['type']} {rule['value']}"


def add_rule(
    current: Sequence[Mapping[str, Any]], rule: Mapping[str, Any], *, cluster: str = ""
) -> list[Rule]:
    """The list to PUT so that ``rule`` is present: every current rule kept as it is, ``rule`` appended.

    Idempotent: when a rule with the same (type, value) exists, the list comes back unchanged
    (that rule and its description are left alone). Refuses an EMPTY current list: the cluster
    is open to every source, and adding a first rule would lock out every client not listed.
    """
    where = f" of database cluster {cluster}" if cluster else ""
    if not current:
        raise TrustedSourceError(
            f"Refusing to add trusted source {_describe(rule)}: the trusted-source list{where} is empty, "
            "so the cluster accepts connections from any source, and adding the first rule would lock "
            "out every client that is not listed; add the baseline rules first."
        )
    shaped = [request_shape(r) for r in current]
    if find_rule(current, rule) is not None:
        return shaped
    if len(shaped) >= MAX_RULES:
        raise TrustedSourceError(
            f"Cannot add trusted source {_describe(rule)}: the trusted-source list{where} already has "
            f"{len(shaped)} rules, DigitalOcean's maximum is {MAX_RULES}."
        )
    return [*shaped, request_shape(rule)]


def remove_rule(
    current: Sequence[Mapping[str, Any]], rule: Mapping[str, Any], *, cluster: str = ""
) -> list[Rule]:
    """The list to PUT so that ``rule`` is absent: only the rule with its (type, value) removed.

    Idempotent: without that rule the list comes back unchanged. Refuses to remove the LAST
    rule: an empty list opens the cluster to every source.
    """
    key = rule_key(rule)
    remaining = [request_shape(r) for r in current if rule_key(r) != key]
    if len(remaining) < len(current) and not remaining:
        where = f" of database cluster {cluster}" if cluster else ""
        raise TrustedSourceError(
            f"Refusing to remove trusted source {_describe(rule)}: it is the last rule{where}, and "
            "removing the last rule would open the cluster to every source; add another rule first."
        )
    return remaining


def with_description(current: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]) -> list[Rule]:
    """The list to PUT so that the existing rule with ``rule``'s (type, value) has its description."""
    key = rule_key(rule)
    return [request_shape(rule) if rule_key(r) == key else request_shape(r) for r in current]


def validate_rule(rule_type: Any, value: Any) -> str | None:
    """Why (type, value) is not a valid trusted source, or None. Unknown (preview) values pass."""
    if rule_type not in RULE_TYPES:
        return f"type must be one of {', '.join(RULE_TYPES)}, not {rule_type!r}"
    if value == UNKNOWN:
        return None
    if not isinstance(value, str) or not value.strip():
        return "value must be a non-empty string"
    if rule_type == "ip_addr":
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an IPv4 address or CIDR range"
        if network.version != 4:
            return f"{value!r} is IPv6, which DigitalOcean does not accept as a trusted source"
    elif rule_type == "droplet" and not value.isdigit():
        return f"{value!r} is not a droplet id (digits)"
    return None


# --- the provider -------------------------------------------------------------------------------

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _cluster_lock(cluster_id: str) -> threading.Lock:
    """One lock per cluster for this process: Pulumi runs operations in parallel threads."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(cluster_id, threading.Lock())


def resource_id(cluster_id: str, rule_type: str, value: str) -> str:
    """The resource id: the rule's identity. The rule's uuid is an output (``rule_uuid``)."""
    return f"{cluster_id}:{rule_type}:{value}"


def _props_rule(props: Mapping[str, Any]) -> tuple[str, Rule]:
    cluster_id = props.get("cluster_id")
    rule: Rule = {"type": props.get("type"), "value": props.get("value")}
    if not isinstance(cluster_id, str) or not cluster_id or cluster_id == UNKNOWN:
        raise TrustedSourceError(f"cluster_id must be a database cluster id, not {cluster_id!r}.")
    problem = validate_rule(rule["type"], rule["value"])
    if problem or rule["value"] == UNKNOWN:
        raise TrustedSourceError(
            f"Invalid trusted source for database cluster {cluster_id}: {problem or 'value is not known'}."
        )
    if props.get("description"):
        rule["description"] = str(props["description"])
    return cluster_id, rule


def _outs(cluster_id: str, rule: Mapping[str, Any], live: Mapping[str, Any] | None, adopted: bool) -> Rule:
    return {
        "cluster_id": cluster_id,
        "type": rule["type"],
        "value": rule["value"],
        "description": rule.get("description", ""),
        "rule_uuid": str((live or {}).get("uuid") or ""),
        "adopted": adopted,
    }


class TrustedSourceProvider(dynamic.ResourceProvider):
    """Create/read/update/delete of ONE rule of a cluster's trusted sources (see the module doc).

    ``api_factory`` makes the :class:`FirewallApi` for each operation (default: pydo with the
    token from the environment); it is pickled into state with the provider, so it must hold no
    secret. ``attempts`` bounds the read-merge-write-verify rounds, ``settle_seconds`` is the
    pause before re-reading after a write that did not show up.
    """

    def __init__(
        self,
        api_factory: Callable[[], FirewallApi] | None = None,
        *,
        attempts: int = 3,
        settle_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self._api_factory = api_factory or _default_api
        self._attempts = max(1, attempts)
        self._settle_seconds = settle_seconds

    # -- plan ----------------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        cluster_id = news.get("cluster_id")
        if cluster_id != UNKNOWN and (not isinstance(cluster_id, str) or not cluster_id):
            failures.append(dynamic.CheckFailure("cluster_id", "cluster_id must be a database cluster id"))
        problem = validate_rule(news.get("type"), news.get("value"))
        if problem:
            prop = "type" if news.get("type") not in RULE_TYPES else "value"
            failures.append(dynamic.CheckFailure(prop, problem))
        description = news.get("description", "")
        if description != UNKNOWN and not isinstance(description, str):
            failures.append(dynamic.CheckFailure("description", "description must be a string"))
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """Any change of cluster_id, type or value is another rule: replace, creating the new rule
        before deleting the old one (delete first could leave the list empty, i.e. open)."""
        replaces = [k for k in KEY_PROPS if news.get(k) == UNKNOWN or olds.get(k) != news.get(k)]
        described = (olds.get("description") or "") != (news.get("description") or "")
        return dynamic.DiffResult(
            changes=bool(replaces) or described,
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    # -- operations ----------------------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        cluster_id, rule = _props_rule(props)
        api = self._api_factory()
        with _cluster_lock(cluster_id):
            current = api.list_rules(cluster_id)
            existing = find_rule(current, rule)
            live: Rule | None
            if existing is None:
                live, adopted = self._converge(api, cluster_id, rule, present=True, current=current), False
            elif rule.get("description") and existing.get("description") == rule["description"]:
                # Ours, from an earlier create whose PUT applied although the call failed (Pulumi
                # then recorded nothing): claim it, or nobody would ever remove it.
                live, adopted = existing, False
            else:
                live, adopted = existing, True  # someone else's rule: use it, never remove it
        return dynamic.CreateResult(
            resource_id(cluster_id, rule["type"], rule["value"]), _outs(cluster_id, rule, live, adopted)
        )

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Whether the rule still exists: a missing rule (or cluster) reports the resource gone."""
        if not props.get("cluster_id"):  # `TrustedSource.get(name, id)`: the id says which rule
            cluster, rule_type, value = [*id_.split(":", 2), "", ""][:3]
            props = {"cluster_id": cluster, "type": rule_type, "value": value}
        cluster_id, rule = _props_rule(props)
        try:
            live = find_rule(self._api_factory().list_rules(cluster_id), rule)
        except ClusterNotFoundError:
            live = None
        if live is None:
            return dynamic.ReadResult("", {})
        return dynamic.ReadResult(id_, _outs(cluster_id, rule, live, bool(props.get("adopted"))))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Only the description can change in place (diff replaces on anything else). An adopted
        rule belongs to someone else: its live description is left alone."""
        cluster_id, rule = _props_rule(news)
        if any(olds.get(k) != news.get(k) for k in KEY_PROPS):
            raise TrustedSourceError(
                f"Internal error: trusted source {_describe(rule)} changed identity "
                "in an update; diff should have replaced it."
            )
        adopted = bool(olds.get("adopted"))
        api = self._api_factory()
        with _cluster_lock(cluster_id):
            if adopted:
                live = find_rule(api.list_rules(cluster_id), rule)
                if live is None:
                    raise TrustedSourceError(
                        f"Trusted source {_describe(rule)} of database cluster {cluster_id} no longer "
                        "exists; run `pulumi refresh` and `pulumi up` to create it again."
                    )
            else:
                live = self._converge(api, cluster_id, rule, present=True, describe=True)
        return dynamic.UpdateResult(_outs(cluster_id, rule, live, adopted))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Remove this rule and only this one; an adopted rule stays (it was there before us). A
        refusal (it is the last rule) fails the delete, and Pulumi keeps the resource."""
        cluster_id, rule = _props_rule(props)
        if props.get("adopted"):
            return
        api = self._api_factory()
        try:
            with _cluster_lock(cluster_id):
                self._converge(api, cluster_id, rule, present=False)
        except ClusterNotFoundError:
            return  # the cluster is gone, and its rules with it

    def _converge(
        self,
        api: FirewallApi,
        cluster_id: str,
        rule: Rule,
        *,
        present: bool,
        describe: bool = False,
        current: list[Rule] | None = None,
    ) -> Rule | None:
        """Read-merge-write until a read-back shows the rule present (or absent); at most
        ``attempts`` writes, each verified. Returns the live rule (None when absent)."""

        def satisfied(rules: list[Rule]) -> bool:
            live = find_rule(rules, rule)
            if not present:
                return live is None
            if live is None:
                return False
            return not describe or (live.get("description") or "") == (rule.get("description") or "")

        def change(rules: list[Rule]) -> list[Rule]:
            if not present:
                return remove_rule(rules, rule, cluster=cluster_id)
            if describe and find_rule(rules, rule) is not None:
                return with_description(rules, rule)
            return add_rule(rules, rule, cluster=cluster_id)

        if current is None:
            current = api.list_rules(cluster_id)
        for write in range(self._attempts):
            if satisfied(current):
                return find_rule(current, rule)
            if write:  # the last write did not show: wait, look again, then write again
                time.sleep(self._settle_seconds)
                current = api.list_rules(cluster_id)
                if satisfied(current):
                    return find_rule(current, rule)
            api.replace_rules(cluster_id, change(current))
            current = api.list_rules(cluster_id)
        if satisfied(current):
            return find_rule(current, rule)
        state = "is still missing from" if present else "is still present in"
        raise TrustedSourceError(
            f"Trusted source {_describe(rule)} {state} the trusted-source list of database cluster "
            f"{cluster_id} after {self._attempts} verified write(s) that the API accepted: the change "
            "did not apply, or another writer replaced the list at the same time."
        )


# --- the resource -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedSourceArgs:
    """One trusted source: ``type`` is ip_addr, droplet, k8s, tag or app; ``value`` the address,
    droplet id, cluster/app uuid or tag name. No secrets here: these are stored in state."""

    cluster_id: pulumi.Input[str]
    type: str
    value: pulumi.Input[str]
    description: str = ""


class TrustedSource(dynamic.Resource, module="dbsync", name="TrustedSource"):
    """One rule of a database cluster's trusted sources, leaving every other rule alone.

    Type token ``pulumi-python:dynamic/dbsync:TrustedSource``; state props ``cluster_id``,
    ``type``, ``value``, ``description`` (inputs) and ``rule_uuid``, ``adopted`` (outputs).
    """

    cluster_id: pulumi.Output[str]
    type: pulumi.Output[str]
    value: pulumi.Output[str]
    description: pulumi.Output[str]
    rule_uuid: pulumi.Output[str]
    adopted: pulumi.Output[bool]

    def __init__(
        self, resource_name: str, args: TrustedSourceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        value = args.value if isinstance(args.value, str) else UNKNOWN
        problem = validate_rule(args.type, value)
        if problem:
            raise TrustedSourceError(f"Trusted source {resource_name!r}: {problem}.")
        props: dict[str, Any] = {
            "cluster_id": args.cluster_id,
            "type": args.type,
            "value": args.value,
            "description": args.description,
            "rule_uuid": None,
            "adopted": None,
        }
        super().__init__(TrustedSourceProvider(), resource_name, props, opts)
