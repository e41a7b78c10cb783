"""The verify page (``/ui/verify``): an archivist uploads a bag and reads every finding.

The upload is streamed by Werkzeug's form parser to a temporary file and copied in
blocks into the server's spool directory under a fresh name — never read whole into
memory — then checked by :func:`server.services.bag_check.check_bag` (what ``casetrail
verify`` prints) and deleted.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from flask import render_template, request

from server.archive.export import EXPORT_ROLES
from server.components import components
from server.errors import Forbidden, Invalid
from server.services.bag_check import check_bag
from server.web.common import person, workspace_blueprint

bp = workspace_blueprint(
    "ui_verify", __name__, body_limit=lambda: components().settings.max_upload_size
)

SUFFIXES = (".tar", ".zip")
BLOCK = 1 << 20


@bp.before_request
def _archivists() -> None:
    if person().principal.role not in EXPORT_ROLES:
        raise Forbidden("只有档案管理员或管理员可以核验案卷 (archivists and admins verify bags)")


@bp.get("/verify")
def verify_form() -> Any:
    """The upload form."""
    return render_template("verify.html", result=None, filename=None)


@bp.post("/verify")
def verify_upload() -> Any:
    """Check an uploaded bag and show every finding."""
    upload = request.files.get("bag")
    name = (upload.filename or "") if upload else ""
    suffix = Path(name).suffix.lower()
    if upload is None or suffix not in SUFFIXES:
        raise Invalid(
            errors={"bag": ["请选择 .tar 或 .zip 格式的案卷包 (choose a .tar or .zip bag)"]}
        )
    spool = components().settings.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool, prefix="verify-") as work:
        target = Path(work) / f"bag{suffix}"
        with target.open("wb") as out:
            shutil.copyfileobj(upload.stream, out, BLOCK)
        try:
            result = check_bag(target)
        except (OSError, ValueError) as exc:
            raise Invalid(f"无法读取案卷包 (cannot read the bag): {exc}") from exc
    return render_template("verify.html", result=result, filename=name)
