"""Ingest (入库): tus uploads streamed into storage, verified against the signed manifest.

Use cases (no Flask): :meth:`Ingest.create`, :meth:`Ingest.status` (tus HEAD),
:meth:`Ingest.append` (PATCH), :meth:`Ingest.terminate` (DELETE) and
:meth:`Ingest.expire`. An upload is bound to one announced ``evidence`` row; the server
knows the expected size and SHA-256 from the device's signed capture manifest.

Streaming and durability
    A PATCH body is read in 1 MiB blocks and hashed (SHA-256, state saved with
    :mod:`server.hashstate`) in the same pass, in a worker thread beside the reads and
    writes; the state is saved only after the hash has caught up with a durable step. Bytes become storage *parts*; on a store
    with a minimum part size (S3: 5 MiB) bytes are gathered in one part buffer, and a
    remainder below the minimum at the end of a PATCH is written as a scratch object
    (``uploads/<id>/tail``) before it counts. After every durable step the database
    row records ``parts_count``, ``parts_size``, ``tail_size``, ``offset`` and the hash
    state, in one short transaction: ``Upload-Offset`` never claims bytes that are not
    durably stored, and a resumed upload may land on any server process. A step that
    was stored but not recorded (a crash in between) is simply redone: the next part
    with the same number replaces it; a longer tail is read only up to ``tail_size``.

One PATCH at a time
    ``uploads.lock_owner`` / ``lock_expires_at`` form a lease taken by one atomic
    ``UPDATE … WHERE lock is free or expired``, renewed after every read of the body
    (before a block goes on to the store) and checked at every durable step. Right
    before each part or tail is written, one ``UPDATE`` that must touch exactly one row
    checks the lease *and* that the database recorded no more parts than this request
    knows: a request that lost its lease never replaces a recorded part. A second PATCH
    gets 423; a dead request's lease expires.

Completion
    On the last byte, size and SHA-256 are compared with the manifest. A match is
    completed with the parts recorded in ``upload_parts`` (size and ETag as the store
    answered each put); the running SHA-256 is trusted only when the store's parts are
    exactly those and add up to the length, else the store re-hashes. It is completed
    write-once at ``storage.keys.original_key(sha256)`` (an existing object
    there holds the same verified bytes and is reused), the evidence row is ``stored``,
    custody events ``ingest_verified`` and ``stored`` and a signed checkpoint are
    committed together with the signed receipt; the evidence row is read ``FOR UPDATE``
    there, so two uploads of one evidence finishing at once store it once (the second
    finds it ``stored`` and returns the same receipt). A mismatch is quarantined and logged
    as ``ingest_mismatch``. Completion is idempotent: after a crash between storage
    completion and the commit, a HEAD or a re-sent PATCH finds the object at the
    content key, re-reads it to confirm the digest, and finishes.

If the saved hash state is missing or corrupt, the digest is re-derived from the
stored bytes by the store at completion (it re-reads them) instead of trusting it.

The package, after tusd's handler / data store / locker split
    :mod:`.service` — the use cases (create, status, append) over :mod:`.ending`
    (terminate, expire, the reconciler's finish and abandon), :mod:`.completion`
    (verify, adopt, store write-once, quarantine, commit in the log's sequencer batch),
    :mod:`.pump` (the part pump and recorder), :mod:`.lease` (the upload lease),
    :mod:`.bodies` (request-body readers) and :mod:`.common` (settings, views).
"""

from server.services.ingest.bodies import _body_blocks
from server.services.ingest.common import (
    ACTIVE,
    COMPLETED,
    EMPTY_SHA256,
    ENDED_ABANDONED,
    ENDED_EXPIRED,
    ENDED_TERMINATED,
    FAILED,
    MISMATCH_MESSAGE,
    TERMINATED,
    Caller,
    ClientGone,
    Credentials,
    IngestConfig,
    UploadView,
)
from server.services.ingest.service import Ingest

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "EMPTY_SHA256",
    "ENDED_ABANDONED",
    "ENDED_EXPIRED",
    "ENDED_TERMINATED",
    "FAILED",
    "MISMATCH_MESSAGE",
    "TERMINATED",
    "Caller",
    "ClientGone",
    "Credentials",
    "Ingest",
    "IngestConfig",
    "UploadView",
    "_body_blocks",
]
