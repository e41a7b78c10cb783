"""Case pages: the list (``/ui/cases``), a case (``/ui/cases/<id>``), waivers and 法制审核.

Thin views: values come from :mod:`server.services.case_list` and
:mod:`server.services.case_view`; waivers and reviews go through the legal engineer's
services (:func:`server.services.completeness.add_waiver`,
:func:`server.services.legal_review.record_review`). The list's filter form swaps only
the table when htmx is there (``HX-Request``) and works as a plain GET form without it.

The decision form and the 法制审核 form share one draft: the gates' refusal of a draft is
logged, the case page shows the latest refused draft (:func:`legal_review.refused_draft`)
with its digest and each article's reasons, the review form carries exactly that draft,
and the decision form is filled with it. Both forms are read by the API's
``DraftSchema`` (:func:`server.api.legal_review.draft_from_form`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from flask import jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from core.calendar import WorkingCalendar
from core.errors import CoreError
from core.legal_review import MEASURES
from core.publication import PublicationState, annual_report_reminder
from core.standards import list_standards
from server.api.legal_review import draft_from_form
from server.components import components
from server.errors import Conflict, Invalid
from server.models import Case, Role, User, utcnow
from server.services import case_list as case_list_service
from server.services import case_view, custody_proofs, legal_review
from server.services import completeness as completeness_service
from server.services.case_list import Flag, ListQuery
from server.services.cases import pinned_standard
from server.services.clocks import china_date
from server.services.completeness import calendar_for
from server.web.common import person, run, workspace_blueprint

bp = workspace_blueprint("ui_cases", __name__)

FLAG_NAMES = {
    Flag.MISSING.value: "缺项",
    Flag.DUE_SOON.value: "即将到期",
    Flag.OVERDUE.value: "已逾期",
}
STATUS_NAMES = {
    "complete": "完整",
    "incomplete": "不完整",
    "complete_with_waivers": "完整（含豁免）",
    "not_assessable": "无法评估",
}
PUBLICATION_STATES = {s.value: s.label_zh for s in PublicationState}
CASE_STATUS = {"open": "办理中", "closed": "已结案"}
OUTCOMES = {"passed": "通过", "returned": "退回"}


def calendar() -> WorkingCalendar:
    """The working-day calendar the server is configured with."""
    return calendar_for(components().settings.calendar_file)


def _today() -> date:
    return china_date(utcnow())


def _query() -> ListQuery:
    args = request.args
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        page = 1
    return ListQuery(
        text=args.get("q", "")[:200],
        category=args.get("category", ""),
        stage=args.get("stage", ""),
        status=args.get("status", ""),
        officer_id=args.get("officer", ""),
        flag=args.get("flag", ""),
        publication=args.get("publication", ""),
        sort=args.get("sort", "created"),
        descending=args.get("order", "desc") != "asc",
        page=page,
    )


def _inspectors() -> list[User]:
    return _agency_users(Role.INSPECTOR)


def _colleagues() -> list[User]:
    """People of the agency who may chair a hearing (听证主持人)."""
    return _agency_users(None)


def _agency_users(role: Role | None) -> list[User]:
    principal = person().principal
    sql = select(User).where(User.agency_id == principal.agency_id)
    if role is not None:
        sql = sql.where(User.role == role.value)
    with components().unit_of_work() as uow:
        found = list(uow.session.scalars(sql.order_by(User.display_name)))
        uow.session.expunge_all()  # keep them readable after the unit rolls back
    return found


def stage_name(case: Case) -> str:
    """The Chinese name of the case's current stage under its pinned standard."""
    if not case.current_stage:
        return "未开始"
    try:
        found = pinned_standard(case).stage(case.current_stage)
    except CoreError:
        found = None
    return found.name_zh if found is not None else case.current_stage


