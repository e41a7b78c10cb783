"""``open_store(settings)``: the one place that reads storage settings.

Settings are a mapping (``CASETRAIL_*`` environment names or the server's
``storage_options()``; names are case-insensitive and the ``casetrail_`` prefix is
optional):

==================  ==================================================================
``storage_url``     ``file:///srv/casetrail/blobs`` or a plain path (local, default
                    ``./var/blobs``), or ``s3://bucket[/prefix]``
``s3_endpoint_url`` S3 endpoint, e.g. ``http://127.0.0.1:8333`` (omit for AWS)
``s3_access_key``   S3 access key id
``s3_secret_key``   S3 secret access key
``s3_region``       default ``us-east-1``
``s3_part_size_mib`` multipart part size, default 16 (5–512)
``s3_retention_days`` lock originals for this many days where Object Lock is enabled
==================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.errors import ConfigInvalid
from storage.local import LocalBlobStore
from storage.port import BlobStore

DEFAULT_ROOT = "./var/blobs"


def _normalise(settings: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in settings.items():
        if value is None or value == "":
            continue
        lowered = name.lower()
        lowered = lowered.removeprefix("casetrail_")
        out[lowered] = str(value)
    return out


def _int_setting(
    opts: dict[str, str], name: str, low: int, high: int, problems: list[str]
) -> int | None:
    if name not in opts:
        return None
    try:
        value = int(opts[name])
    except ValueError:
        problems.append(f"{name} 须为整数 / must be an integer: {opts[name]!r}")
        return None
    if not low <= value <= high:
        problems.append(f"{name} 须在 {low}–{high} 之间 / must be within {low}..{high}: {value}")
        return None
    return value


def open_store(settings: Mapping[str, object]) -> BlobStore:
    """Build the configured ``BlobStore``; ``ConfigInvalid`` lists every problem at once.

    No network I/O happens here; call ``store.ping()`` for a health check.
    """
    opts = _normalise(settings)
    url = opts.get("storage_url", DEFAULT_ROOT)
    parts = urlsplit(url)
    problems: list[str] = []
    if parts.scheme in ("", "file"):
        path = unquote(parts.path) if parts.scheme == "file" else url
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            problems.append(f"storage_url 只支持本机路径 / file URL must be local: {url!r}")
        if problems:
            raise ConfigInvalid("存储配置无效 / invalid storage settings", problems)
        return LocalBlobStore(Path(path))
    if parts.scheme != "s3":
        raise ConfigInvalid(
            "存储配置无效 / invalid storage settings",
            [f"storage_url 须为 file:// 路径或 s3://bucket / unsupported scheme: {url!r}"],
        )
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        problems.append("storage_url 缺少桶名 / s3 URL needs a bucket: s3://bucket[/prefix]")
    for name in ("s3_access_key", "s3_secret_key"):
        if name not in opts:
            problems.append(f"缺少 {name} / missing {name} (CASETRAIL_{name.upper()})")
    part_mib = _int_setting(opts, "s3_part_size_mib", 5, 512, problems)
    retention = _int_setting(opts, "s3_retention_days", 1, 36_500, problems)
    if problems:
        raise ConfigInvalid("存储配置无效 / invalid storage settings", problems)

    from storage.s3 import S3BlobStore, make_s3_client  # boto3 loads only when S3 is used

    client = make_s3_client(
        endpoint_url=opts.get("s3_endpoint_url"),
        access_key=opts["s3_access_key"],
        secret_key=opts["s3_secret_key"],
        region=opts.get("s3_region", "us-east-1"),
    )
    return S3BlobStore(
        client,
        bucket,
        prefix=prefix + "/" if prefix else "",
        part_size=(part_mib or 16) << 20,
        retention_days=retention,
    )
