"""Provisioning the runner: one small interface, the Pulumi Automation API behind it.

``Provisioner`` is what a run needs of the infrastructure: bring the runner up (the stack with
``dbsync:runner = true`` and this run's id and keys), take it down (``runner = false``), show a
preview, recover a stale lock. :class:`AutomationProvisioner` implements it with the Automation
API on the repository's ``Pulumi.yaml``; the end-to-end tests implement it with a real sshd on
loopback (neither the Pulumi engine nor a cloud exists where the tests run).

Traps handled here:
- ``Stack.up()`` and ``refresh()`` default to ``show_secrets=True``: their streamed output would
  print secret config and outputs into the CI log. Every call passes ``show_secrets=False``.
- A stack another run holds fails with ``ConcurrentUpdateError``: that becomes a sentence saying
  so and how to recover a stale lock (``--recover``: cancel, then refresh).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import DbsyncError
from ..redact import redact, remember_secret

Output = Callable[[str], None]


class ProvisionError(DbsyncError):
    """Pulumi failed to bring the runner up or down."""

    kind = "provision"
    exit_code = 9


class StackLocked(ProvisionError):
    """Another run holds the stack's lock."""

    kind = "stack_locked"


@dataclass(frozen=True)
class RunPlan:
    """What one run tells the stack: its id, expiry and keys (public halves plain, the host's
    private half secret)."""

    run_id: str
    expires_at: int
    client_public_key: str
    host_public_key: str
    host_private_key: str = field(repr=False)


@dataclass(frozen=True)
class RunnerInfo:
    """The stack's outputs a run needs: where to connect and what the job needs there."""

    address: str
    port: int
    user: str
    host_key: str
    mode: str
    source_host: str
    source_port: int
    target_host: str
    target_port: int
    bucket: str
    endpoint: str
    region: str
    retain: int
    spaces_access_key: str = field(repr=False)
    spaces_secret_key: str = field(repr=False)
    sync_settings: dict[str, Any] = field(default_factory=dict)
    droplet_id: str | None = None

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any], sync_settings: dict[str, Any] | None = None) -> RunnerInfo:
        def need(key: str) -> Any:
            if key not in outputs or outputs[key] in (None, ""):
                raise ProvisionError(f"the stack has no output {key!r}; is dbsync:runner true?")
            return outputs[key]

        info = cls(
            address=str(need("dropletAddress")),
            port=int(outputs.get("sshPort", 22)),
            user=str(need("sshUser")),
            host_key=str(need("hostPublicKey")),
            mode=str(need("mode")),
            source_host=str(need("sourceHost")),
            source_port=int(need("sourcePort")),
            target_host=str(need("targetHost")),
            target_port=int(need("targetPort")),
            bucket=str(need("bucket")),
            endpoint=str(need("spacesEndpoint")),
            region=str(need("spacesRegion")),
            retain=int(outputs.get("retain", 7)),
            spaces_access_key=str(need("spacesAccessKey")),
            spaces_secret_key=str(need("spacesSecretKey")),
            sync_settings=dict(sync_settings or {}),
            droplet_id=str(outputs["dropletId"]) if outputs.get("dropletId") is not None else None,
        )
        remember_secret(info.spaces_secret_key)
        return info


class Provisioner(Protocol):
    stack: str

    def config(self) -> dict[str, Any]:
        """The stack's ``dbsync:`` config values (keys without the namespace)."""
        ...

    def up(self, plan: RunPlan, on_output: Output) -> RunnerInfo: ...

    def down(self, on_output: Output) -> None: ...

    def preview(self, on_output: Output) -> None: ...

    def recover(self, on_output: Output) -> None: ...


def _translate(exc: BaseException, action: str, stack: str) -> DbsyncError:
    from pulumi.automation import errors

    if isinstance(exc, errors.ConcurrentUpdateError):
        return StackLocked(
            f"stack {stack!r} is locked by another update (a run in progress, or one that was killed); "
            "if no run is in progress, run again with --recover to cancel the stale lock and refresh"
        )
    if isinstance(exc, errors.StackNotFoundError):
        return ProvisionError(f"stack {stack!r} does not exist in the Pulumi backend; create it first")
    if isinstance(exc, errors.CommandError):
        text = redact(str(exc))
        tail = "\n".join(line for line in text.splitlines() if line.strip())[-1500:]
        return ProvisionError(f"pulumi {action} of stack {stack!r} failed:\n{tail}")
    return ProvisionError(
        f"pulumi {action} of stack {stack!r} failed: {type(exc).__name__}: {redact(str(exc))}"
    )


