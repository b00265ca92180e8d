"""The S3 backend of :mod:`dbsync.store`, for DigitalOcean Spaces or any S3-compatible endpoint.

Facts it is built on (see the project's platform notes):
- boto3 >= 1.36 sends CRC checksums by default, which several S3-compatible stores reject, so
  checksums are sent only when required and dbsync keeps its own SHA-256 instead.
- Multipart parts are 5 MiB to 5 GB, at most 10,000 of them; a single PUT is at most 5 GB.
  Parts start at 16 MiB (memory stays small) and double every 1,000 parts, which covers far
  more than any database we back up. A failed upload is aborted, so no part lingers (Spaces
  would delete it after 30 days anyway, and the bucket's lifecycle rule after one).
- Spaces endpoints look like ``https://<region>.digitaloceanspaces.com`` and take
  virtual-hosted addressing; a loopback or IP endpoint (a test server) gets path addressing.

Configuration: endpoint from the URL's ``?endpoint=``, ``--s3-endpoint`` or
``DBSYNC_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``; region likewise (``?region=``,
``AWS_DEFAULT_REGION``, or read off a Spaces endpoint); credentials from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or ``SPACES_ACCESS_KEY_ID`` /
``SPACES_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .errors import StoreError
from .redact import redact, remember_secret
from .store import CHUNK, ObjectInfo, Written

MIN_PART = 5 * 1024 * 1024
DEFAULT_PART = 16 * 1024 * 1024
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"}


def _region_of(endpoint: str | None) -> str | None:
    host = urlsplit(endpoint).hostname if endpoint else None
    if host and host.endswith(".digitaloceanspaces.com"):
        return host.split(".")[0]
    return None


def _is_local(endpoint: str | None) -> bool:
    host = urlsplit(endpoint).hostname if endpoint else None
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class S3Store:
    def __init__(
        self, bucket: str, prefix: str, endpoint: str | None = None, region: str | None = None
    ) -> None:
        env = os.environ
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint or env.get("DBSYNC_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL")
        self.region = (
            region
            or env.get("AWS_DEFAULT_REGION")
            or env.get("AWS_REGION")
            or _region_of(self.endpoint)
            or "us-east-1"
        )
        key_id = env.get("AWS_ACCESS_KEY_ID") or env.get("SPACES_ACCESS_KEY_ID")
        secret = env.get("AWS_SECRET_ACCESS_KEY") or env.get("SPACES_SECRET_ACCESS_KEY")
        remember_secret(secret)
        self.url = f"s3://{bucket}/{self.prefix}" + (f" at {self.endpoint}" if self.endpoint else "")
        self.part_size = max(MIN_PART, int(env.get("DBSYNC_S3_PART_SIZE", DEFAULT_PART)))
        config = Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path" if _is_local(self.endpoint) else "virtual"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=config,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, action: str, key: str, exc: Exception) -> StoreError:
        where = f"backup store {self.url}"
        if isinstance(exc, NoCredentialsError):
            return StoreError(
                f"{where}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY)"
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _CREDENTIAL_CODES or status == 403:
                return StoreError(
                    f"{where}: the credentials were refused ({code or status}) while trying to {action}"
                )
            if code == "NoSuchBucket":
                return StoreError(f"{where}: the bucket {self.bucket!r} does not exist")
            if code in ("NoSuchKey", "404", "NotFound"):
                return StoreError(f"{where}: no object {key!r}")
            message = redact(str(error.get("Message", "")))
            return StoreError(f"{where}: cannot {action} {key!r}: {code} {message}".rstrip())
        if isinstance(exc, BotoCoreError):
            text = redact(str(exc))
            if "Could not connect" in text or "Connect timeout" in text or "connection" in text.lower():
                return StoreError(f"{where}: the endpoint is unreachable ({text})")
            return StoreError(f"{where}: cannot {action} {key!r}: {text}")
        return StoreError(f"{where}: cannot {action} {key!r}: {redact(str(exc))}")

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> Written:
        full = self._key(key)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        part_size = self.part_size
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)[
                            "UploadId"
                        ]
                    self._upload_part(full, upload_id, parts, bytes(buffer[:part_size]))
                    del buffer[:part_size]
                    if len(parts) % 1000 == 0:
                        part_size *= 2
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=full, Body=bytes(buffer))
            else:
                if buffer or not parts:
                    self._upload_part(full, upload_id, parts, bytes(buffer))
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException as exc:
            if upload_id is not None:
                # If even the abort fails, the bucket's lifecycle rule removes the parts.
                with contextlib.suppress(BotoCoreError, ClientError):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            if isinstance(exc, BotoCoreError | ClientError):
                raise self._error("upload", key, exc) from None
            raise
        return Written(key, size, digest.hexdigest())

    def _upload_part(self, full: str, upload_id: str, parts: list[dict[str, Any]], data: bytes) -> None:
        number = len(parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=data
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def read_stream(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._error("read", key, exc) from None
        return self._chunks(body, key)

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("read", key, exc) from None
        finally:
            body.close()

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"][strip:], int(item["Size"]), item["LastModified"]))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", prefix or "/", exc) from None
        return sorted(found, key=lambda o: o.key)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._error("inspect", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("inspect", key, exc) from None
        return ObjectInfo(key, int(answer["ContentLength"]), answer["LastModified"])

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("delete", key, exc) from None
