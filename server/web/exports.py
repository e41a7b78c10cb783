"""Archive pages: export a case in the background (``/ui/cases/<id>/export``), follow its
progress (htmx polls the job fragment each second), download the sealed bag.

The job runs in this server process (:func:`server.api.export.launch`); its state is in
the database, so progress survives a reload and shows in any server process.
"""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from server.api.export import disposition, exporter, launch
from server.archive.export import EXPORT_ROLES
from server.components import components
from server.services import cases, exports
from server.web.common import person, run, workspace_blueprint

bp = workspace_blueprint("ui_exports", __name__)


def can_export() -> bool:
    """Whether the signed-in person may export (archivist or admin)."""
    return person().principal.role in EXPORT_ROLES


@bp.get("/cases/<case_id>/export")
def export_page(case_id: str) -> Any:
    """The case's exports: start one, follow running ones, download finished ones."""
    case = run(cases.get_case, case_id)
    jobs = run(exports.case_jobs, case.id)
    return render_template("exports/page.html", case=case, jobs=jobs)


@bp.post("/cases/<case_id>/exports")
def start(case_id: str) -> Any:
    """Start a background export (导出) of the case file."""
    components().require_exporter()
    job = run(exports.start_export, case_id, request.form.get("format", "tar"))
    launch(job.id)
    return redirect(url_for("ui_exports.export_page", case_id=case_id))


@bp.get("/export-jobs/<job_id>")
def job_fragment(job_id: str) -> Any:
    """One job's progress row (htmx polls it while the job runs)."""
    found = run(exports.get_job, job_id)
    return render_template("exports/_job.html", v=found)


@bp.get("/cases/<case_id>/exports/<export_id>/download")
def download(case_id: str, export_id: str) -> Response:
    """Download a sealed bag (a ``downloaded`` custody event first)."""
    principal = person().principal
    sealed = exporter().open_sealed(principal, case_id, export_id, byte_range=None)
    response = Response(
        exporter().stream(principal, sealed),
        mimetype=sealed.recipe.format.media_type,
        direct_passthrough=True,
    )
    response.content_length = sealed.length
    response.headers["Content-Disposition"] = disposition(sealed.filename)
    response.headers["Cache-Control"] = "no-store"
    return response
