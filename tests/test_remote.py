"""``dbsync.launch.remote`` against a real OpenSSH server (``tests.fix_sshd``), no mocks.

The server runs on loopback as the current user, so what a remote command or an SFTP call did
can be checked with local ``os.stat`` and file reads.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dbsync.launch.remote import (
    HostKeyMismatch,
    Remote,
    RemoteError,
    RemoteTimeout,
    Target,
    env_file_text,
)
from dbsync.redact import remember_secret
from tests.fix_sshd import Sshd, free_port


@pytest.fixture
def remote(sshd: Sshd) -> Iterator[Remote]:
    with Remote.connect(
        sshd.target(), sshd.client_private_key_pem, timeout=10, ready_command=None, ready_timeout=0
    ) as connected:
        yield connected


def run_collect(remote: Remote, command: str, env_file: str | None = None) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = remote.run(command, on_line=lines.append, env_file=env_file, timeout=30)
    return status, lines


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def accepted_logins(sshd: Sshd) -> int:
    return sshd.log().count("Accepted publickey for")


# -- connecting ------------------------------------------------------------------------------------


def test_connects_with_the_pinned_host_key(sshd: Sshd) -> None:
    with Remote.connect(
        sshd.target(), sshd.client_private_key_pem, timeout=10, ready_command="true", ready_timeout=10
    ) as remote:
        status, lines = run_collect(remote, "whoami")
    assert (status, lines) == (0, [sshd.user])


def test_target_names() -> None:
    assert Target("203.0.113.5", 22, "root", "k").known_hosts_name == "203.0.113.5"
    assert Target("203.0.113.5", 2222, "root", "k").known_hosts_name == "[203.0.113.5]:2222"
    assert Target("2001:db8::1", 22, "root", "k").address == "[2001:db8::1]:22"


def test_wrong_host_key_is_refused_before_anything_is_sent(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    impostor = Target(sshd.host, sshd.port, sshd.user, host_key=sshd.other_host_public_key)
    logins_before = accepted_logins(sshd)
    started = time.monotonic()
    with pytest.raises(HostKeyMismatch) as caught:
        Remote.connect(
            impostor,
            sshd.client_private_key_pem,
            timeout=10,
            ready_command=f"touch {marker}",
            ready_timeout=10,
        )
    assert time.monotonic() - started < 5, "a host key mismatch must not be retried"
    message = str(caught.value)
    assert f"{sshd.host}:{sshd.port}" in message
    assert "not the one the stack generated" in message
    assert "nothing was sent" in message
    assert caught.value.kind == "host_key_mismatch" and caught.value.exit_code == 7
    assert isinstance(caught.value, RemoteError)
    time.sleep(0.3)  # let sshd write its log
    assert not marker.exists(), "the command ran on a server with the wrong host key"
    assert accepted_logins(sshd) == logins_before, "the client logged in to the wrong server"


def test_host_key_of_another_type_is_a_mismatch(sshd: Sshd, tmp_path: Path) -> None:
    # The pinned key is not even an ed25519 key: still refused, never trusted on first use.
    from cryptography.hazmat.primitives.asymmetric import ec

    ecdsa = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    target = Target(sshd.host, sshd.port, sshd.user, host_key=ecdsa)
    with pytest.raises(HostKeyMismatch):
        Remote.connect(target, sshd.client_private_key_pem, timeout=10, ready_command=None, ready_timeout=0)


def test_unreadable_pinned_key_is_a_remote_error(sshd: Sshd) -> None:
    target = Target(sshd.host, sshd.port, sshd.user, host_key="ssh-ed25519 not-base64!")
    with pytest.raises(RemoteError, match="pinned host key"):
        Remote.connect(target, sshd.client_private_key_pem, timeout=10, ready_command=None, ready_timeout=0)


def test_wrong_client_key_is_refused(sshd: Sshd) -> None:
    other = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        .decode()
    )
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        Remote.connect(sshd.target(), other, timeout=10, ready_command=None, ready_timeout=0)
    assert time.monotonic() - started < 5, "a refused key must not be retried until the timeout"
    assert not isinstance(caught.value, HostKeyMismatch)
    assert "refused the client key" in str(caught.value)
    assert repr(sshd.user) in str(caught.value)
    assert caught.value.kind == "remote" and caught.value.exit_code == 7


def test_client_key_that_is_not_a_key(sshd: Sshd) -> None:
    with pytest.raises(RemoteError, match="client private key") as caught:
        Remote.connect(
            sshd.target(), "-----BEGIN nonsense-----\nAAAA\n", timeout=5, ready_command=None, ready_timeout=0
        )
    assert "AAAA" not in str(caught.value)


def test_unreachable_port_fails_within_the_timeout(sshd: Sshd) -> None:
    port = free_port()
    target = Target("127.0.0.1", port, sshd.user, sshd.host_public_key)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        Remote.connect(target, sshd.client_private_key_pem, timeout=2, ready_command=None, ready_timeout=0)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 4.5
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "within 2 s" in str(caught.value)


def test_port_that_never_speaks_ssh_fails_within_the_timeout(sshd: Sshd) -> None:
    with socket.socket() as listener:  # accepts TCP (the kernel's backlog) but never sends a banner
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        target = Target("127.0.0.1", port, sshd.user, sshd.host_public_key)
        started = time.monotonic()
        with pytest.raises(RemoteError, match=f"127.0.0.1:{port}"):
            Remote.connect(
                target, sshd.client_private_key_pem, timeout=2, ready_command=None, ready_timeout=0
            )
        assert time.monotonic() - started < 4.5


def test_waits_for_the_ready_command(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "boot-finished"

    def finish_boot_later() -> None:
        time.sleep(1.5)
        with Remote.connect(
            sshd.target(), sshd.client_private_key_pem, timeout=10, ready_command=None, ready_timeout=0
        ) as second:
            second.run(f"touch {marker}", on_line=lambda _line: None, timeout=10)

    booter = threading.Thread(target=finish_boot_later)
    started = time.monotonic()
    booter.start()
    try:
        with Remote.connect(
            sshd.target(),
            sshd.client_private_key_pem,
            timeout=10,
            ready_command=f"test -f {marker}",
            ready_timeout=15,
        ) as remote:
            elapsed = time.monotonic() - started
            assert marker.exists()
            assert remote.run("true", on_line=lambda _line: None) == 0
    finally:
        booter.join()
    assert 1.5 <= elapsed < 8


def test_blocking_ready_command_is_waited_for(sshd: Sshd) -> None:
    started = time.monotonic()
    with Remote.connect(
        sshd.target(),
        sshd.client_private_key_pem,
        timeout=10,
        ready_command="sleep 1; true",
        ready_timeout=10,
    ):
        assert 1 <= time.monotonic() - started < 6


def test_ready_command_that_never_succeeds_times_out(sshd: Sshd) -> None:
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        Remote.connect(
            sshd.target(),
            sshd.client_private_key_pem,
            timeout=10,
            ready_command="echo still booting; false",
            ready_timeout=2,
        )
    assert 2 <= time.monotonic() - started < 5
    message = str(caught.value)
    assert "did not become ready within 2 s" in message
    assert "echo still booting; false" in message
    assert "exit status 1" in message and "still booting" in message


def test_ready_command_that_never_returns_times_out(sshd: Sshd) -> None:
    started = time.monotonic()
    with pytest.raises(RemoteTimeout, match="still running"):
        Remote.connect(
            sshd.target(),
            sshd.client_private_key_pem,
            timeout=10,
            ready_command="while sleep 0.2; do echo booting; done",  # dies writing once closed
            ready_timeout=1.5,
        )
    assert time.monotonic() - started < 4


# -- files -------------------------------------------------------------------------------------


def test_make_private_dir(remote: Remote, tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    remote.make_private_dir(str(deep))
    assert deep.is_dir()
    for made in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert mode_of(made) == 0o700, made
    existing = tmp_path / "open"
    existing.mkdir()
    existing.chmod(0o755)
    remote.make_private_dir(str(existing) + "/")
    assert mode_of(existing) == 0o700
    (tmp_path / "file").write_text("x")
    with pytest.raises(RemoteError, match="not a directory"):
        remote.make_private_dir(str(tmp_path / "file" / "sub"))


def test_upload_bytes_is_private_and_exact(remote: Remote, tmp_path: Path) -> None:
    remote.make_private_dir(str(tmp_path / "secrets"))
    target = tmp_path / "secrets" / "env"
    data = b"PGPASSWORD='x\x00y'\n\xff\xfe binary too\n"
    remote.upload(data, str(target))
    assert target.read_bytes() == data
    assert mode_of(target) == 0o600
    assert not Path(str(target) + ".part").exists()
    remote.upload(b"replaced", str(target))  # overwrites
    assert target.read_bytes() == b"replaced"
    remote.upload(b"", str(tmp_path / "empty"), mode=0o640)
    assert (tmp_path / "empty").read_bytes() == b""
    assert mode_of(tmp_path / "empty") == 0o640


def test_upload_a_5_mb_file(remote: Remote, tmp_path: Path) -> None:
    local = tmp_path / "local.bin"
    data = os.urandom(5 * 1024 * 1024 + 12345)
    local.write_bytes(data)
    remote.upload(local, str(tmp_path / "remote.bin"))
    assert (tmp_path / "remote.bin").read_bytes() == data
    assert mode_of(tmp_path / "remote.bin") == 0o600
    remote.upload(str(local), str(tmp_path / "again.bin"), mode=0o644)
    assert (tmp_path / "again.bin").read_bytes() == data
    assert mode_of(tmp_path / "again.bin") == 0o644


def test_upload_does_not_follow_a_planted_part_file(remote: Remote, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (tmp_path / "dest.part").symlink_to(victim)
    remote.upload(b"secret", str(tmp_path / "dest"))
    assert victim.read_bytes() == b"untouched"
    assert (tmp_path / "dest").read_bytes() == b"secret"
    assert not (tmp_path / "dest").is_symlink()


def test_upload_into_a_missing_directory_fails(remote: Remote, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "file"
    with pytest.raises(RemoteError, match=re.escape(str(missing))):
        remote.upload(b"x", str(missing))


def test_download_returns_exact_bytes(remote: Remote, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_path / "report.bin").write_bytes(data)
    assert remote.download(str(tmp_path / "report.bin")) == data
    (tmp_path / "empty").write_bytes(b"")
    assert remote.download(str(tmp_path / "empty")) == b""
    with pytest.raises(RemoteError, match=re.escape("missing.json")):
        remote.download(str(tmp_path / "missing.json"))


# -- commands ----------------------------------------------------------------------------------


def test_run_streams_lines_as_they_happen(remote: Remote) -> None:
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    status = remote.run(
        "echo first; sleep 1; echo second", on_line=lambda line: seen.append((time.monotonic(), line))
    )
    ended = time.monotonic()
    assert status == 0
    assert [line for _, line in seen] == ["first", "second"]
    first_at, second_at = seen[0][0], seen[1][0]
    assert first_at - started < 0.8, "the first line was held back"
    assert second_at - first_at >= 0.7
    assert ended - first_at >= 0.7, "the first line only arrived when the command ended"


def test_run_merges_stderr_in_order(remote: Remote) -> None:
    status, lines = run_collect(
        remote, "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; printf 'no newline'"
    )
    assert status == 0
    assert lines == ["out1", "err1", "out2", "no newline"]


def test_run_decodes_utf8_and_crlf(remote: Remote) -> None:
    _, lines = run_collect(remote, r"printf 'caf\303\251\r\n\377\n'")
    assert lines == ["café", "\ufffd"]


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_run_returns_the_exit_status(remote: Remote, code: int) -> None:
    assert run_collect(remote, f"echo before; exit {code}") == (code, ["before"])


def test_run_redacts_remembered_secrets(remote: Remote) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    remember_secret(secret)
    status, lines = run_collect(remote, f"echo 'the password is {secret}'; echo {secret} >&2")
    assert status == 0
    assert lines == ["the password is ***", "***"]


def test_run_sources_the_env_file(remote: Remote, tmp_path: Path) -> None:
    value = 'it\'s $HOME `id` "quoted"\nsecond line'
    remote.make_private_dir(str(tmp_path / "run"))
    env = tmp_path / "run" / "env"
    remote.upload(env_file_text({"DBSYNC_TEST_VALUE": value, "DBSYNC_TEST_OTHER": "2"}).encode(), str(env))
    status, lines = run_collect(
        remote, 'printf \'%s|%s\\n\' "$DBSYNC_TEST_VALUE" "$DBSYNC_TEST_OTHER"', env_file=str(env)
    )
    assert status == 0
    assert "\n".join(lines) == f"{value}|2"
    # Exported: a child process sees it too.
    assert run_collect(remote, "sh -c 'echo $DBSYNC_TEST_OTHER'", env_file=str(env)) == (0, ["2"])
    status, _ = run_collect(remote, "echo should not run", env_file=str(tmp_path / "missing"))
    assert status != 0


def test_env_file_text_refuses_bad_names() -> None:
    with pytest.raises(ValueError):
        env_file_text({"NOT-A-NAME": "x"})


def test_run_times_out(remote: Remote, tmp_path: Path) -> None:
    wrote_after_close = tmp_path / "wrote-after-close"
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(RemoteTimeout) as caught:
        remote.run(
            f"echo started; sleep 2.5; echo late; touch {wrote_after_close}", on_line=seen.append, timeout=1.5
        )
    assert 1.5 <= time.monotonic() - started < 4
    assert seen == ["started"]
    assert "did not finish within 1.5 s" in str(caught.value)
    assert isinstance(caught.value, RemoteError) and caught.value.exit_code == 7
    # The closed session cut the command off at its next write.
    time.sleep(2.5)
    assert not wrote_after_close.exists()
    # The connection is still usable.
    assert run_collect(remote, "echo after") == (0, ["after"])


def test_command_killed_by_a_signal_is_an_error(remote: Remote) -> None:
    with pytest.raises(RemoteError, match="killed by a signal"):
        remote.run("kill -9 $$", on_line=lambda _line: None, timeout=10)


def test_closed_remote_refuses_work(sshd: Sshd) -> None:
    remote = Remote.connect(
        sshd.target(), sshd.client_private_key_pem, timeout=10, ready_command=None, ready_timeout=0
    )
    remote.close()
    remote.close()  # idempotent
    with pytest.raises(RemoteError, match="closed"):
        remote.run("true", on_line=lambda _line: None)
    with pytest.raises(RemoteError, match="closed"):
        remote.download("/etc/hostname")