@bp.get("/cases")
def case_list() -> Any:
    """The case list (案件列表) with search, filters, sorting and pages."""
    query = _query()
    found = run(case_list_service.list_page, query, today=_today(), calendar=calendar())
    standards = {s.id: s.name_zh for s in list_standards()}
    values = {
        "query": query,
        "page": found,
        "standards": standards,
        "flags": FLAG_NAMES,
        "publication_states": PUBLICATION_STATES,
        "status_names": STATUS_NAMES,
        "case_status": CASE_STATUS,
        "args": request.args,
        "stage_name": stage_name,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "case-table":
        return render_template("cases/_table.html", **values)
    admin = person().user.role == Role.ADMIN.value
    reminder = annual_report_reminder(_today()) if admin else None
    return render_template("cases/list.html", inspectors=_inspectors(), reminder=reminder, **values)


@bp.get("/cases/<case_id>")
def case_page(case_id: str, refusal: str = "") -> Any:
    """One case: header, stages, findings with waivers, evidence, custody, 法制审核.

    The case's latest refused decision draft, if any, is shown with its digest and the
    gates' reasons; the 法制审核 form reviews exactly that draft, and the decision form
    is filled with it.
    """
    values = run(case_view.case_page, case_id, calendar=calendar())
    publications = run(_publications, case_id)
    draft = run(legal_review.refused_draft, case_id)
    me = person().user
    return render_template(
        "cases/case.html",
        v=values,
        case=values.case,
        report=values.report,
        status_names=STATUS_NAMES,
        case_status=CASE_STATUS,
        outcomes=OUTCOMES,
        can_waive=me.role in (Role.REVIEWER.value, Role.ADMIN.value),
        can_review=me.role == Role.REVIEWER.value,
        can_export=me.role in (Role.ARCHIVIST.value, Role.ADMIN.value),
        can_decide=me.role in (Role.INSPECTOR.value, Role.ADMIN.value, Role.HEAD.value),
        flags_58=FLAGS_58,
        measures=MEASURES,
        decision_types=DECISION_TYPES,
        parties=PARTIES,
        draft=draft,
        refusal=refusal,
        chairs=_colleagues() if me.role != Role.REVIEWER.value else [],
        saved=request.args.get("saved", ""),
        publications=publications,
    )


def _publications(
    uow: Any, principal: Any, case_id: str
) -> tuple[case_list_service.PublicationBadge, ...]:
    """The case's decisions' publications as the list shows them (after the case page)."""
    found = case_list_service.publication_badges(uow, [case_id], _today(), calendar())
    return found.get(case_id, ())


@bp.post("/cases/<case_id>/waivers")
def add_waiver(case_id: str) -> Any:
    """A reviewer waives one finding (豁免) with a reason."""
    form = request.form
    run(
        completeness_service.add_waiver,
        case_id,
        completeness_service.NewWaiver(
            stage=form.get("stage") or None,
            item=form.get("item", ""),
            reason=form.get("reason", ""),
        ),
    )
    return redirect(url_for("ui_cases.case_page", case_id=case_id, saved="waiver") + "#findings")


@bp.post("/cases/<case_id>/reviews")
def add_review(case_id: str) -> Any:
    """A reviewer records a 法制审核 opinion, 通过 or 退回, on the draft the form carries."""
    form = request.form
    outcome = form.get("outcome", "")
    if outcome not in legal_review.OUTCOMES:
        raise Invalid("请选择审核结论：通过或退回 (choose an outcome: passed or returned)")
    run(
        legal_review.record_review,
        case_id,
        legal_review.NewReview(
            outcome=outcome,
            opinion=form.get("opinion", ""),
            opinion_ref=form.get("opinion_ref", ""),
            draft=draft_from_form(form) if form.get("decision_type") else None,
        ),
    )
    return redirect(url_for("ui_cases.case_page", case_id=case_id, saved="review") + "#review")


@bp.get("/custody/events/<event_id>/proof")
def event_proof(event_id: str) -> Any:
    """An event's inclusion proof against the latest signed checkpoint (JSON download)."""
    signer = components().signer()
    proof = run(custody_proofs.event_inclusion_proof, event_id, signer, None)
    response = jsonify(proof.to_json())
    response.headers["Content-Disposition"] = f'attachment; filename="proof-{event_id}.json"'
    return response


DECISION_TYPES = (("penalty", "行政处罚决定"), ("no-penalty", "不予行政处罚决定"))
PARTIES = (("individual", "自然人"), ("organisation", "法人或其他组织"))
FLAGS_58 = (
    ("major_public_interest", "涉及重大公共利益"),
    ("major_social_impact", "可能造成重大社会影响或引发社会风险"),
    ("affects_major_rights", "直接关系当事人或第三人重大权益，经过听证程序"),
    ("complex_case", "案件情况疑难复杂，涉及多个法律关系"),
    ("required_by_law", "法律、法规规定应当进行法制审核的其他情形"),
)


@bp.post("/cases/<case_id>/decisions")
def add_decision(case_id: str) -> Any:
    """Record a decision; when the gates refuse it, the case page shows the refused draft
    and each article's reasons (409)."""
    form = request.form
    draft = replace(
        draft_from_form(form),
        summary=form.get("summary", ""),
        hearing_chair_user_id=form.get("hearing_chair_user_id") or None,
    )
    try:
        run(legal_review.record_decision, case_id, draft)
    except Conflict as exc:
        return case_page(case_id, refusal=exc.message), 409
    return redirect(url_for("ui_cases.case_page", case_id=case_id, saved="decision") + "#review")
