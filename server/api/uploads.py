# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""tus 1.0.0 uploads (断点续传上传) at ``/api/v1/uploads``.

Core + creation + creation-with-upload + checksum + termination + expiration. Bodies are
read from the WSGI input in 1 MiB blocks by :mod:`server.services.ingest`, never as a
whole. Errors use the one JSON error shape, with the tus headers on every response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from gunicorn.http.errors import ParseException

from server import tus
from server.api.common import Blueprint
from server.auth import bearer_token
from server.components import components
from server.errors import Invalid
from server.services.ingest import TERMINATED, Credentials, Ingest, UploadView
from server.services.receipts import HEADER as RECEIPT_HEADER
from server.services.receipts import encode_header
from server.settings import Settings

blp = Blueprint("uploads", __name__, url_prefix="/uploads", description="tus 断点续传上传 Uploads")


@blp.before_request
def _check_credentials_then_version() -> None:
    """No or malformed credentials: 401 before the tus version is looked at (412).

    Only the header's form is checked here (no database); the ingest service
    authenticates the token itself. ``OPTIONS`` is tus discovery and CORS preflight:
    it needs neither.
    """
    if request.method != "OPTIONS":
        bearer_token(request.headers.get("Authorization"))
        tus.check_version(request.headers.get("Tus-Resumable"))


@blp.after_request
def _tus_headers(response: Response) -> Response:
    """Every response of the blueprint, error responses included, carries the tus headers."""
    response.headers.update(tus.base_headers())
    response.headers.update(tus.cors_headers(request.headers.get("Origin")))
    return response


def _size(name: str) -> int | None:
    try:
        return tus.parse_size(request.headers.get(name), name)
    except ValueError as exc:
        raise Invalid(str(exc), {name: [str(exc)]}) from None


def _checksum() -> tus.Checksum | None:
    try:
        return tus.parse_checksum(request.headers.get("Upload-Checksum"))
    except ValueError as exc:
        raise Invalid(str(exc), {"Upload-Checksum": [str(exc)]}) from None


def _body() -> tuple[Any, int | None]:
    """The raw WSGI input and its declared length (``None`` for a chunked body)."""
    environ = request.environ
    length = _size("Content-Length") if environ.get("CONTENT_LENGTH") else None
    if length is None and not environ.get("wsgi.input_terminated"):
        length = 0  # no length, no chunked framing: the server cannot tell the end
    if length is None:
        return _ChunkedBody(environ["wsgi.input"]), None
    return environ["wsgi.input"], length


