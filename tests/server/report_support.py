"""A generated enforcement year for the annual report: thousands of rows inserted in bulk.

Rows go straight into the tables (SQLAlchemy Core ``insert`` with many rows), not
through the services — a year of 2,000+ cases through the API would take minutes. What
lives in JSON columns (fines, measures, hearings, conditions, completeness results) is
also counted here as it is generated, so the test can check those figures against the
truth.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.models import (
    Agency,
    CaptureManifest,
    Case,
    CustodyEventRow,
    Decision,
    Device,
    Evidence,
    FixityCheck,
    LegalReview,
    Publication,
    User,
    new_id,
)

CATEGORIES = ("penalty", "penalty-simple", "licensing", "inspection", "coercion")
OUTCOMES = {
    "penalty": ("penalty", "no-penalty"),
    "penalty-simple": ("penalty",),
    "licensing": ("grant", "refuse"),
    "inspection": ("rectify", "no-violation"),
    "coercion": ("seizure", "release"),
}
MEDIA = ("image/jpeg", "video/mp4", "audio/mp4", "application/pdf")


@dataclass
class Truth:
    """What was generated for the report year, counted while generating."""

    penalty_types: Counter[str] = field(default_factory=Counter)
    fine_bands: Counter[str] = field(default_factory=Counter)
    fine_total: Decimal = Decimal(0)
    hearings: int = 0
    hearing_eligible: int = 0
    completeness: Counter[str] = field(default_factory=Counter)


def _band(fine: int) -> str:
    for label, top in (
        ("1千元及以下", 1_000),
        ("1千至1万元", 10_000),
        ("1万至10万元", 100_000),
        ("10万至100万元", 1_000_000),
    ):
        if fine <= top:
            return label
    return "100万元以上"


def generate_year(session: Session, agency_code: str | None, year: int, cases: int) -> Truth:
    """``cases`` cases in ``year`` (plus 5% in the year before), with everything around them.

    ``agency_code`` None: the only agency there is.
    """
    rng = random.Random(year)
    truth = Truth()
    query = (
        select(Agency) if agency_code is None else select(Agency).where(Agency.code == agency_code)
    )
    agency = session.scalar(query)
    assert agency is not None
    user = session.scalar(select(User).where(User.agency_id == agency.id, User.role == "admin"))
    assert user is not None
    device_id = new_id()
    session.execute(
        insert(Device),
        [{"id": device_id, "agency_id": agency.id, "owner_user_id": user.id, "name": "采集站",
          "status": "active", "device_seq_head": 0, "created_at": datetime(year, 1, 1, tzinfo=UTC)}],
    )  # fmt: skip
    start = datetime(year, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # Beijing midnight
    rows: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("case", "dec", "rev", "pub", "ev", "man", "evi", "fix")
    }
    log_index = 10_000_000
    total = cases + cases // 20
    for n in range(total):
        in_year = n < cases
        opened = start + timedelta(minutes=rng.randrange(0, 364 * 24 * 60))
        if not in_year:
            opened -= timedelta(days=365)
        if n == 0:
            opened = start + timedelta(minutes=30)  # 00:30 on 1 January, Beijing time
        category = CATEGORIES[n % len(CATEGORIES)]
        case_id = new_id()
        rows["case"].append(
            {"id": case_id, "agency_id": agency.id, "category": category, "standard_id": category,
             "standard_version": "2026.1", "case_no": f"GEN-{year}-{n:05d}", "title": "生成的案件",
             "parties": [], "status": "closed" if n % 3 == 0 else "open", "current_stage": None,
             "created_by": user.id, "created_at": opened,
             "closed_at": opened + timedelta(days=20) if n % 3 == 0 else None}
        )  # fmt: skip
        if n % 10 == 9:
            continue  # no decision yet
        decided = opened + timedelta(days=rng.randrange(1, 15))
        counted = start <= decided < start + timedelta(days=365)
        fine = rng.choice([0, 200, 800, 5_000, 30_000, 150_000, 2_000_000])
        measures = ["order_stop_business"] if n % 17 == 0 else []
        seized = 5_000 if n % 13 == 0 else 0
        hearing = n % 11 == 0
        decision_id = new_id()
        outcome = rng.choice(OUTCOMES[category])
        # in the hearing scope (较大数额 or a measure): the condition the decision keeps
        eligible = outcome == "penalty" and (fine >= 10_000 or bool(measures))
        conditions = {"hearing_eligible": [{"reason": "生成的", "added_by_handler": False}]}
        rows["dec"].append(
            {"id": decision_id, "case_id": case_id, "decision_type": outcome,
             "summary": "生成的决定", "major": False, "major_reasons": [], "legal_review_id": None,
             "facts": {"category": category, "fine_yuan": str(fine), "property_value_yuan": str(seized),
                       "measures": measures, "hearing_held": hearing},
             "decided_by": user.id, "decided_at": decided,
             "conditions": conditions if eligible else None}
        )  # fmt: skip
        if counted:
            truth.hearings += hearing
            truth.hearing_eligible += eligible
            if category in ("penalty", "penalty-simple") and outcome != "no-penalty":
                kinds = (["罚款"] if fine else []) + (["没收违法所得、非法财物"] if seized else [])
                kinds += ["责令停产停业"] * bool(measures)
                for kind in kinds or ["警告及其他"]:
                    truth.penalty_types[kind] += 1
                if fine:
                    truth.fine_bands[_band(fine)] += 1
                    truth.fine_total += fine
        if n % 4 == 0:
            rows["rev"].append(
                {"id": new_id(), "case_id": case_id, "reviewer_user_id": user.id,
                 "outcome": "returned" if n % 8 == 0 else "passed", "opinion": "", "details": {},
                 "reviewed_at": decided - timedelta(days=1), "created_at": decided}
            )  # fmt: skip
        check = n % 5  # 0: complete before, 1: incomplete before, 2: complete after, else none
        if check < 3:
            when = decided - timedelta(hours=2) if check < 2 else decided + timedelta(hours=2)
            status = "incomplete" if check == 1 else "complete"
            body = {"details": {"status": status}, "type": "completeness_checked"}
            rows["ev"].append(
                {"id": new_id(), "log_index": log_index, "case_id": case_id, "case_seq": 1,
                 "event_type": "completeness_checked", "event_hash": "sha256:" + "0" * 64,
                 "leaf_hash": bytes(32), "canonical_json": json.dumps(body), "created_at": when}
            )  # fmt: skip
            log_index += 1
        if counted:
            truth.completeness[
                "not_checked" if check >= 2 else ("incomplete" if check == 1 else "complete")
            ] += 1
        decided_on = (decided + timedelta(hours=8)).date()
        state = n % 6  # 0,1 on time; 2 late; 3 withdrawn; 4 corrected; 5 left for the report
        if state < 5:
            due = decided_on + timedelta(days=9)
            published = decided_on + timedelta(days=15 if state == 2 else 2)
            rows["pub"].append(
                {"id": new_id(), "decision_id": decision_id, "case_id": case_id,
                 "agency_id": agency.id, "category": category, "decided_on": decided_on,
                 "due_on": due, "due_estimated": False, "status": "withdrawn" if state == 3 else "published",
                 "doc_no": f"文{n}", "version": 2 if state == 4 else 1,
                 "first_published_at": decided + timedelta(days=2), "first_published_on": published,
                 "created_at": decided}
            )  # fmt: skip
        if n % 7 == 0:
            manifest_id = new_id()
            rows["man"].append(
                {"id": manifest_id, "manifest_id": f"m-{n}", "device_id": device_id,
                 "case_id": case_id, "device_seq": n + 1, "manifest_hash": f"sha256:{n:064d}",
                 "signed_json": "{}", "received_at": opened, "verification": {}}
            )  # fmt: skip
            for k in range(3):
                evidence_id = new_id()
                rows["evi"].append(
                    {"id": evidence_id, "manifest_id": manifest_id, "case_id": case_id,
                     "file_index": k, "name": f"f{k}", "expected_size": 1000 * (k + 1) + n,
                     "expected_sha256": f"sha256:{n:060d}{k:04d}", "status": "stored",
                     "media_type": MEDIA[(n + k) % 4], "received_at": opened + timedelta(minutes=k),
                     "created_at": opened, "inspection_attempts": 0}
                )  # fmt: skip
                rows["fix"].append(
                    {"evidence_id": evidence_id, "status": ("ok", "ok", "failed", "missing")[(n + k) % 4],
                     "detail": "", "checked_at": opened + timedelta(days=1)}
                )  # fmt: skip
    for model, key in (
        (Case, "case"), (Decision, "dec"), (LegalReview, "rev"), (Publication, "pub"),
        (CustodyEventRow, "ev"), (CaptureManifest, "man"), (Evidence, "evi"), (FixityCheck, "fix"),
    ):  # fmt: skip
        if rows[key]:
            session.execute(insert(model), rows[key])
    return truth


def year_bounds_utc(year: int) -> tuple[datetime, datetime]:
    """The year in Beijing time as UTC datetimes."""
    start = datetime(year, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    return start, datetime(year + 1, 1, 1, tzinfo=UTC) - timedelta(hours=8)


def in_year_dates(year: int) -> tuple[date, date]:
    """First and last day of the year."""
    return date(year, 1, 1), date(year, 12, 31)
