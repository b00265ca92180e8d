"""pytest plugin: a stateful fake of the DigitalOcean API, a real HTTPS server on loopback.

The DigitalOcean API cannot be reached from the machines that run these tests, so the code that
talks to it (pydo, our Pulumi dynamic provider) is tested against this fake, which enforces the
API's documented semantics rather than accepting anything:

* every request needs ``Authorization: Bearer <token>``; otherwise 401 with DigitalOcean's body
  ``{"id": "Unauthorized", "message": "Unable to authenticate you"}``;
* errors are DigitalOcean's JSON ``{"id": ..., "message": ..., "request_id": ...}``: 404
  ``not_found`` for unknown clusters and droplets, 422 ``unprocessable_entity`` for invalid
  input, 400 ``bad_request`` for a body that is not JSON;
* ``PUT /v2/databases/{uuid}/firewall`` REPLACES the whole rule list. A rule whose (type, value)
  was already present keeps its uuid and created_at, new ones get fresh ones. Types are
  ``ip_addr``, ``droplet``, ``k8s``, ``tag``, ``app``; at most 100 rules; no IPv6; no duplicate
  (type, value); 204 without a body on success. An EMPTY list is accepted, and then the cluster
  accepts connections from any source: ``fake.is_open(uuid)`` tells;
* lists paginate (``per_page`` at most 200, ``links.pages.next`` with absolute URLs,
  ``meta.total``); ``DELETE /v2/droplets?tag_name=X`` removes every droplet with that tag.

Routes: ``GET /v2/account``; ``GET /v2/databases[?tag_name=]``; ``GET /v2/databases/{uuid}``;
``GET /v2/databases/{uuid}/backups``; ``GET|PUT /v2/databases/{uuid}/firewall``;
``GET /v2/droplets[?tag_name=&name=&per_page=&page=]``; ``DELETE /v2/droplets?tag_name=``;
``GET|DELETE /v2/droplets/{id}``. Anything else is 404 (unknown path) or 405 (known path, other
method).

Why HTTPS: pydo authenticates through azure-core's ``BearerTokenCredentialPolicy``, which refuses
to send a bearer token over plain HTTP. The fake makes its own CA and a certificate for
127.0.0.1 (with ``cryptography``), and the ``fake_do`` fixture points ``REQUESTS_CA_BUNDLE`` at
that CA, so ``pydo.Client(token, endpoint=fake.url)`` works as it is, with TLS verified. Outside
the fixture, pass ``connection_verify=fake.ca_file`` to ``pydo.Client``.

The ``fake_do`` fixture (function scope: fresh state per test) also sets ``DIGITALOCEAN_TOKEN``
and ``DIGITALOCEAN_API_URL`` to the fake's token and URL, so code that reads them talks to the
fake and never to the real API, and it removes proxy variables for loopback.

Helpers on the fake: ``add_cluster``, ``add_droplet``, ``add_backup``, ``rules``, ``set_rules``,
``is_open``, ``cluster``, ``droplet``, ``droplet_ids``, ``requests`` (every request as
``Request(method, path, body)``, path with its query string, body parsed from JSON),
``requests_to(method, path_prefix)``, ``fail_next(method, path_prefix, status, body, times=)``
(the next matching request(s) get that response and change nothing; status 204 makes a write
that "succeeds" without being applied) and ``pending_failures()``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import itertools
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

DEFAULT_TOKEN = "dop_v1_fake_" + "0" * 52
RULE_TYPES = frozenset({"ip_addr", "droplet", "k8s", "tag", "app"})
MAX_RULES = 100
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20
RATELIMIT_LIMIT = 5000

_UNAUTHORIZED = {"id": "Unauthorized", "message": "Unable to authenticate you"}
_DEFAULT_ERROR_BODIES: dict[int, dict[str, str]] = {
    400: {"id": "bad_request", "message": "The request could not be understood."},
    401: _UNAUTHORIZED,
    403: {"id": "forbidden", "message": "You do not have access for the attempted action."},
    404: {"id": "not_found", "message": "The resource you were accessing could not be found."},
    409: {"id": "conflict", "message": "The request conflicts with the current state."},
    422: {"id": "unprocessable_entity", "message": "The request could not be processed."},
    429: {"id": "too_many_requests", "message": "API Rate limit exceeded."},
    500: {"id": "server_error", "message": "Server was unable to give you a response."},
    502: {"id": "bad_gateway", "message": "Bad gateway."},
    503: {"id": "service_unavailable", "message": "Service unavailable."},
}
_TAG_NAME = re.compile(r"^[A-Za-z0-9_:\-]{1,255}$")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Request(NamedTuple):
    """One request the fake received: method, path with query string, JSON body (or None)."""

    method: str
    path: str
    body: Any


class ApiError(Exception):
    """Raised inside a route: becomes DigitalOcean's error JSON with this status."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"The {what} you were accessing could not be found.")