class _ChunkedBody:
    """A chunked body whose framing errors (gunicorn's parser) read as ``OSError``.

    The ingest service treats ``OSError`` as a client gone mid-body (400, bytes kept);
    it catches nothing broader, so a bug is never mistaken for a disconnect.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._raw.read(size))
        except ParseException as exc:
            raise OSError(f"malformed chunked body: {exc}") from exc


def _require_offset_stream() -> None:
    mimetype = request.mimetype
    if mimetype != tus.OFFSET_CONTENT_TYPE:
        raise tus.WrongContentType(
            f"PATCH 请求体须为 Content-Type: {tus.OFFSET_CONTENT_TYPE} "
            f"(send the chunk as Content-Type: {tus.OFFSET_CONTENT_TYPE}), got {mimetype!r}",
            {"Content-Type": [f"must be {tus.OFFSET_CONTENT_TYPE}"]},
        )


def _service() -> Ingest:
    return components().ingest


def _as(use_case: Callable[[Credentials], UploadView]) -> UploadView:
    """Run ``use_case`` with the request's credentials; it authenticates them inside its
    first unit of work (no transaction of their own)."""
    return use_case(Credentials(request.headers.get("Authorization")))


def _headers(view: UploadView) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(view.offset),
        "Upload-Length": str(view.length),
        "Cache-Control": "no-store",
    }
    if view.expires_at is not None and view.status == "active":
        headers["Upload-Expires"] = tus.http_date(view.expires_at)
    if view.receipt is not None:
        headers[RECEIPT_HEADER] = encode_header(view.receipt)
    return headers


def _base_url() -> str:
    """Where clients reach this endpoint: ``CASETRAIL_PUBLIC_URL`` when set (behind a proxy
    the request's own host is not the one devices use), else the request's URL."""
    public = components().settings.public_url
    if public != Settings.public_url:  # set, not the built-in default
        return public.rstrip("/") + request.path.rstrip("/")
    return request.base_url.rstrip("/")


def _empty(status: int, headers: dict[str, str]) -> Response:
    response = Response(status=status)
    del response.headers["Content-Type"]  # no body, so no (default text/html) media type
    response.headers.update(headers)
    return response


_DIGITS = {"type": "string", "pattern": "^[0-9]{1,19}$"}
_TUS_RESUMABLE = {
    "in": "header",
    "name": "Tus-Resumable",
    "required": True,
    "schema": {"type": "string", "enum": [tus.TUS_VERSION]},
    "description": "tus protocol version (any other, or none: 412 with Tus-Version)",
}
_UPLOAD_CHECKSUM = {
    "in": "header",
    "name": "Upload-Checksum",
    "required": False,
    # the digest's base64 length is fixed by the algorithm (sha1 20, sha256 32, md5 16 bytes)
    "schema": {
        "type": "string",
        "pattern": "^(sha1 [A-Za-z0-9+/]{27}=|sha256 [A-Za-z0-9+/]{43}=|md5 [A-Za-z0-9+/]{22}==)$",
    },
    "description": "<algorithm> <base64 digest> of this request's body (460 when it differs)",
}
_CHUNK = {
    "content": {tus.OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


@blp.route("", methods=["OPTIONS"], provide_automatic_options=False)
@blp.route("/<upload_id>", methods=["OPTIONS"], provide_automatic_options=False)
@blp.response(204)
@blp.doc(security=[{}, {"bearer": []}])  # a token may be sent, none is needed
def options(upload_id: str | None = None) -> Response:
    """tus discovery: version, extensions, maximum size, checksum algorithms."""
    config = _service().config
    return _empty(204, tus.options_headers(config.max_size, config.checksum_chunk_max))


@blp.route("", methods=["POST"])
@blp.response(201)
@blp.doc(
    parameters=[
        _TUS_RESUMABLE,
        {
            "in": "header",
            "name": "Upload-Length",
            "required": True,
            "schema": _DIGITS,
            "description": "the file's size in bytes, as in the signed manifest",
        },
        {
            "in": "header",
            "name": "Upload-Metadata",
            "required": False,
            "schema": {"type": "string", "maxLength": tus.MAX_METADATA_BYTES},
            "description": "tus metadata: evidence_id (and filename) of an announced file",
        },
        _UPLOAD_CHECKSUM,
    ],
    requestBody={**_CHUNK, "required": False},  # creation-with-upload: the first chunk
)
def create_upload() -> Response:
    """Create an upload for one announced evidence file (Upload-Length, Upload-Metadata)."""
    if request.headers.get("Upload-Defer-Length"):
        raise Invalid(
            "不支持延后声明长度，请发送 Upload-Length (deferred length is not supported; "
            "send Upload-Length: the size in the signed manifest)",
            {"Upload-Defer-Length": ["not supported"]},
        )
    length = _size("Upload-Length")
    if length is None:
        raise Invalid(
            "缺少 Upload-Length，请发送文件的字节数 (Upload-Length missing: send the file size)",
            {"Upload-Length": ["required"]},
        )
    metadata, problems = tus.parse_metadata(request.headers.get("Upload-Metadata"))
    if problems:
        raise Invalid(
            "Upload-Metadata 格式错误 (malformed Upload-Metadata)", {"Upload-Metadata": problems}
        )
    body = None
    body_length = None
    checksum = None
    if request.headers.get("Content-Type") or request.content_length:
        _require_offset_stream()
        body, body_length = _body()
        checksum = _checksum()
    view = _as(
        lambda p: _service().create(
            p, length, metadata, body=body, body_length=body_length, checksum=checksum
        )
    )
    headers = _headers(view)
    headers["Location"] = f"{_base_url()}/{view.id}"
    return _empty(201, headers)


@blp.route("/<upload_id>", methods=["HEAD"])
@blp.response(200)
@blp.doc(parameters=[_TUS_RESUMABLE])
def upload_status(upload_id: str) -> Response:
    """The upload's durable offset and length (resume from Upload-Offset)."""
    view = _as(lambda p: _service().status(p, upload_id))
    if view.status not in ("active", "completed"):
        raise tus.UploadGone(
            "此上传已终止、过期或核验失败，无法续传：请新建上传；核验失败时请在设备上核对后重新采集 "
            "(upload terminated, expired or failed verification: create a new upload; after a "
            "failed verification, check the file on the device and capture it again)"
        )
    return _empty(200, _headers(view))


@blp.route("/<upload_id>", methods=["PATCH"])
@blp.response(204)
@blp.doc(
    parameters=[
        _TUS_RESUMABLE,
        {
            "in": "header",
            "name": "Upload-Offset",
            "required": True,
            "schema": _DIGITS,
            "description": "where this chunk starts: the offset HEAD reported",
        },
        _UPLOAD_CHECKSUM,
    ],
    requestBody={**_CHUNK, "required": True},
)
def append(upload_id: str) -> Response:
    """Append the body at Upload-Offset (Content-Type: application/offset+octet-stream)."""
    _require_offset_stream()
    offset = _size("Upload-Offset")
    if offset is None:
        raise Invalid("缺少 Upload-Offset (Upload-Offset missing)", {"Upload-Offset": ["required"]})
    checksum = _checksum()
    body, body_length = _body()
    view = _as(lambda p: _service().append(p, upload_id, offset, body, body_length, checksum))
    return _empty(204, _headers(view))


@blp.route("/<upload_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(parameters=[_TUS_RESUMABLE])
def terminate(upload_id: str) -> Response:
    """Terminate the upload and discard its bytes (a stored original is never touched)."""

    def run(p: Credentials) -> UploadView:
        _service().terminate(p, upload_id)
        return UploadView(upload_id, "", 0, 0, TERMINATED, None)

    _as(run)
    return _empty(204, {})
