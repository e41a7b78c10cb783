"""Admin pages for 事前公开 registries and 双随机 draws (``/ui/admin/registries``, ``/draws``).

The same services as the API and ``casetrail registry`` / ``casetrail draw``: items
(随机抽查事项清单) and targets (检查对象名录库) are added and retired; a draw is
committed from today's pools, drawn once a signed checkpoint covers the commitment,
published on the public site with what anyone needs to re-run it, and its inspections
opened. Admins only.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from server.components import components
from server.errors import Forbidden, Invalid, NotFound
from server.models import Role
from server.services import draws, registries
from server.services.draws import NewDraw
from server.services.registries import NewItem, NewTarget
from server.web.common import person, run, workspace_blueprint

bp = workspace_blueprint("ui_registries", __name__)

KINDS = {"organisation": "单位", "person": "个人"}


@bp.before_request
def _admins_only() -> None:
    found = person() if request.endpoint else None
    if found is not None and found.principal.role != Role.ADMIN:
        raise Forbidden("只有系统管理员可以使用管理页面 (admin pages are for admins only)")


def _text(name: str, limit: int = 200) -> str:
    return request.form.get(name, "").strip()[:limit]


@bp.get("/admin/registries")
def registry_page() -> Any:
    """The 随机抽查事项清单 and the 检查对象名录库 of the agency."""
    return render_template(
        "registries/registries.html",
        items=run(registries.list_items),
        targets=run(registries.list_targets),
        kinds=KINDS,
        saved=request.args.get("saved", ""),
    )


@bp.post("/admin/registries/items")
def add_item() -> Any:
    """Add an item to the 随机抽查事项清单."""
    draft = NewItem(
        _text("code", 64),
        _text("name"),
        _text("basis", 2000),
        _text("subject"),
        _text("method"),
    )
    run(registries.add_item, draft)
    return redirect(url_for(".registry_page", saved="item") + "#items")


@bp.post("/admin/registries/targets")
def add_target() -> Any:
    """Add an entry to the 检查对象名录库."""
    kind = _text("kind", 16) or "organisation"
    run(
        registries.add_targets, [NewTarget(_text("code", 64), _text("name"), kind, _text("sector"))]
    )
    return redirect(url_for(".registry_page", saved="target") + "#targets")


@bp.post("/admin/registries/items/<item_id>/retire")
def retire_item(item_id: str) -> Any:
    """Retire an item: it stays listed and leaves later draw pools."""
    run(registries.retire_item, item_id)
    return redirect(url_for(".registry_page", saved="retired") + "#items")


@bp.post("/admin/registries/targets/<target_id>/retire")
def retire_target(target_id: str) -> Any:
    """Retire a target: it stays listed and leaves later draw pools."""
    run(registries.retire_target, target_id)
    return redirect(url_for(".registry_page", saved="retired") + "#targets")


@bp.get("/admin/draws")
def draw_list() -> Any:
    """The agency's 双随机 draws and the form for a new plan."""
    return render_template(
        "registries/draws.html",
        found=run(draws.list_draws),
        items=[i for i in run(registries.list_items) if i.active],
    )


@bp.post("/admin/draws")
def commit() -> Any:
    """Commit a plan from today's pools to the custody log."""
    try:
        count = int(request.form.get("target_count", ""))
        per_target = int(request.form.get("per_target", "2"))
    except ValueError as exc:
        raise Invalid(errors={"target_count": ["须填写整数 (a whole number)"]}) from exc
    draft = NewDraw(_text("title"), tuple(request.form.getlist("item_codes")), count, per_target)
    made = run(draws.commit_draw, draft)
    return redirect(url_for(".draw_page", draw_id=made.id))


def _draw(draw_id: str) -> Any:
    for found in run(draws.list_draws):
        if found.id == draw_id:
            return found
    raise NotFound(f"没有该抽查 (no draw {draw_id})")


@bp.get("/admin/draws/<draw_id>")
def draw_page(draw_id: str) -> Any:
    """One draw: plan, commitment, checkpoint, result, and the next step."""
    return render_template("registries/draw.html", d=_draw(draw_id))


@bp.post("/admin/draws/<draw_id>/perform")
def perform(draw_id: str) -> Any:
    """Draw from the first signed checkpoint covering the commitment; it is then public."""
    run(draws.perform_draw, draw_id, components().signer())
    return redirect(url_for(".draw_page", draw_id=draw_id))


@bp.post("/admin/draws/<draw_id>/cases")
def open_cases(draw_id: str) -> Any:
    """Open one 行政检查 case per drawn target, the drawn inspectors assigned."""
    run(draws.open_inspection_cases, draw_id)
    return redirect(url_for(".draw_page", draw_id=draw_id))
