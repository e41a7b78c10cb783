"""Publication pages (决定公示): ``/ui/publications`` and one decision's publication.

Thin views over :mod:`server.services.publication`, the same use cases as the API: the
automatic redaction proposal and a preview of exactly what the public will see, the
reviewer's confirmation, publishing, exemption, withdrawal (撤回, with its 3-working-day
clock) and correction (更正, a new version). Each action writes its custody event in
the service. The annual statistics report (统计年报) is linked from here: the public
site renders it (:mod:`server.web.public`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import redirect, render_template, request, url_for

from core.calendar import WorkingCalendar
from core.publication import PublicationState, PublicationStatus, annual_report_reminder
from server.components import components
from server.errors import Invalid
from server.models import Role, utcnow
from server.services import publication
from server.services.annual_report_xlsx import VALUES_ZH
from server.services.case_list import publication_badges
from server.services.clocks import china_date
from server.services.completeness import calendar_for
from server.services.publication import RedactionInput
from server.web.common import person, run, workspace_blueprint

bp = workspace_blueprint("ui_publication", __name__)

STATES = {s.value: s.label_zh for s in PublicationState}
PLACEHOLDER_DOC_NO = "（文书号待填写）"
EDITOR_ROLES = (Role.REVIEWER.value, Role.ADMIN.value)
FIELD_ZH = {"parties": "执法对象", "conclusion": "执法结论", "doc_no": "文书号"}
"""Where redaction found something, as the preview names it (other labels as given)."""


def _calendar() -> WorkingCalendar:
    return calendar_for(components().settings.calendar_file)


def _today() -> date:
    return china_date(utcnow())


def _date_field(name: str) -> date | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(errors={name: ["日期格式为 YYYY-MM-DD (a date: YYYY-MM-DD)"]}) from exc


def _redaction_input() -> RedactionInput:
    form = request.form
    conclusion = form.get("conclusion", "").strip()
    return RedactionInput(
        doc_no=form.get("doc_no", "")[:200],
        conclusion=conclusion[:20000] or None,
        decided_on=_date_field("decided_on"),
    )


@bp.get("/publications")
def publication_list() -> Any:
    """Every decision's publication of the agency, earliest due first, by state."""
    state = request.args.get("state", "")
    views = run(
        publication.list_publications, _calendar(), state=state if state in STATES else None
    )
    badges = run(_badges, [v.publication.case_id for v in views])
    return render_template(
        "publication/list.html",
        views=views,
        badges=badges,
        states=STATES,
        state=state,
    )


def _badges(uow: Any, _principal: Any, case_ids: list[str]) -> dict[str, Any]:
    found = publication_badges(uow, case_ids, _today(), _calendar())
    return {b.publication_id: b for badges in found.values() for b in badges}


def _page(publication_id: str, *, proposal: dict[str, Any] | None = None, **extra: Any) -> str:
    view = run(publication.get_publication, publication_id, _calendar())
    p = view.publication
    can_edit = person().user.role in EDITOR_ROLES
    pending = p.status == PublicationStatus.PENDING.value
    if proposal is None and can_edit and pending and p.draft is None:
        # the automatic proposal, before the reviewer types anything
        proposal = run(
            publication.preview,
            publication_id,
            RedactionInput(doc_no=PLACEHOLDER_DOC_NO),
            _calendar(),
        )
    badge = run(_badges, [p.case_id]).get(p.id)
    return render_template(
        "publication/page.html",
        v=view,
        p=p,
        badge=badge,
        proposal=proposal,
        can_edit=can_edit,
        form=request.form,
        placeholder=PLACEHOLDER_DOC_NO,
        field_zh=FIELD_ZH,
        decision_zh=VALUES_ZH,
        saved=request.args.get("saved", ""),
        **extra,
    )


@bp.get("/publications/<publication_id>")
def publication_page(publication_id: str) -> Any:
    """One decision's publication: state, proposal or preview, actions and history."""
    return _page(publication_id)


@bp.post("/publications/<publication_id>/preview")
def preview(publication_id: str) -> Any:
    """The redacted record with the reviewer's 文书号 and text (nothing is stored)."""
    given = _redaction_input()
    found = run(publication.preview, publication_id, given, _calendar())
    return _page(publication_id, proposal=found, previewed=True)


@bp.post("/publications/<publication_id>/redaction")
def confirm(publication_id: str) -> Any:
    """The reviewer confirms the redacted record; it waits to be published."""
    run(publication.confirm_redaction, publication_id, _redaction_input(), _calendar())
    return _back(publication_id, "confirmed")


@bp.post("/publications/<publication_id>/publish")
def publish(publication_id: str) -> Any:
    """Publish the confirmed record on the public site."""
    run(publication.publish, publication_id, _calendar())
    return _back(publication_id, "published")


@bp.post("/publications/<publication_id>/exempt")
def exempt(publication_id: str) -> Any:
    """Not to be published (法律、行政法规另有规定), with the reason."""
    reason = request.form.get("reason", "")[:2000]
    run(publication.exempt, publication_id, reason, _calendar())
    return _back(publication_id, "exempted")


@bp.post("/publications/<publication_id>/withdraw")
def withdraw(publication_id: str) -> Any:
    """Withdraw a published decision that was changed or revoked; the reason is public."""
    reason = request.form.get("reason", "")[:2000]
    revoked_on = _date_field("revoked_on")
    run(publication.withdraw, publication_id, reason, revoked_on, _calendar())
    return _back(publication_id, "withdrawn")


@bp.post("/publications/<publication_id>/correct")
def correct(publication_id: str) -> Any:
    """Publish a corrected version; the earlier ones stay in the history."""
    reason = request.form.get("reason", "")[:2000]
    run(publication.correct, publication_id, _redaction_input(), reason, _calendar())
    return _back(publication_id, "corrected")


def _back(publication_id: str, saved: str) -> Any:
    return redirect(url_for(".publication_page", publication_id=publication_id, saved=saved))


@bp.get("/reports/annual")
def annual_report() -> Any:
    """The annual statistics report (统计年报): the public page and its downloads."""
    me = person().user
    today = _today()
    years = list(range(today.year - 1, today.year - 6, -1))
    args = {"agency": me.agency.code}
    return render_template(
        "publication/annual.html",
        years=years,
        agency=me.agency,
        args=args,
        reminder=annual_report_reminder(today) if me.role == Role.ADMIN.value else None,
    )