@dataclass
class _Injected:
    method: str
    path_prefix: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class _Cluster:
    id: str
    name: str
    region: str
    version: str
    tags: list[str]
    private_network_uuid: str
    host: str
    private_host: str
    port: int
    user: str
    password: str
    database: str
    size: str
    num_nodes: int
    created_at: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    backups: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def connection(host: str) -> dict[str, Any]:
            return {
                "protocol": "postgresql",
                "uri": f"postgresql://{self.user}:{self.password}@{host}:{self.port}/{self.database}"
                       "?sslmode=require",
                "database": self.database,
                "host": host,
                "port": self.port,
                "user": self.user,
                "password": self.password,
                "ssl": True,
            }

        return {
            "id": self.id,
            "name": self.name,
            "engine": "pg",
            "version": self.version,
            "semantic_version": f"{self.version}.0",
            "num_nodes": self.num_nodes,
            "size": self.size,
            "region": self.region,
            "status": "online",
            "created_at": self.created_at,
            "private_network_uuid": self.private_network_uuid,
            "tags": list(self.tags),
            "db_names": [self.database],
            "connection": connection(self.host),
            "private_connection": connection(self.private_host),
            "users": [{"name": self.user, "role": "primary", "password": self.password}],
            "maintenance_window": {"day": "sunday", "hour": "03:00:00", "pending": False},
        }


@dataclass
class _Droplet:
    id: int
    name: str
    status: str
    tags: list[str]
    created_at: str
    public_ip: str
    private_ip: str
    vpc_uuid: str
    region: str
    size_slug: str

    def to_json(self) -> dict[str, Any]:
        v4 = []
        if self.public_ip:
            v4.append({"ip_address": self.public_ip, "netmask": "255.255.240.0",
                       "gateway": self.public_ip.rsplit(".", 1)[0] + ".1", "type": "public"})
        if self.private_ip:
            v4.append({"ip_address": self.private_ip, "netmask": "255.255.0.0",
                       "gateway": "<nil>", "type": "private"})
        return {
            "id": self.id,
            "name": self.name,
            "memory": 2048,
            "vcpus": 1,
            "disk": 50,
            "locked": False,
            "status": self.status,
            "created_at": self.created_at,
            "features": ["private_networking"],
            "backup_ids": [],
            "snapshot_ids": [],
            "volume_ids": [],
            "size_slug": self.size_slug,
            "networks": {"v4": v4, "v6": []},
            "region": {"slug": self.region, "name": self.region, "available": True},
            "tags": list(self.tags),
            "vpc_uuid": self.vpc_uuid,
        }


