"""S3-compatible object storage: addresses, the client and its errors, reading objects,
training data from S3, and fetching a bundle (following the registry's `current`) into a
verified local cache. The registry under a prefix (publish, versions, rollback) is
mpgpack.storage.s3_registry.

Credentials, region and endpoint come the standard way (boto3's environment variables, shared
config and credentials files; AWS_ENDPOINT_URL for a non-AWS server). boto3 is the optional
`s3` extra and is imported only when an s3:// address is used.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from mpgpack.core.bundle import MANIFEST
from mpgpack.core.errors import UserError
from mpgpack.core.pointer import Pointer, parse_pointer

SCHEME = "s3://"
POINTER = "current"
BUNDLE_NAME = re.compile(r"^mpg-[0-9a-f]{6,64}$")
CHUNK = 1 << 20


def is_s3(arg) -> bool:
    return isinstance(arg, str) and arg.startswith(SCHEME)


def default_cache() -> Path:
    """Where fetched bundles are kept: $MPGPACK_CACHE/s3, else ~/.cache/mpgpack/s3."""
    return Path(os.environ.get("MPGPACK_CACHE") or Path.home() / ".cache" / "mpgpack") / "s3"


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def child(self, name: str) -> "S3Url":
        base = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Url(self.bucket, base + name)


def parse_s3_url(url: str) -> S3Url:
    """`s3://bucket/key` -> S3Url; refuses anything else with the expected form."""
    if not is_s3(url):
        raise UserError(f"{url!r} is not an S3 address; expected s3://BUCKET/KEY")
    bucket, _, key = url[len(SCHEME):].partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise UserError(f"{url}: {bucket!r} is not a valid bucket name "
                        f"(3-63 lowercase letters, digits, dots, hyphens)")
    if any(part in ("..", ".") for part in key.split("/")):
        raise UserError(f"{url}: '.' and '..' are not allowed in an S3 key")
    return S3Url(bucket, key)


# --- the client and its errors --------------------------------------------------------------

def _boto3():
    try:
        import boto3
        import botocore
    except ImportError:
        raise UserError("s3:// addresses need the optional S3 support: "
                        "pip install 'mpgpack[s3]' (boto3)") from None
    return boto3, botocore


def make_client():
    """An S3 client configured the standard way (env, ~/.aws/config, AWS_ENDPOINT_URL).

    Retries are kept few and timeouts short so that an unreachable endpoint is reported in
    seconds instead of after boto3's default minutes of back-off.
    """
    boto3, botocore = _boto3()
    from botocore.config import Config
    config = Config(connect_timeout=5, read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"})
    try:
        return boto3.session.Session().client("s3", config=config)
    except botocore.exceptions.BotoCoreError as exc:
        raise UserError(f"cannot set up the S3 client: {exc}") from None


def _endpoint(client) -> str:
    return client.meta.endpoint_url if client is not None else "the S3 endpoint"


@contextmanager
def s3_errors(client, url: S3Url | str, action: str):
    """Turns boto3's exceptions into one-line UserErrors that say what to fix."""
    _, botocore = _boto3()
    exc_mod = botocore.exceptions
    try:
        yield
    except exc_mod.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        bucket = url.bucket if isinstance(url, S3Url) else str(url)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                    "ExpiredToken", "AuthorizationHeaderMalformed") or (code == "403" and status == 403):
            raise UserError(f"{action} {url}: {_endpoint(client)} refused the credentials "
                            f"({code}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the "
                            f"profile") from None
        if code == "AccessDenied":
            raise UserError(f"{action} {url}: access denied by {_endpoint(client)}; the "
                            f"credentials lack permission for bucket '{bucket}'") from None
        if code == "NoSuchBucket":
            raise UserError(f"{action} {url}: bucket '{bucket}' does not exist at "
                            f"{_endpoint(client)}") from None
        if code in ("NoSuchKey", "404"):
            hint = " (nothing has been published under this prefix)" if action == "following" else ""
            raise UserError(f"{action} {url}: no such object{hint}") from None
        raise UserError(f"{action} {url}: S3 error {code or status}: "
                        f"{err.get('Message', exc)}") from None
    except (exc_mod.NoCredentialsError, exc_mod.PartialCredentialsError) as exc:
        raise UserError(f"{action} {url}: no usable S3 credentials ({exc}); set "
                        f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE") from None
    except (exc_mod.EndpointConnectionError, exc_mod.ConnectTimeoutError,
            exc_mod.ReadTimeoutError, exc_mod.ConnectionClosedError) as exc:
        raise UserError(f"{action} {url}: cannot reach the S3 endpoint "
                        f"{_endpoint(client)} ({type(exc).__name__}); check AWS_ENDPOINT_URL "
                        f"and the network") from None
    except exc_mod.BotoCoreError as exc:
        raise UserError(f"{action} {url}: {exc}") from None


def check_bucket(client, url: S3Url) -> None:
    """Fails with one clear line when the bucket is missing or the credentials are wrong.

    Done before any upload: some servers create a missing bucket on the first PUT.
    """
    with s3_errors(client, url, "opening"):
        try:
            client.head_bucket(Bucket=url.bucket)
        except _boto3()[1].exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket"):
                raise UserError(f"opening {url}: bucket '{url.bucket}' does not exist at "
                                f"{_endpoint(client)}") from None
            raise


# --- reading objects --------------------------------------------------------------------------

def read_bytes(client, url: S3Url, action: str = "reading") -> bytes:
    with s3_errors(client, url, action):
        return client.get_object(Bucket=url.bucket, Key=url.key)["Body"].read()


def download_file(client, url: S3Url, dest: Path, action: str = "downloading") -> str:
    """Streams an object to dest; returns the sha256 of the bytes written."""
    h = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with s3_errors(client, url, action):
        body = client.get_object(Bucket=url.bucket, Key=url.key)["Body"]
        with open(dest, "wb") as fh:
            for block in iter(lambda: body.read(CHUNK), b""):
                h.update(block)
                fh.write(block)
    return h.hexdigest()


def object_sha256(client, url: S3Url, action: str = "re-reading") -> str:
    h = hashlib.sha256()
    with s3_errors(client, url, action):
        body = client.get_object(Bucket=url.bucket, Key=url.key)["Body"]
        for block in iter(lambda: body.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def list_keys(client, prefix: S3Url) -> list[str]:
    keys = []
    with s3_errors(client, prefix, "listing"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket,
                                                                     Prefix=prefix.key):
            keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def exists(client, url: S3Url) -> bool:
    return url.key in list_keys(client, url)


def list_children(client, prefix: S3Url) -> list[str]:
    """The names of the `folders` directly under a prefix (S3's common prefixes)."""
    names = []
    with s3_errors(client, prefix, "listing"):
        for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.key, Delimiter="/"):
            names += [p["Prefix"][len(prefix.key):].rstrip("/")
                      for p in page.get("CommonPrefixes", [])]
    return names


def download_data(url: str, dest: str | os.PathLike, client=None) -> Path:
    """Downloads one object (a training data file) to dest (a file, or a folder to put it in)."""
    src = parse_s3_url(url)
    if not src.key or src.key.endswith("/"):
        raise UserError(f"{url}: names a prefix, not a data file; expected s3://BUCKET/KEY.csv")
    client = client or make_client()
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / PurePosixPath(src.key).name
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        download_file(client, src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- the pointer ------------------------------------------------------------------------------

def read_pointer(client, pointer: S3Url) -> Pointer:
    """The bundle name and manifest sha256 a `current` object holds (core.pointer's format)."""
    text = read_bytes(client, pointer, "following").decode("utf-8", errors="replace")
    return parse_pointer(text, str(pointer))


def registry_of(url: S3Url) -> S3Url:
    """The registry prefix (with a trailing slash) an address belongs to."""
    key = url.key.rstrip("/")
    last = key.rsplit("/", 1)[-1]
    if last == POINTER or BUNDLE_NAME.match(last):
        key = key[: -len(last)]
    elif key:
        key += "/"
    return S3Url(url.bucket, key)


# --- what a manifest lists -------------------------------------------------------------------

def listed_entries(manifest: dict, is_file: Callable[[str], bool]) -> dict[str, dict]:
    """Every manifest entry with a sha256 of one file, by relative path: all artifacts, and the
    packages' files at any depth (a package may also name a folder, hashed as a tree by its
    packer: not a single object, so it is left to that packer's own check)."""
    entries = {e["path"]: e for e in manifest["artifacts"].values()}

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("path"), str) and "sha256" in node and is_file(node["path"]):
                entries.setdefault(node["path"], node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(manifest.get("packages") or {})
    return entries


# --- fetch ------------------------------------------------------------------------------------

def _version_to_fetch(client, url: S3Url) -> tuple[S3Url, str, str | None]:
    """(version prefix, bundle name, expected manifest sha256) for any accepted address."""
    registry = registry_of(url)
    last = url.key.rstrip("/").rsplit("/", 1)[-1]
    if BUNDLE_NAME.match(last):
        return registry.child(last + "/"), last, None
    pointer = read_pointer(client, registry.child(POINTER))
    return registry.child(pointer.name + "/"), pointer.name, pointer.manifest_sha256


def _safe_relative(rel: str, version: S3Url) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UserError(f"{version}: refusing object with unsafe name {rel!r}")
    return rel


def fetch_bundle(url: str, cache_dir: str | os.PathLike | None = None, client=None) -> Path:
    """Downloads a bundle (following `current`) into a local cache, verified; returns its folder.

    Accepts s3://B/PREFIX/current, s3://B/PREFIX/ (follows its current) or
    s3://B/PREFIX/mpg-<version>/. A cached copy is reused only if its manifest is byte-identical
    to the one in S3 and every sha256 still matches; otherwise the bundle is downloaded afresh
    into a staging folder and renamed into place only once it verified.
    """
    from mpgpack.core.bundle import open_bundle

    client = client or make_client()
    version, name, expected_manifest = _version_to_fetch(client, parse_s3_url(url))
    cache = Path(cache_dir) if cache_dir else default_cache()
    final = cache / version.bucket / version.key.rstrip("/")

    manifest_url = version.child(MANIFEST)
    remote_manifest = read_bytes(client, manifest_url, "fetching")
    Pointer(name, expected_manifest).check(remote_manifest, str(manifest_url),
                                           str(registry_of(version).child(POINTER)))
    if (final / MANIFEST).is_file() and (final / MANIFEST).read_bytes() == remote_manifest:
        try:
            open_bundle(final).verify()
            return final
        except UserError:
            pass                                    # a damaged cache is downloaded again

    manifest = json.loads(remote_manifest)
    if manifest.get("model", {}).get("version") and f"mpg-{manifest['model']['version']}" != name:
        raise UserError(f"{manifest_url} describes mpg-{manifest['model']['version']}, not {name}")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    try:
        keys = [k for k in list_keys(client, version) if not k.endswith("/")]
        rels = {_safe_relative(k[len(version.key):], version) for k in keys}
        listed = listed_entries(manifest, lambda rel: rel in rels)
        missing = sorted(set(listed) - rels)
        if missing:
            raise UserError(f"{version.child(missing[0])}: listed in the manifest but not in S3")
        for rel in sorted(rels - {MANIFEST}):
            digest = download_file(client, version.child(rel), staging / rel, "fetching")
            if rel in listed and digest != listed[rel]["sha256"]:
                raise UserError(f"{version.child(rel)} does not match its sha256 in the manifest "
                                f"(expected {listed[rel]['sha256'][:12]}…, found {digest[:12]}…); "
                                f"refusing the bundle")
        (staging / MANIFEST).write_bytes(remote_manifest)
        open_bundle(staging).verify()               # the same gate every target uses
        if final.exists():
            trash = final.with_name(f".{name}.old-{os.getpid()}")
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def resolve_bundle_arg(arg):
    """For `--bundle` options: an s3:// address becomes a local verified bundle folder
    (downloaded into the cache, following `current`); anything else is returned unchanged."""
    if arg is not None and is_s3(str(arg)):
        return fetch_bundle(str(arg))
    return arg
