# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Case-file export (案卷导出): seal and download a case as a BagIt bag; resume with ``Range``.

``GET /cases/{id}/export?format=tar|zip`` seals a new export and streams it (archivist
or admin; another agency's case → 404, a device token → 403). The response carries
``Content-Length``, ``ETag`` (the export id) and ``Content-Location`` — the sealed
export's own URL, ``/cases/{id}/exports/{export_id}``, which streams the very same
bytes again and honours ``Range`` / ``If-Range`` for resumed downloads.

A fixity failure mid-stream aborts the connection: the client sees fewer bytes than
``Content-Length`` (and no end-of-archive), never a valid-looking shorter bag.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import fields, validate
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from server.api.common import QuerySchema
from server.archive.bag import BagFormat
from server.archive.export import CaseExporter, SealedExport
from server.auth import Principal, authenticate
from server.components import components

blp = Blueprint("export", __name__, url_prefix="", description="案卷导出 Case-file export")


class ExportQuerySchema(QuerySchema):
    format = fields.String(
        load_default="tar",
        validate=validate.OneOf([f.value for f in BagFormat]),
        metadata={"description": "tar (default) or zip"},
    )


def exporter() -> CaseExporter:
    """The app's exporter (503 saying what to do when the log-signing key is missing)."""
    return components().require_exporter()


def _principal() -> Principal:
    with components().unit_of_work() as uow:
        principal = authenticate(uow.session, request.headers.get("Authorization"))
        uow.commit()
    return principal


def _disposition(filename: str) -> str:
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _response(principal: Principal, sealed: SealedExport, case_id: str) -> Response:
    length = sealed.length
    etag = sealed.export_id
    start, end, status = 0, length, 200
    wanted = request.range
    if_range = request.headers.get("If-Range")
    if wanted is not None and (if_range is None or if_range.strip('"') == etag):
        bounds = wanted.range_for_length(length)
        if bounds is None:
            if len(wanted.ranges) == 1:
                raise RequestedRangeNotSatisfiable(length=length)
        else:
            start, end, status = bounds[0], bounds[1], 206
    body = exporter().stream(principal, sealed, start=start, end=end)
    response = Response(
        body,
        status=status,
        mimetype=sealed.recipe.format.media_type,
        direct_passthrough=True,
    )
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Disposition"] = _disposition(sealed.filename)
    response.headers["Content-Location"] = f"/api/v1/cases/{case_id}/exports/{sealed.export_id}"
    response.headers["CaseTrail-Export-Id"] = sealed.export_id
    response.headers["Cache-Control"] = "no-store"
    response.set_etag(etag)
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{length}"
    return response


_ARCHIVE = {
    "description": "BagIt 1.0 bag (tar or zip)",
    "content": {
        "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
    },
}


@blp.route("/cases/<case_id>/export")
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(responses={"200": _ARCHIVE})
def export_case(query: dict[str, Any], case_id: str) -> Response:
    """Seal the case file and download it as a BagIt bag (archivist or admin)."""
    principal = _principal()
    sealed = exporter().seal(principal, case_id, BagFormat(query["format"]))
    return _response(principal, sealed, case_id)


@blp.route("/cases/<case_id>/exports/<export_id>")
@blp.doc(responses={"200": _ARCHIVE, "206": _ARCHIVE})
def download_export(case_id: str, export_id: str) -> Response:
    """Download a sealed case file again, byte-identical; supports Range for resuming."""
    principal = _principal()
    sealed = exporter().open_sealed(
        principal, case_id, export_id, byte_range=request.headers.get("Range")
    )
    return _response(principal, sealed, case_id)