def _make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dbsync fake DigitalOcean CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_file, cert_file, key_file


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDigitalOcean

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._track(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.fake._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (or a connection closed by stop()) is not a
        # failure of the test; anything else is recorded for the fake's owner to look at.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError, ValueError)):
            return
        self.fake.server_errors.append(repr(exc))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30  # an idle keep-alive connection is dropped after this

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, body, headers = self.server.fake._handle(method, self.path, self.headers, raw)
        except Exception as exc:  # a bug in the fake: say so rather than hang the client
            self.server.fake.server_errors.append(repr(exc))
            status, body, headers = 500, {"id": "server_error", "message": f"fake DO bug: {exc!r}"}, {}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status == 204 or body is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps(body).encode()
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeDigitalOcean:
    """The fake API's state and server. ``start()`` before use, ``stop()`` after (or ``with``)."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.requests: list[Request] = []
        self.server_errors: list[str] = []
        self._clusters: dict[str, _Cluster] = {}
        self._droplets: dict[int, _Droplet] = {}
        self._injected: list[_Injected] = []
        self._lock = threading.RLock()
        self._droplet_ids = itertools.count(300_000_001)
        self._remaining = RATELIMIT_LIMIT
        self._connections: set[Any] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self.ca_file = ""
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeDigitalOcean:
        self._workdir = Path(tempfile.mkdtemp(prefix="dbsync-fake-do-"))
        ca_file, cert_file, key_file = _make_tls(self._workdir)
        self.ca_file = str(ca_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        server.fake = self
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-do-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with self._lock:
                connections = list(self._connections)
            for conn in connections:  # wake handler threads blocked on idle keep-alive connections
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> FakeDigitalOcean:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: Any) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: Any) -> None:
        with self._lock:
            self._connections.discard(conn)

    # -- test helpers --------------------------------------------------------------------------

    def add_cluster(
        self,
        name: str = "db-postgresql-fra1-prod",
        *,
        region: str = "fra1",
        version: str = "17",
        tags: Iterable[str] = (),
        rules: Iterable[Mapping[str, Any]] = (),
        private_network_uuid: str | None = None,
        cluster_id: str | None = None,
        backups: int = 1,
    ) -> str:
        """A PostgreSQL cluster, online, with these trusted sources; returns its uuid."""
        cid = cluster_id or str(uuid.uuid4())
        short = cid.split("-")[0]
        with self._lock:
            if cid in self._clusters:
                raise ValueError(f"cluster {cid} exists")
            cluster = _Cluster(
                id=cid, name=name, region=region, version=version, tags=list(tags),
                private_network_uuid=private_network_uuid or str(uuid.uuid4()),
                host=f"{name}-do-user-1-0.{short}.db.ondigitalocean.com",
                private_host=f"private-{name}-do-user-1-0.{short}.db.ondigitalocean.com",
                port=25060, user="doadmin", password="AVNS_" + uuid.uuid4().hex[:20],
                database="defaultdb", size="db-s-1vcpu-2gb", num_nodes=1, created_at=_now(),
            )
            self._clusters[cid] = cluster
            for _ in range(backups):
                self.add_backup(cid)
        if rules:
            self.set_rules(cid, rules)
        return cid

    def add_backup(self, cluster_id: str, created_at: str | None = None, size_gigabytes: float = 0.03) -> None:
        with self._lock:
            self._cluster(cluster_id).backups.append(
                {"created_at": created_at or _now(), "size_gigabytes": size_gigabytes})

    def add_droplet(
        self,
        name: str = "dbsync-runner",
        *,
        tags: Iterable[str] = (),
        status: str = "active",
        public_ip: str | None = None,
        private_ip: str | None = None,
        vpc_uuid: str = "",
        region: str = "fra1",
        droplet_id: int | None = None,
    ) -> int:
        """A droplet (status ``active`` unless told); returns its integer id."""
        with self._lock:
            did = droplet_id if droplet_id is not None else next(self._droplet_ids)
            if did in self._droplets:
                raise ValueError(f"droplet {did} exists")
            n = len(self._droplets) + 2
            self._droplets[did] = _Droplet(
                id=did, name=name, status=status, tags=list(tags), created_at=_now(),
                public_ip=public_ip if public_ip is not None else f"203.0.113.{n % 250 + 2}",
                private_ip=private_ip if private_ip is not None else f"10.110.0.{n % 250 + 2}",
                vpc_uuid=vpc_uuid or str(uuid.uuid4()), region=region, size_slug="s-1vcpu-2gb",
            )
            return did

    def rules(self, cluster_id: str) -> list[dict[str, Any]]:
        """The cluster's trusted sources as the API would list them (a copy)."""
        with self._lock:
            return copy.deepcopy(self._cluster(cluster_id).rules)

    def set_rules(self, cluster_id: str, rules: Iterable[Mapping[str, Any]]) -> None:
        """Replace the cluster's rules directly (set-up), validated like a PUT."""
        with self._lock:
            self._replace_rules(self._cluster(cluster_id), {"rules": [dict(r) for r in rules]})

    def is_open(self, cluster_id: str) -> bool:
        """True when the cluster has no trusted sources: it then accepts any source."""
        with self._lock:
            return not self._cluster(cluster_id).rules

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        with self._lock:
            return self._cluster(cluster_id).to_json()

    def droplet(self, droplet_id: int) -> dict[str, Any] | None:
        with self._lock:
            d = self._droplets.get(droplet_id)
            return d.to_json() if d else None

    def droplet_ids(self, tag: str | None = None) -> list[int]:
        with self._lock:
            return sorted(d.id for d in self._droplets.values() if tag is None or tag in d.tags)

    def requests_to(self, method: str, path_prefix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: Any = None,
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests with this method whose path starts with ``path_prefix``
        (after authentication) get this response instead and change nothing. ``body`` defaults
        to DigitalOcean's error JSON for the status; with 204 the request "succeeds" unapplied."""
        if body is None and status in _DEFAULT_ERROR_BODIES:
            body = _DEFAULT_ERROR_BODIES[status]
        with self._lock:
            self._injected.append(_Injected(method.upper(), path_prefix, status, body,
                                            dict(headers or {}), times))

    def pending_failures(self) -> int:
        """How many injected responses have not been used yet."""
        with self._lock:
            return sum(i.times for i in self._injected)

    # -- the API -------------------------------------------------------------------------------

    def _cluster(self, cluster_id: str) -> _Cluster:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise _not_found("resource")
        return cluster

    def _ratelimit_headers(self) -> dict[str, str]:
        self._remaining = max(0, self._remaining - 1)
        reset = int(datetime.datetime.now(datetime.UTC).timestamp()) + 60
        return {"ratelimit-limit": str(RATELIMIT_LIMIT), "ratelimit-remaining": str(self._remaining),
                "ratelimit-reset": str(reset), "x-request-id": str(uuid.uuid4())}

    def _handle(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, bad_json = raw.decode("utf-8", "replace"), True
        with self._lock:
            self.requests.append(Request(method, target, body))
            out_headers = self._ratelimit_headers()
            request_id = out_headers["x-request-id"]
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, {**_UNAUTHORIZED, "request_id": request_id}, out_headers
            split = urlsplit(target)
            for injected in self._injected:
                if injected.method == method and split.path.startswith(injected.path_prefix):
                    injected.times -= 1
                    if injected.times <= 0:
                        self._injected.remove(injected)
                    return injected.status, copy.deepcopy(injected.body), {**out_headers, **injected.headers}
            try:
                if bad_json:
                    raise ApiError(400, "bad_request", "The request body is not valid JSON.")
                query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                status, result = self._route(method, split.path, query, body)
            except ApiError as err:
                return err.status, {"id": err.error_id, "message": err.message, "request_id": request_id}, \
                    out_headers
            return status, result, out_headers

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        routes: list[tuple[str, dict[str, Any]]] = [
            (r"/v2/account", {"GET": lambda: self._get_account()}),
            (r"/v2/databases", {"GET": lambda: self._list_clusters(query)}),
            (r"/v2/databases/(?P<cid>[^/]+)", {"GET": lambda cid: self._get_cluster(cid)}),
            (r"/v2/databases/(?P<cid>[^/]+)/backups", {"GET": lambda cid: self._list_backups(cid)}),
            (r"/v2/databases/(?P<cid>[^/]+)/firewall", {
                "GET": lambda cid: self._list_rules(cid),
                "PUT": lambda cid: self._put_rules(cid, body),
            }),
            (r"/v2/droplets", {
                "GET": lambda: self._list_droplets(path, query),
                "DELETE": lambda: self._delete_droplets_by_tag(query),
            }),
            (r"/v2/droplets/(?P<did>[^/]+)", {
                "GET": lambda did: self._get_droplet(did),
                "DELETE": lambda did: self._delete_droplet(did),
            }),
        ]
        for pattern, methods in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
            result: tuple[int, Any] = handler(**match.groupdict())
            return result
        raise _not_found("resource")

    def _get_account(self) -> tuple[int, Any]:
        return 200, {"account": {
            "droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 100,
            "email": "ci@example.com", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": True, "status": "active", "status_message": "",
            "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "dbsync"},
        }}

    def _list_clusters(self, query: dict[str, str]) -> tuple[int, Any]:
        tag = query.get("tag_name")
        clusters = [c.to_json() for c in self._clusters.values() if not tag or tag in c.tags]
        return 200, {"databases": clusters}

    def _get_cluster(self, cid: str) -> tuple[int, Any]:
        return 200, {"database": self._cluster(cid).to_json()}

    def _list_backups(self, cid: str) -> tuple[int, Any]:
        return 200, {"backups": copy.deepcopy(self._cluster(cid).backups)}

    def _list_rules(self, cid: str) -> tuple[int, Any]:
        return 200, {"rules": copy.deepcopy(self._cluster(cid).rules)}

    def _put_rules(self, cid: str, body: Any) -> tuple[int, Any]:
        self._replace_rules(self._cluster(cid), body)
        return 204, None

    def _replace_rules(self, cluster: _Cluster, body: Any) -> None:
        """Validate a whole rule list, then replace the cluster's list with it (all or nothing)."""
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            raise _unprocessable("rules is required and must be a list of firewall rules.")
        rules = body["rules"]
        if len(rules) > MAX_RULES:
            raise _unprocessable(f"A database cluster can have at most {MAX_RULES} trusted sources; "
                                 f"{len(rules)} were given.")
        old = {(r["type"], r["value"]): r for r in cluster.rules}
        seen: set[tuple[str, str]] = set()
        new: list[dict[str, Any]] = []
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise _unprocessable(f"rules[{index}] must be an object.")
            rtype, value = rule.get("type"), rule.get("value")
            _validate_rule(index, rtype, value, rule.get("description"))
            assert isinstance(rtype, str) and isinstance(value, str)
            key = (rtype, value)
            if key in seen:
                raise _unprocessable(f"rules[{index}]: duplicate trusted source {rtype} {value}.")
            seen.add(key)
            previous = old.get(key)
            record: dict[str, Any] = {
                "uuid": previous["uuid"] if previous else str(uuid.uuid4()),
                "cluster_uuid": cluster.id,
                "type": rtype,
                "value": value,
                "created_at": previous["created_at"] if previous else _now(),
            }
            if rule.get("description") is not None:
                record["description"] = rule["description"]
            new.append(record)
        cluster.rules = new

    def _list_droplets(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        page = _int_param(query, "page", 1, 1, None)
        tag, name = query.get("tag_name"), query.get("name")
        if tag and name:
            raise _unprocessable("tag_name and name cannot be combined.")
        matching = [d for d in sorted(self._droplets.values(), key=lambda d: d.id)
                    if (not tag or tag in d.tags) and (not name or d.name == name)]
        total = len(matching)
        last = max(1, -(-total // per_page))
        chunk = matching[(page - 1) * per_page: page * per_page]

        def link(p: int) -> str:
            params = {k: v for k, v in query.items() if k not in ("page", "per_page")}
            return f"{self.url}{path}?{urlencode({**params, 'page': p, 'per_page': per_page})}"

        pages: dict[str, str] = {}
        if page > 1:
            pages["first"], pages["prev"] = link(1), link(min(page - 1, last))
        if page < last:
            pages["next"], pages["last"] = link(page + 1), link(last)
        return 200, {"droplets": [d.to_json() for d in chunk], "links": {"pages": pages},
                     "meta": {"total": total}}

    def _droplet_id(self, did: str) -> int:
        if not did.isdigit() or int(did) not in self._droplets:
            raise _not_found("resource")
        return int(did)

    def _get_droplet(self, did: str) -> tuple[int, Any]:
        return 200, {"droplet": self._droplets[self._droplet_id(did)].to_json()}

    def _delete_droplet(self, did: str) -> tuple[int, Any]:
        del self._droplets[self._droplet_id(did)]
        return 204, None

    def _delete_droplets_by_tag(self, query: dict[str, str]) -> tuple[int, Any]:
        tag = query.get("tag_name")
        if not tag:
            raise _unprocessable("tag_name is required to delete droplets by tag.")
        for did in [d.id for d in self._droplets.values() if tag in d.tags]:
            del self._droplets[did]
        return 204, None


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise _unprocessable(f"{name} must be an integer.")
    value = int(raw)
    if value < low:
        raise _unprocessable(f"{name} must be at least {low}.")
    return min(value, high) if high is not None else value


def _validate_rule(index: int, rtype: Any, value: Any, description: Any) -> None:
    where = f"rules[{index}]"
    if not isinstance(rtype, str) or rtype not in RULE_TYPES:
        raise _unprocessable(f"{where}: invalid type {rtype!r}; must be one of {', '.join(sorted(RULE_TYPES))}.")
    if not isinstance(value, str) or not value:
        raise _unprocessable(f"{where}: value is required and must be a string.")
    if description is not None and not isinstance(description, str):
        raise _unprocessable(f"{where}: description must be a string.")
    if rtype == "ip_addr":
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise _unprocessable(f"{where}: {value!r} is not a valid IP address or CIDR range.") from None
        if network.version == 6:
            raise _unprocessable(f"{where}: IPv6 addresses are not supported as trusted sources.")
    elif rtype == "droplet":
        if not value.isdigit():
            raise _unprocessable(f"{where}: {value!r} is not a droplet id.")
    elif rtype in ("k8s", "app"):
        try:
            uuid.UUID(value)
        except ValueError:
            raise _unprocessable(f"{where}: {value!r} is not a {rtype} uuid.") from None
    elif rtype == "tag" and not _TAG_NAME.match(value):
        raise _unprocessable(f"{where}: {value!r} is not a valid tag name.")


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def fake_do(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    """A fresh fake DigitalOcean API for one test; pydo and our code reach it through the env."""
    fake = FakeDigitalOcean()
    fake.start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        for name in _PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))
        monkeypatch.setenv("NO_PROXY", no_proxy)
        monkeypatch.setenv("no_proxy", no_proxy)
        monkeypatch.setenv("DIGITALOCEAN_TOKEN", fake.token)
        monkeypatch.setenv("DIGITALOCEAN_API_URL", fake.url)
        yield fake
    finally:
        fake.stop()
