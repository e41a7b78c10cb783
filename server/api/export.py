# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Case-file export (案卷导出): seal and download a case as a BagIt bag; resume with ``Range``.

Creating an export is a ``POST``:

* ``POST /cases/{id}/exports`` ``{"format": "tar"}`` starts a background export job
  (202, ``Location: /api/v1/export-jobs/{job_id}``); ``GET /export-jobs/{job_id}``
  reports its progress (bytes, files, seconds left) and, when done, the export id, the
  archive's SHA-256 and its download URL. Jobs live in the database.
* ``POST /cases/{id}/export?format=tar|zip`` seals a new export and streams it at once.
  ``GET`` on that URL creates nothing: it answers 405 (``Allow: POST``) saying to POST
  (see ``docs/export-jobs.md``).
* ``GET /cases/{id}/exports`` lists the case's recent export jobs (newest first), each
  with its export id, digest and download URL once done.

Both need an archivist or admin (another agency's case → 404, a device token → 403). The response carries
``Content-Length``, ``ETag`` (the export id) and ``Content-Location`` — the sealed
export's own URL, ``/cases/{id}/exports/{export_id}``, which streams the very same
bytes again and honours ``Range`` / ``If-Range`` for resumed downloads.

A fixity failure mid-stream aborts the connection: the client sees fewer bytes than
``Content-Length`` (and no end-of-archive), never a valid-looking shorter bag.
"""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import quote

from flask import Response, request
from flask.views import MethodView
from marshmallow import fields, validate
from werkzeug.exceptions import MethodNotAllowed, RequestedRangeNotSatisfiable

from server.api.common import BaseSchema, Blueprint, QuerySchema, call
from server.archive.bag import BagFormat
from server.archive.export import CaseExporter, SealedExport
from server.auth import Principal, authenticate
from server.components import components
from server.services import exports
from server.services.completeness import calendar_for

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


def disposition(filename: str) -> str:
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
    response.headers["Content-Disposition"] = disposition(sealed.filename)
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


CREATE_WITH_POST = (
    "创建导出须用 POST（POST /api/v1/cases/{case_id}/export 立即封存并下载，或 POST "
    "/api/v1/cases/{case_id}/exports 启动后台导出任务）；GET 只读取已有导出：GET "
    "/api/v1/cases/{case_id}/exports 列出，GET /api/v1/cases/{case_id}/exports/<导出编号> 下载 "
    "(creating an export is a POST: POST this URL to seal and download at once, or POST "
    "/api/v1/cases/{case_id}/exports to start a job; GET only reads existing exports)"
)


@blp.route("/cases/<case_id>/export")
class CaseExport(MethodView):
    """Seal and download at once: ``POST``; ``GET`` creates nothing (405)."""

    @blp.arguments(ExportQuerySchema, location="query")
    @blp.doc(responses={"200": _ARCHIVE})
    def post(self, query: dict[str, Any], case_id: str) -> Response:
        """Seal the case file and download it as a BagIt bag (archivist or admin)."""
        principal = _principal()
        sealed = exporter().seal(principal, case_id, BagFormat(query["format"]))
        return _response(principal, sealed, case_id)

    @blp.doc(
        deprecated=True,
        security=[],  # answers every caller alike, token or none
        parameters=[
            {
                "in": "query",
                "name": "format",
                "schema": {"type": "string"},
                "description": "ignored: what old clients sent with the GET",
            }
        ],
        responses={"405": {"description": "creating an export is a POST (Allow: POST)"}},
    )
    def get(self, case_id: str) -> NoReturn:
        """Creates nothing: 405 saying to POST (GET once created an export; it reads only now)."""
        refused = MethodNotAllowed(valid_methods=["POST"])
        refused.data = {"message": CREATE_WITH_POST.format(case_id=case_id)}  # type: ignore[attr-defined]
        raise refused


class ExportJobRequestSchema(BaseSchema):
    format = fields.String(
        load_default="tar",
        validate=validate.OneOf([f.value for f in BagFormat]),
        metadata={"description": "tar (default) or zip"},
    )


class ExportJobSchema(BaseSchema):
    id = fields.Function(lambda v: v.job.id)
    case_id = fields.Function(lambda v: v.job.case_id)
    status = fields.Function(
        lambda v: v.job.status, metadata={"description": "queued | running | done | failed"}
    )
    state_zh = fields.String()
    format = fields.Function(lambda v: v.job.format)
    percent = fields.Integer()
    seconds_left = fields.Integer(allow_none=True)
    bytes_done = fields.Function(lambda v: v.job.bytes_done)
    bytes_total = fields.Function(lambda v: v.job.bytes_total)
    files_done = fields.Function(lambda v: v.job.files_done)
    files_total = fields.Function(lambda v: v.job.files_total)
    export_id = fields.Function(lambda v: v.job.export_id)
    sha256 = fields.Function(
        lambda v: v.job.sha256, metadata={"description": "SHA-256 of the whole archive"}
    )
    error = fields.Function(lambda v: v.job.error)
    download_url = fields.Function(
        lambda v: (
            f"/api/v1/cases/{v.job.case_id}/exports/{v.job.export_id}"
            if v.job.status == "done"
            else None
        )
    )
    created_at = fields.Function(lambda v: v.job.created_at.isoformat())
    finished_at = fields.Function(
        lambda v: v.job.finished_at.isoformat() if v.job.finished_at else None
    )


def launch(job_id: str) -> None:
    """Run a queued export job in a background thread of this server process."""
    parts = components()
    sealing = parts.require_exporter()
    settings = parts.settings
    exports.run_in_background(
        job_id,
        uow_factory=parts.unit_of_work,
        exporter=sealing,
        streaming_exporter=lambda store: CaseExporter(
            parts.unit_of_work, store, parts.signer(), calendar=calendar_for(settings.calendar_file)
        ),
        store=parts.store,
    )


@blp.route("/cases/<case_id>/exports")
class CaseExports(MethodView):
    """A case's export jobs: start one (``POST``), list them (``GET``)."""

    @blp.arguments(ExportJobRequestSchema, required=False)  # no body: a tar
    @blp.response(202, ExportJobSchema)
    def post(self, body: dict[str, Any], case_id: str) -> Any:
        """Start exporting the case file in the background (archivist or admin)."""
        components().require_exporter()  # 503 before a job that could never run
        job = call(exports.start_export, case_id, body["format"])
        launch(job.id)
        return exports.view(job), 202, {"Location": f"/api/v1/export-jobs/{job.id}"}

    @blp.response(200, ExportJobSchema(many=True))
    def get(self, case_id: str) -> Any:
        """The case's recent export jobs, newest first (archivist or admin); creates nothing."""
        return call(exports.case_jobs, case_id)


@blp.route("/export-jobs/<job_id>")
@blp.response(200, ExportJobSchema)
def get_export_job(job_id: str) -> Any:
    """Progress of an export job; when done, the export id, digest and download URL."""
    return call(exports.get_job, job_id)


@blp.route("/cases/<case_id>/exports/<export_id>")
@blp.doc(responses={"200": _ARCHIVE, "206": _ARCHIVE})
def download_export(case_id: str, export_id: str) -> Response:
    """Download a sealed case file again, byte-identical; supports Range for resuming."""
    principal = _principal()
    sealed = exporter().open_sealed(
        principal, case_id, export_id, byte_range=request.headers.get("Range")
    )
    return _response(principal, sealed, case_id)
