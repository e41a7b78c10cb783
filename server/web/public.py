"""The public site (``/public/``, no sign-in): published decisions as HTML, JSON and Atom.

Everything here comes from :mod:`server.services.public_decisions`, which reads only
redacted, published records. Pages carry a strict Content-Security-Policy (no script at
all) and their own layout (``templates/public/base.html``), apart from the workspace.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from typing import Any

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for

from core.draw import verify_published_draw
from server.components import components
from server.errors import NotFound
from server.services.annual_report import AnnualReport, agency_by_code, build_annual_report
from server.services.annual_report_xlsx import write_xlsx
from server.services.completeness import calendar_for
from server.services.draws import public_draws, published_draw
from server.services.public_decisions import (
    PUBLIC_CATEGORIES,
    PublicDecision,
    PublicQuery,
    public_decision,
    search_public_decisions,
)
from server.services.registries import public_inspectors, public_registries
from server.web.annual_report import render_annual_html

bp = Blueprint(
    "public",
    __name__,
    url_prefix="/public",
    template_folder="templates",
    static_folder="static/public",
    static_url_path="/static",
)

CHINA = timezone(timedelta(hours=8), "CST")
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
FEED_SIZE = 50


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """``2026-10-14 09:30`` in Beijing time."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


def _date_arg(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400)


def _query() -> PublicQuery:
    try:
        page = max(1, int(request.args.get("page", "1")))
        per_page = int(request.args.get("per_page", "20"))
    except ValueError:
        abort(400)
    return PublicQuery(
        q=request.args.get("q", "")[:200],
        category=request.args.get("category", "")[:20],
        date_from=_date_arg("from"),
        date_to=_date_arg("to"),
        page=page,
        per_page=per_page,
    )


@bp.get("/")
def decisions() -> str:
    """The list of published decisions, searchable and paginated."""
    query = _query()
    with components().unit_of_work() as uow:
        page = search_public_decisions(uow.session, query)
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "public/decisions.html",
        page=page,
        query=query,
        categories=PUBLIC_CATEGORIES,
        page_url=lambda n: url_for("public.decisions", **args, page=n),
    )


@bp.get("/decisions/<publication_id>")
def decision(publication_id: str) -> str:
    """One published decision with its correction history or withdrawal notice."""
    try:
        with components().unit_of_work() as uow:
            found = public_decision(uow.session, publication_id)
    except NotFound:
        abort(404)
    return render_template("public/decision.html", d=found)


@bp.get("/decisions.json")
def decisions_json() -> Response:
    """The same list as JSON (same query parameters)."""
    query = _query()
    with components().unit_of_work() as uow:
        page = search_public_decisions(uow.session, query)
    body: dict[str, Any] = {
        "items": [
            {**d.to_json(), "url": url_for("public.decision", publication_id=d.id, _external=True)}
            for d in page.items
        ],
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
    }
    return jsonify(body)


def _entry_title(d: PublicDecision) -> str:
    r = d.record
    prefix = "【已撤回】" if d.withdrawn else ("【已更正】" if d.version > 1 else "")
    return f"{prefix}{r['agency']} {r['category']}决定 {r['doc_no']}（{'、'.join(p['name'] for p in r['parties'])}）"


def _entry_text(d: PublicDecision) -> str:
    r = d.record
    lines = [
        f"执法机关：{r['agency']}",
        f"执法对象：{'、'.join(p['name'] for p in r['parties'])}",
        f"执法类别：{r['category']}",
        f"决定日期：{r['decided_on']}",
        f"文书号：{r['doc_no']}",
    ]
    if d.withdrawn:
        lines.append(f"已于 {d.withdrawn_on} 撤回，理由：{d.withdraw_reason}")
    else:
        lines.append(f"执法结论：{r['conclusion']}")
    return "\n".join(lines)


@bp.get("/decisions.atom")
def decisions_atom() -> Response:
    """An Atom 1.0 feed of the latest published, corrected and withdrawn decisions."""
    with components().unit_of_work() as uow:
        page = search_public_decisions(uow.session, PublicQuery(per_page=FEED_SIZE))
    feed = FeedGenerator()
    self_url = url_for("public.decisions_atom", _external=True)
    feed.id(self_url)
    feed.title("行政执法决定信息公开")
    feed.subtitle("执法机关、执法对象（已作技术处理）、执法类别、执法结论")
    feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.link(href=url_for("public.decisions", _external=True), rel="alternate", type="text/html")
    feed.language("zh-CN")
    feed.author({"name": "CaseTrail 行政执法公示"})
    newest = max((d.updated_at for d in page.items), default=datetime(2026, 1, 1, tzinfo=CHINA))
    feed.updated(newest)
    for d in reversed(page.items):  # feedgen puts the last added entry first
        entry = feed.add_entry()
        url = url_for("public.decision", publication_id=d.id, _external=True)
        entry.id(f"{url}#v{d.version}{'-withdrawn' if d.withdrawn else ''}")
        entry.title(_entry_title(d))
        entry.link(href=url, rel="alternate", type="text/html")
        entry.published(d.first_published_at)
        entry.updated(d.updated_at)
        entry.content(_entry_text(d), type="text")
    return Response(feed.atom_str(pretty=True), mimetype="application/atom+xml")