class AutomationProvisioner:
    """The real implementation: the Automation API on the repository's Pulumi project."""

    RUN_KEYS = ("runId", "runExpiresAt", "runnerSshPublicKey", "runnerHostPublicKey", "runnerHostPrivateKey")

    def __init__(
        self,
        stack: str,
        work_dir: Path,
        *,
        select_stack: Callable[..., Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.work_dir = work_dir
        self._select = select_stack
        self._env = env or {}
        self._stack: Any = None

    def _get(self) -> Any:
        if self._stack is None:
            from pulumi import automation as auto

            select = self._select or auto.create_or_select_stack
            opts = (
                auto.LocalWorkspaceOptions(env_vars=self._env) if self._env and self._select is None else None
            )
            try:
                self._stack = select(stack_name=self.stack, work_dir=str(self.work_dir), opts=opts)
            except Exception as exc:
                raise _translate(exc, "select", self.stack) from None
        return self._stack

    def config(self) -> dict[str, Any]:
        stack = self._get()
        try:
            values = stack.get_all_config()
        except Exception as exc:
            raise _translate(exc, "config", self.stack) from None
        out: dict[str, Any] = {}
        for key, value in values.items():
            if not key.startswith("dbsync:"):
                continue
            if value.secret:
                remember_secret(value.value)
            raw = value.value
            try:
                out[key.split(":", 1)[1]] = (
                    json.loads(raw) if raw[:1] in "[{" or raw in ("true", "false") else raw
                )
            except (TypeError, ValueError):
                out[key.split(":", 1)[1]] = raw
        return out

    def up(self, plan: RunPlan, on_output: Output) -> RunnerInfo:
        from pulumi import automation as auto

        stack = self._get()
        remember_secret(plan.host_private_key)
        try:
            stack.set_all_config(
                {
                    "dbsync:runner": auto.ConfigValue("true"),
                    "dbsync:runId": auto.ConfigValue(plan.run_id),
                    "dbsync:runExpiresAt": auto.ConfigValue(str(plan.expires_at)),
                    "dbsync:runnerSshPublicKey": auto.ConfigValue(plan.client_public_key),
                    "dbsync:runnerHostPublicKey": auto.ConfigValue(plan.host_public_key),
                    "dbsync:runnerHostPrivateKey": auto.ConfigValue(plan.host_private_key, secret=True),
                }
            )
            stack.up(on_output=lambda line: on_output(redact(line)), show_secrets=False, color="never")
            outputs = {k: v.value for k, v in stack.outputs().items()}
        except Exception as exc:
            raise _translate(exc, "up", self.stack) from None
        return RunnerInfo.from_outputs(outputs, self.config().get("sync") or {})

    def down(self, on_output: Output) -> None:
        from pulumi import automation as auto

        stack = self._get()
        try:
            stack.set_config("dbsync:runner", auto.ConfigValue("false"))
            stack.up(on_output=lambda line: on_output(redact(line)), show_secrets=False, color="never")
            for key in self.RUN_KEYS:
                stack.remove_config(f"dbsync:{key}")
        except Exception as exc:
            raise _translate(exc, "up (teardown)", self.stack) from None

    def preview(self, on_output: Output) -> None:
        stack = self._get()
        try:
            stack.preview(
                on_output=lambda line: on_output(redact(line)), show_secrets=False, color="never", diff=True
            )
        except Exception as exc:
            raise _translate(exc, "preview", self.stack) from None

    def recover(self, on_output: Output) -> None:
        stack = self._get()
        try:
            try:
                stack.cancel()
            except Exception as exc:  # nothing to cancel is fine
                on_output(redact(f"cancel: {exc}"))
            stack.refresh(
                on_output=lambda line: on_output(redact(line)),
                show_secrets=False,
                color="never",
                clear_pending_creates=True,
            )
        except Exception as exc:
            raise _translate(exc, "refresh", self.stack) from None
