"""Assignments (指派案件) as a capture device sees them: what the phone caches for offline use.

A device token may not list cases through ``/api/v1/cases`` (that is for people), but
the capture app must know, before it goes offline, which cases its owner is assigned
to, who the officers are (执法证号) and which stages and record types the pinned
recording standard of each case offers. :func:`device_assignments` answers exactly
that, for any token, within what :func:`server.auth.visible_cases` lets it see.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import selectinload

from core.errors import UnknownStandard
from core.standards import load_standard
from server.auth import Principal, visible_cases
from server.models import Case, CaseStatus
from server.services.unit_of_work import UnitOfWork

MAX_ASSIGNMENTS = 200


def _standard_json(case: Case) -> dict[str, Any] | None:
    try:
        standard = load_standard(case.standard_id, case.standard_version)
    except UnknownStandard:
        return None
    return {
        "id": standard.id,
        "version": standard.version,
        "name_zh": standard.name_zh,
        "stages": [
            {
                "id": stage.id,
                "name_zh": stage.name_zh,
                "on_site": stage.on_site,
                "av": stage.av.value,
                "records": [{"id": r.id, "name_zh": r.name_zh} for r in stage.records],
            }
            for stage in standard.stages
        ],
    }


def device_assignments(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """The open cases ``principal`` sees (a device: its owner's), newest first, as JSON
    objects with their officers and the stages and record types of the pinned standard."""
    cases = uow.session.scalars(
        visible_cases(principal)
        .where(Case.status == CaseStatus.OPEN.value)
        .options(selectinload(Case.officers))
        .order_by(Case.created_at.desc(), Case.id)
        .limit(MAX_ASSIGNMENTS)
    ).all()
    return [
        {
            "id": case.id,
            "case_no": case.case_no,
            "title": case.title,
            "category": case.category,
            "current_stage": case.current_stage,
            "officers": [
                {"cert_no": o.user.cert_no, "display_name": o.user.display_name}
                for o in case.officers
                if o.user.cert_no
            ],
            "standard": _standard_json(case),
        }
        for case in cases
    ]
