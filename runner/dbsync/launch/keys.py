"""Per-run SSH keys: a client key to log in with, a host key the droplet is preset with.

Both are fresh ed25519 pairs for every run, generated here (paramiko cannot generate ed25519;
``cryptography``, which paramiko depends on, writes OpenSSH format). The host key's private half
travels to the droplet as secret user data; its public half is what the client pins, so the
first connection already verifies the server: no trust on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..redact import remember_secret


@dataclass(frozen=True)
class KeyPair:
    private_pem: str = field(repr=False)
    public_line: str


def generate(comment: str) -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    remember_secret(private_pem)
    return KeyPair(private_pem, f"{public.decode()} {comment}")
