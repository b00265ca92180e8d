"""pytest plugin: a real OpenSSH server on loopback, for testing ``dbsync.launch.remote``.

Loaded by ``pytest_plugins = [..., "tests.fix_sshd"]`` in ``tests/conftest.py``. Provides:

* ``sshd`` (session): ``/usr/sbin/sshd -D -e`` run as the current user (root or not) with a
  config of its own, started on first use and stopped at the end of the session (or at
  interpreter exit). Nothing of the system's sshd is used: not its config, keys or service.
  Attributes: ``host`` (127.0.0.1), ``port``, ``user`` (the current user), ``host_public_key``
  (the server's ed25519 ``.pub`` line, freshly generated), ``client_private_key_pem`` (OpenSSH
  PEM text of the only key it accepts), ``other_host_public_key`` (another valid ed25519 public
  key, for mismatch tests), ``log_path``; methods ``target()`` (a ``Target`` pinning the real
  host key) and ``log()`` (the server's log so far).

The server allows public-key logins only (``PasswordAuthentication no``, ``PermitRootLogin
prohibit-password``), with ``StrictModes yes``: sshd refuses an ``authorized_keys`` file when it
or any directory above it (up to the home directory) is writable by others, so the fixture's
folder is made under the first of ``$TMPDIR``/``/tmp``, ``$XDG_RUNTIME_DIR``, ``~/.cache`` where
that holds (``/tmp`` itself is world-writable, so as root it is usually ``/root/.cache``).

Needs the ``openssh-server`` package: without ``/usr/sbin/sshd`` the tests using the fixture
fail (not skip, so CI cannot pass without them) with ``apt-get install -y openssh-server``. As root, sshd
also needs its privilege-separation directory ``/run/sshd``, which the system service normally
creates: the fixture creates it (root-owned, 0755) when it is missing.

Set ``DBSYNC_TEST_KEEP_SSHD_LOG=1`` to keep the folder (config, keys, log) after the session.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbsync.launch.remote import Target

SSHD = "/usr/sbin/sshd"  # sshd must be started by absolute path (it re-executes itself)
PRIVSEP_DIR = Path("/run/sshd")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3


class SshdError(RuntimeError):
    """The test sshd could not be started."""


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Have the kernel SIGTERM the server if pytest dies without running atexit."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _strict_modes_ok(directory: Path, uid: int, home: Path) -> bool:
    """Whether sshd's StrictModes accepts files under ``directory`` for the user ``uid``.

    The same walk as OpenSSH's ``auth_secure_path``: every directory from the file's up to the
    home directory (or ``/``) must be owned by root or the user and not group/world-writable.
    """
    current = directory.resolve()
    while True:
        try:
            st = current.stat()
        except OSError:
            return False
        if st.st_uid not in (0, uid) or st.st_mode & 0o022:
            return False
        if current == home or current == current.parent:
            return True
        current = current.parent


def _private_base(uid: int, home: Path) -> Path | None:
    """The first usual place for temporary files that satisfies StrictModes (see module doc)."""
    candidates = [Path(tempfile.gettempdir())]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]))
    cache = home / ".cache"
    if home.is_dir() and _strict_modes_ok(home, uid, home):
        with contextlib.suppress(OSError):
            cache.mkdir(mode=0o700, exist_ok=True)
        candidates.append(cache)
    for candidate in candidates:
        if candidate.is_dir() and os.access(candidate, os.W_OK) and _strict_modes_ok(candidate, uid, home):
            return candidate
    return None


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def _openssh_version() -> tuple[int, int]:
    """OpenSSH's version, as (major, minor), from ``sshd -V`` (``OpenSSH_9.2p1 ...``)."""
    result = subprocess.run([SSHD, "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stdout + result.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class Sshd:
    """A real OpenSSH server on 127.0.0.1, with keys and a config of its own."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        if not os.access(SSHD, os.X_OK):
            raise SshdError(f"{SSHD} is missing: apt-get install -y openssh-server")
        uid = os.geteuid()
        entry = pwd.getpwuid(uid)
        self.user = entry.pw_name
        home = Path(entry.pw_dir)
        base = _private_base(uid, home)
        self.strict_modes = base is not None
        self.workdir = Path(tempfile.mkdtemp(prefix="dbsync-sshd-", dir=base))
        self.workdir.chmod(0o700)
        self.log_path = self.workdir / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        atexit.register(self.stop)
        try:
            self._make_keys()
            self._start()
        except BaseException:
            self.stop()
            raise

    def __repr__(self) -> str:
        return f"<Sshd {self.host}:{self.port} user={self.user} pid={self.proc.pid if self.proc else None}>"

    # -- set-up ------------------------------------------------------------------------------

    def _make_keys(self) -> None:
        self.host_key_path = self.workdir / "ssh_host_ed25519_key"
        _keygen(self.host_key_path, "dbsync-test-host")
        _keygen(self.workdir / "other_host_ed25519_key", "dbsync-test-other-host")
        _keygen(self.workdir / "client_ed25519_key", "dbsync-test-client")
        self.host_public_key = (self.workdir / "ssh_host_ed25519_key.pub").read_text().strip()
        self.other_host_public_key = (self.workdir / "other_host_ed25519_key.pub").read_text().strip()
        self.client_private_key_pem = (self.workdir / "client_ed25519_key").read_text()
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text((self.workdir / "client_ed25519_key.pub").read_text())
        self.authorized_keys.chmod(0o600)

    def _config(self) -> str:
        lines = [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"StrictModes {'yes' if self.strict_modes else 'no'}",
            "UsePAM no",  # PAM needs sshd to run as root, and the system's PAM stack
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "Subsystem sftp internal-sftp",
            "MaxStartups 100:30:200",
            "LogLevel VERBOSE",
        ]
        if _openssh_version() >= (9, 8):
            # Failed logins are tested on purpose: do not let sshd refuse the next ones.
            lines.append("PerSourcePenalties no")
        return "\n".join(lines) + "\n"

    def _start(self) -> None:
        if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755)
        config = self.workdir / "sshd_config"
        last = ""
        for _ in range(START_ATTEMPTS):  # another process may take the port between probe and bind
            self.port = free_port()
            config.write_text(self._config())
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            if self._wait_ready():
                return
            last = self.log()
            self._kill()
        raise SshdError(f"sshd did not start after {START_ATTEMPTS} attempts; log:\n{last[-3000:]}")

    def _wait_ready(self) -> bool:
        """Wait for the SSH banner on the port (listening alone could still be a stranger)."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    # -- for tests ---------------------------------------------------------------------------

    def target(self) -> Target:
        """Where to log in, pinning the server's real host key."""
        return Target(host=self.host, port=self.port, user=self.user, host_key=self.host_public_key)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    # -- tear-down ---------------------------------------------------------------------------

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        # The whole session: the listener and any connection it forked (and their commands).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        self._kill()
        if os.environ.get("DBSYNC_TEST_KEEP_SSHD_LOG"):
            print(f"sshd folder kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """A real OpenSSH server on loopback for the whole session."""
    server = Sshd()
    try:
        yield server
    finally:
        server.stop()
