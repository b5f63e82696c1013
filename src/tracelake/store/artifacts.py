"""Artifact storage for large span content: local folders and S3.

Locations are URIs: a plain folder path, ``file:///abs/path`` or ``s3://bucket/prefix``.
``ArtifactRepo`` works on full URIs (the store keeps full URIs in ``spans.content_uri``);
``Artifacts`` picks the repo for a URI's scheme.
"""
from __future__ import annotations

import abc
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tracelake.errors import InvalidRequest, NotFound


def join_uri(base: str, *parts: str) -> str:
    """Join URI path segments with "/" (never the OS separator: S3 keys use "/")."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def normalize_root(root: str) -> str:
    """A plain relative folder becomes absolute, so the server's working directory does not matter later."""
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


class ArtifactRepo(abc.ABC):
    """Byte blobs addressed by full URIs of one scheme."""

    @abc.abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_bytes(self, uri: str) -> bytes:
        """Raises ``NotFound`` when there is nothing at ``uri``."""

    @abc.abstractmethod
    def delete_tree(self, uri: str) -> None:
        """Delete everything at or under ``uri`` (no error when absent)."""


class LocalArtifactRepo(ArtifactRepo):
    """Plain folders and ``file://`` URIs. Writes are atomic (temp file + rename)."""

    @staticmethod
    def path(uri: str) -> Path:
        if uri.startswith("file://"):
            parsed = urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidRequest(f"Unsupported file URI {uri!r}: only local paths (file:///...)")
            return Path(unquote(parsed.path))
        return Path(uri)

    def write_bytes(self, uri: str, data: bytes) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, uri: str) -> bytes:
        try:
            return self.path(uri).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"Artifact {uri!r} does not exist") from None

    def delete_tree(self, uri: str) -> None:
        target = self.path(uri)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


class S3ArtifactRepo(ArtifactRepo):
    """``s3://bucket/key`` URIs through boto3 (any S3-compatible endpoint)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InvalidRequest(f"Invalid S3 URI {uri!r}: expected s3://bucket/key")
        return parsed.netloc, parsed.path.lstrip("/")

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self.split(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = self.split(uri)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"Artifact {uri!r} does not exist") from None
        return response["Body"].read()

    def delete_tree(self, uri: str) -> None:
        bucket, key = self.split(uri)
        prefix = key.rstrip("/") + "/"
        self.client.delete_object(Bucket=bucket, Key=key)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


class Artifacts:
    """Dispatch by URI scheme. ``s3_endpoint_url`` points boto3 at MinIO, moto, etc."""

    def __init__(self, s3_endpoint_url: str | None = None, s3_client: Any = None) -> None:
        self._local = LocalArtifactRepo()
        self._s3_endpoint_url = s3_endpoint_url
        self._s3_client = s3_client
        self._s3: S3ArtifactRepo | None = None
        self._lock = threading.Lock()  # the writer and request threads may both open S3 first

    def repo(self, uri: str) -> ArtifactRepo:
        if uri.startswith("s3://"):
            with self._lock:
                if self._s3 is None:
                    client = self._s3_client
                    if client is None:
                        import boto3  # only needed when S3 is used

                        client = boto3.client("s3", endpoint_url=self._s3_endpoint_url)
                    self._s3 = S3ArtifactRepo(client)
                return self._s3
        if "://" in uri and not uri.startswith("file://"):
            raise InvalidRequest(f"Unsupported artifact location {uri!r}: use a folder, file:// or s3://")
        return self._local

    def write_bytes(self, uri: str, data: bytes) -> None:
        self.repo(uri).write_bytes(uri, data)

    def read_bytes(self, uri: str) -> bytes:
        return self.repo(uri).read_bytes(uri)

    def delete_tree(self, uri: str) -> None:
        self.repo(uri).delete_tree(uri)
