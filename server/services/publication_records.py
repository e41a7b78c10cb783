"""Every decision's publication record (执法决定信息公开记录), created when first needed.

A decision gets its :class:`~server.models.Publication` the first time a publication
use case, the case list or the annual report runs after it (:func:`sync_publications`),
due 7 or 20 working days after the decision on the agency calendar
(:mod:`core.publication`). Due dates that ran past the loaded calendar are estimates,
recomputed once the agency supplies the missing year.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from core.publication import PublicationStatus, publication_due
from server.models import Case, Decision, Publication, utcnow
from server.services.clocks import china_date


def sync_publications(session: Session, calendar: WorkingCalendar, agency_id: str) -> int:
    """Give every decision of the agency that has none its publication record; how many."""
    rows = session.execute(
        select(Decision, Case)
        .join(Case, Case.id == Decision.case_id)
        .outerjoin(Publication, Publication.decision_id == Decision.id)
        .where(Case.agency_id == agency_id, Publication.id.is_(None))
    ).all()
    new = []
    for decision, case in rows:
        decided_on = china_date(decision.decided_at)
        due = publication_due(case.category, decided_on, calendar)
        new.append(
            Publication(
                decision_id=decision.id,
                case_id=case.id,
                agency_id=case.agency_id,
                category=case.category,
                decided_on=decided_on,
                due_on=due.on,
                due_estimated=due.estimated,
                status=PublicationStatus.PENDING.value,
                doc_no="",
                version=0,
                created_at=utcnow(),
            )
        )
    if new:
        try:
            with session.begin_nested():
                session.add_all(new)
                session.flush()
        except IntegrityError:
            pass  # a concurrent request (PostgreSQL) created them first: theirs stand
    for p in session.scalars(
        select(Publication).where(
            Publication.agency_id == agency_id,
            Publication.due_estimated.is_(True),
            Publication.status == PublicationStatus.PENDING.value,
        )
    ):  # the agency may have supplied the missing year's calendar since
        due = publication_due(p.category, p.decided_on, calendar)
        p.due_on, p.due_estimated = due.on, due.estimated
    return len(new)
