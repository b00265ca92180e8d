"""The Automation API provisioner: its calls and its error mapping.

The Pulumi engine and CLI cannot exist here, so :class:`AutomationProvisioner` is given a
stand-in for ``auto.create_or_select_stack`` that returns a recording stack. It records every
call with its arguments and raises the Automation API's real exception classes (built from real
``CommandResult`` objects, as the Automation API builds them from the CLI's output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation.errors import create_command_error

from dbsync.launch.provision import AutomationProvisioner, ProvisionError, RunnerInfo, RunPlan, StackLocked

OUTPUTS = {
    "mode": "sync", "dropletAddress": "203.0.113.10", "sshUser": "root", "hostPublicKey": "ssh-ed25519 AAAA host",
    "sourceHost": "private-prod.db", "sourcePort": 25060, "targetHost": "private-uat.db", "targetPort": 25060,
    "bucket": "backups-uat", "spacesEndpoint": "https://fra1.digitaloceanspaces.com", "spacesRegion": "fra1",
    "retain": 7, "spacesAccessKey": "DO00ACCESS", "spacesSecretKey": "spaces-secret-XYZ", "dropletId": "4242",
}
PLAN = RunPlan("r1", 1893456000, "ssh-ed25519 AAAA client", "ssh-ed25519 AAAA host",
               "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretlines\n-----END OPENSSH PRIVATE KEY-----\n")


class RecordingStack:
    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.config: dict[str, auto.ConfigValue] = {"dbsync:mode": auto.ConfigValue("sync"),
                                                     "dbsync:sync": auto.ConfigValue('{"sequence_headroom": 5}')}
        self.fail = fail or {}

    def _call(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]
        if "on_output" in kwargs:
            kwargs["on_output"]("Updating (uat): password=hunter22 userData: secretlines\n")

    def set_all_config(self, config: dict[str, auto.ConfigValue], *, path: bool = False) -> None:
        self._call("set_all_config", config=config)
        self.config.update(config)

    def set_config(self, key: str, value: auto.ConfigValue, *, path: bool = False) -> None:
        self._call("set_config", key=key, value=value)
        self.config[key] = value

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self._call("remove_config", key=key)
        self.config.pop(key, None)

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        return dict(self.config)

    def up(self, **kwargs: Any) -> None:
        self._call("up", **kwargs)

    def preview(self, **kwargs: Any) -> None:
        self._call("preview", **kwargs)

    def refresh(self, **kwargs: Any) -> None:
        self._call("refresh", **kwargs)

    def cancel(self) -> None:
        self._call("cancel")

    def outputs(self) -> dict[str, auto.OutputValue]:
        return {k: auto.OutputValue(v, k.startswith("spaces") and "Key" in k) for k, v in OUTPUTS.items()}


def provisioner(stack: RecordingStack) -> tuple[AutomationProvisioner, list[dict[str, Any]]]:
    selected: list[dict[str, Any]] = []

    def select(**kwargs: Any) -> RecordingStack:
        selected.append(kwargs)
        return stack

    return AutomationProvisioner("uat", Path("/repo"), select_stack=select), selected


def command_error(stderr: str, stdout: str = "") -> BaseException:
    return create_command_error(auto.CommandResult(stdout=stdout, stderr=stderr, code=255))


def test_up_sets_the_run_config_with_the_host_key_secret_and_hides_secrets() -> None:
    stack = RecordingStack()
    prov, selected = provisioner(stack)
    lines: list[str] = []
    info = prov.up(PLAN, lines.append)
    assert selected == [{"stack_name": "uat", "work_dir": "/repo", "opts": None}]
    [(_, kwargs)] = [c for c in stack.calls if c[0] == "set_all_config"]
    config = kwargs["config"]
    assert config["dbsync:runner"].value == "true"
    assert config["dbsync:runId"].value == "r1"
    assert config["dbsync:runnerHostPrivateKey"].secret is True
    assert config["dbsync:runnerHostPublicKey"].secret is False
    [(_, up)] = [c for c in stack.calls if c[0] == "up"]
    assert up["show_secrets"] is False
    assert isinstance(info, RunnerInfo) and info.address == "203.0.113.10" and info.target_host == "private-uat.db"
    assert info.sync_settings == {"sequence_headroom": 5}
    assert lines and all("hunter22" not in line and "secretlines" not in line for line in lines)


def test_down_turns_the_runner_off_and_forgets_the_run() -> None:
    stack = RecordingStack()
    prov, _ = provisioner(stack)
    prov.down(lambda line: None)
    names = [c[0] for c in stack.calls]
    assert names[:2] == ["set_config", "up"]
    assert stack.calls[0][1]["key"] == "dbsync:runner" and stack.calls[0][1]["value"].value == "false"
    assert {c[1]["key"] for c in stack.calls if c[0] == "remove_config"} == {
        "dbsync:runId", "dbsync:runExpiresAt", "dbsync:runnerSshPublicKey", "dbsync:runnerHostPublicKey",
        "dbsync:runnerHostPrivateKey",
    }
    assert stack.calls[1][1]["show_secrets"] is False


def test_a_locked_stack_is_a_clear_sentence() -> None:
    locked = command_error("error: the stack is currently locked by 1 lock(s). Either wait for the other "
                           "process(es) to end or delete the lock file with `pulumi cancel`.\n"
                           "[409] Conflict: Another update is currently in progress.")
    assert isinstance(locked, auto.ConcurrentUpdateError)
    prov, _ = provisioner(RecordingStack({"up": locked}))
    with pytest.raises(StackLocked, match=r"stack 'uat' is locked.*--recover"):
        prov.up(PLAN, lambda line: None)


def test_a_failed_up_names_the_stack_without_secrets() -> None:
    failure = command_error("error: update failed\n  digitalocean:index/droplet:Droplet: 422 "
                            "password=hunter22 size unavailable", stdout="Diagnostics: ...")
    prov, _ = provisioner(RecordingStack({"up": failure}))
    from dbsync.redact import remember_secret

    remember_secret("hunter22")
    with pytest.raises(ProvisionError) as caught:
        prov.up(PLAN, lambda line: None)
    assert "pulumi up of stack 'uat' failed" in str(caught.value)
    assert "size unavailable" in str(caught.value) and "hunter22" not in str(caught.value)


def test_recover_cancels_then_refreshes_clearing_pending_creates() -> None:
    stack = RecordingStack()
    prov, _ = provisioner(stack)
    prov.recover(lambda line: None)
    assert [c[0] for c in stack.calls] == ["cancel", "refresh"]
    assert stack.calls[1][1]["clear_pending_creates"] is True and stack.calls[1][1]["show_secrets"] is False


def test_missing_stack_and_missing_outputs() -> None:
    def select(**kwargs: Any) -> Any:
        raise command_error("error: no stack named 'uat' found")

    with pytest.raises(ProvisionError, match="stack 'uat' does not exist"):
        AutomationProvisioner("uat", Path("/repo"), select_stack=select).config()
    with pytest.raises(ProvisionError, match="no output 'dropletAddress'"):
        RunnerInfo.from_outputs({k: v for k, v in OUTPUTS.items() if k != "dropletAddress"})


def test_config_is_read_back_typed() -> None:
    prov, _ = provisioner(RecordingStack())
    assert prov.config() == {"mode": "sync", "sync": {"sequence_headroom": 5}}
