"""CaseTrail storage: the BlobStore port and its adapters (local filesystem, S3).

Callers use ``open_store(settings)`` and the ``BlobStore`` protocol; keys come from
``storage.keys``; errors from ``storage.errors``. Only ``storage.s3`` imports boto3.
"""

from storage.errors import (
    AlreadyExists,
    ConfigInvalid,
    DeleteRefused,
    DigestMismatch,
    InvalidKey,
    InvalidParts,
    NotFound,
    StorageError,
    StorageFull,
    TooLarge,
    Unavailable,
    UploadNotFound,
)
from storage.factory import open_store
from storage.fixity import FixityResult, check_fixity
from storage.keys import (
    check_key,
    derivative_key,
    is_original_key,
    original_key,
    quarantine_key,
    upload_key,
)
from storage.local import LocalBlobStore
from storage.port import (
    BLOCK_SIZE,
    BlobInfo,
    BlobStore,
    Block,
    ByteStream,
    Capabilities,
    ObjectStat,
    PartInfo,
    UploadInfo,
)

__all__ = [
    "BLOCK_SIZE",
    "AlreadyExists",
    "BlobInfo",
    "BlobStore",
    "Block",
    "ByteStream",
    "Capabilities",
    "ConfigInvalid",
    "DeleteRefused",
    "DigestMismatch",
    "FixityResult",
    "InvalidKey",
    "InvalidParts",
    "LocalBlobStore",
    "NotFound",
    "ObjectStat",
    "PartInfo",
    "StorageError",
    "StorageFull",
    "TooLarge",
    "Unavailable",
    "UploadInfo",
    "UploadNotFound",
    "check_fixity",
    "check_key",
    "derivative_key",
    "is_original_key",
    "open_store",
    "original_key",
    "quarantine_key",
    "upload_key",
]