# --------------------------------------------------------------------------- registries


@bp.get("/inspectors")
def inspectors() -> str:
    """执法人员名录: name, 执法证号, agency, 在岗 / 已注销 — to check a 亮证 against."""
    q = request.args.get("q", "")[:100]
    with components().unit_of_work() as uow:
        found = public_inspectors(uow.session, q)
    return render_template("public/inspectors.html", inspectors=found, q=q)


@bp.get("/inspectors.json")
def inspectors_json() -> Response:
    """The inspector list as JSON (``q`` filters by name or 执法证号)."""
    with components().unit_of_work() as uow:
        found = public_inspectors(uow.session, request.args.get("q", "")[:100])
    return jsonify({"items": [i.to_json() for i in found], "total": len(found)})


@bp.get("/registries")
def registries_page() -> str:
    """Each agency's 随机抽查事项清单 and 检查对象名录库."""
    with components().unit_of_work() as uow:
        found = public_registries(uow.session)
    return render_template("public/registries.html", agencies=found)


@bp.get("/registries.json")
def registries_json() -> Response:
    """The registries as JSON."""
    with components().unit_of_work() as uow:
        return jsonify({"agencies": public_registries(uow.session)})


# --------------------------------------------------------------------------- draws


def _verifier_key() -> str:
    return components().signer().verifier().key_string()


@bp.get("/draws")
def draws_page() -> str:
    """Every performed 双随机 draw, newest first."""
    with components().unit_of_work() as uow:
        found = [
            {
                "id": d.id,
                "title": d.title,
                "agency": d.plan["agency"],
                "drawn_at": d.drawn_at,
                "count": len((d.result or {}).get("assignments", [])),
            }
            for d in public_draws(uow.session)
        ]
    return render_template("public/draws.html", draws=found)


@bp.get("/draws/<draw_id>")
def draw_page(draw_id: str) -> str:
    """A draw: plan, commitment, checkpoint, result, and the result recomputed here."""
    try:
        with components().unit_of_work() as uow:
            published = published_draw(uow.session, draw_id, _verifier_key())
    except NotFound:
        abort(404)
    problems = verify_published_draw(published)
    drawn_at = datetime.fromisoformat(published["drawn_at"]) if published["drawn_at"] else None
    return render_template("public/draw.html", d=published, problems=problems, drawn_at=drawn_at)


@bp.get("/draws/<draw_id>.json")
def draw_json(draw_id: str) -> Response:
    """The published draw: all ``casetrail draw verify`` needs to re-run it."""
    try:
        with components().unit_of_work() as uow:
            published = published_draw(uow.session, draw_id, _verifier_key())
    except NotFound:
        abort(404)
    return jsonify(published)


# --------------------------------------------------------------------------- annual report


def _annual_report() -> AnnualReport:
    try:
        year = int(request.args.get("year") or datetime.now(CHINA).year - 1)
    except ValueError:
        abort(400)
    if not 2000 <= year <= 2100:
        abort(400)
    parts = components()
    try:
        with parts.unit_of_work() as uow:
            agency = agency_by_code(uow.session, request.args.get("agency"))
            report = build_annual_report(
                uow.session,
                agency.id,
                year,
                calendar_for(parts.settings.calendar_file),
                today=datetime.now(CHINA).date(),
            )
            uow.commit()  # publication records of decisions that had none
    except NotFound:
        abort(404)
    return report


@bp.get("/reports/annual")
def annual_report_page() -> str:
    """The printable annual statistics report with its charts (``agency``, ``year``)."""
    report = _annual_report()
    args: dict[str, Any] = {"agency": report.agency_code, "year": report.year}
    return render_annual_html(
        report,
        css_href=url_for("public.static", filename="report.css"),
        links={
            "XLSX": url_for("public.annual_report_xlsx", **args),
            "JSON": url_for("public.annual_report_json", **args),
        },
    )


@bp.get("/reports/annual.json")
def annual_report_json() -> Response:
    """The figures behind the report."""
    return jsonify(_annual_report().to_json())


@bp.get("/reports/annual.xlsx")
def annual_report_xlsx() -> Response:
    """The report as an XLSX workbook."""
    report = _annual_report()
    buffer = io.BytesIO()
    write_xlsx(report, buffer)
    name = f"annual-report-{report.agency_code}-{report.year}.xlsx"
    return Response(
        buffer.getvalue(),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
