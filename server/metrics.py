"""Prometheus metrics (运行指标) at ``/metrics``, counted in the HTTP layer.

prometheus-client, multi-process aware: ``casetrail serve`` runs several gunicorn
workers, so each keeps its values in files under ``PROMETHEUS_MULTIPROC_DIR`` (default
``<data_dir>/metrics``, set before prometheus-client is first imported) and a scrape of
any worker adds them up. Gauges of workers that died are dropped at the next scrape.
Without serve mode (tests, one process) the values live in memory.

================================================ ===========================================
metric                                           meaning
================================================ ===========================================
``casetrail_uploads_in_flight``                  tus requests carrying bytes right now
``casetrail_ingested_bytes_total``               bytes accepted by tus PATCH/POST (offset
                                                 moved)
``casetrail_uploads_completed_total``            uploads finished with a signed receipt
``casetrail_upload_checksum_failures_total``     chunks refused: ``Upload-Checksum`` did not
                                                 match (460)
``casetrail_verification_failures{check}``       from the database at scrape time:
                                                 ``ingest_digest`` (evidence quarantined as
                                                 ``mismatch``), ``fixity`` (failed or
                                                 missing in the last fixity check)
``casetrail_inspection_queue_depth{status}``     evidence waiting for media inspection:
                                                 ``pending``, ``running``
``casetrail_database_reachable``                 1 when the scrape could read the database
                                                 (0: the gauges above are left out)
``casetrail_request_seconds{route,method}``      request latency histogram, by URL rule
================================================ ===========================================

Uploads are counted from requests and responses (status, ``Upload-Offset``,
``CaseTrail-Receipt``), not inside the ingest service.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from server.components import EXTENSION_KEY, Components
from server.models import Evidence, FixityCheck
from server.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UPLOADS_BLUEPRINT = "uploads"
_LIVE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")
upload_log = logging.getLogger("casetrail.upload")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instruments:
    """This process's metric objects (made once, after the process mode is settled)."""

    uploads_in_flight: Gauge
    ingested_bytes: Counter
    uploads_completed: Counter
    checksum_failures: Counter
    request_seconds: Histogram


_instruments: Instruments | None = None
_multiprocess_dir: str | None = None  # fixed when prometheus-client is first imported


def instruments() -> Instruments:
    """The process's metrics; the first call imports prometheus-client (see module doc)."""
    global _instruments, _multiprocess_dir
    if _instruments is None:
        from prometheus_client import Counter, Gauge, Histogram

        _multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None

        _instruments = Instruments(
            uploads_in_flight=Gauge(
                "casetrail_uploads_in_flight",
                "tus requests carrying bytes right now",
                multiprocess_mode="livesum",
            ),
            ingested_bytes=Counter(
                "casetrail_ingested_bytes", "bytes accepted by tus uploads (offset moved)"
            ),
            uploads_completed=Counter(
                "casetrail_uploads_completed", "uploads finished with a signed receipt"
            ),
            checksum_failures=Counter(
                "casetrail_upload_checksum_failures",
                "tus chunks refused because Upload-Checksum did not match (460)",
            ),
            request_seconds=Histogram(
                "casetrail_request_seconds",
                "request latency by URL rule",
                ["route", "method"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            ),
        )
    return _instruments


def install(app: Flask, settings: Settings, *, serve: bool) -> None:
    """Count requests of ``app`` and serve ``/metrics``; ``serve`` turns multi-process on."""
    if serve and not os.environ.get(MULTIPROC_ENV):
        directory = settings.data_dir / "metrics"
        directory.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(directory)
    instruments()
    app.before_request(_begin)
    app.after_request(_count)
    app.teardown_request(_end)
    app.add_url_rule("/metrics", "metrics", _scrape, methods=["GET"])


def _carries_bytes() -> bool:
    return request.blueprint == UPLOADS_BLUEPRINT and request.method in ("PATCH", "POST")


def _begin() -> None:
    g.metrics_started = time.perf_counter()
    if _carries_bytes():
        instruments().uploads_in_flight.inc()
        g.metrics_in_flight = True


def _count(response: Response) -> Response:
    found = instruments()
    if request.blueprint == UPLOADS_BLUEPRINT:
        _count_upload(found, response)
    if request.url_rule is not None and request.endpoint != "metrics":
        started = g.get("metrics_started", time.perf_counter())
        found.request_seconds.labels(request.url_rule.rule, request.method).observe(
            time.perf_counter() - started
        )
    return response


def _count_upload(found: Instruments, response: Response) -> None:
    if response.status_code == 460:
        found.checksum_failures.inc()
    if response.status_code not in (201, 204) or not _carries_bytes():
        return
    try:
        after = int(response.headers.get("Upload-Offset", ""))
        before = int(request.headers.get("Upload-Offset", "0")) if request.method == "PATCH" else 0
    except ValueError:
        return
    if after > before:
        found.ingested_bytes.inc(after - before)
    if "CaseTrail-Receipt" in response.headers:
        found.uploads_completed.inc()
        upload_log.info("上传完成 upload completed", extra={"size": after, "path": request.path})


def _end(_error: BaseException | None) -> None:
    if g.pop("metrics_in_flight", False):
        instruments().uploads_in_flight.dec()


def _scrape() -> Response:
    """Prometheus text exposition of every process's metrics plus the database gauges."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    registry.register(DatabaseCollector(_components()))
    directory = _multiprocess_dir
    if directory:
        _forget_dead_workers(Path(directory))
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


def _components() -> Components:
    from flask import current_app

    parts: Components = current_app.extensions[EXTENSION_KEY]
    return parts


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (a killed worker's in-flight count)."""
    from prometheus_client import multiprocess

    for path in directory.glob("gauge_live*.db"):
        if (m := _LIVE_FILE.match(path.name)) and not _alive(int(m.group(1))):
            multiprocess.mark_process_dead(int(m.group(1)), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DatabaseCollector:
    """Gauges read from the database at scrape time (the same answer from every worker)."""

    def __init__(self, parts: Components) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        reachable = GaugeMetricFamily(
            "casetrail_database_reachable", "1 when the scrape could read the database"
        )
        try:
            queue, mismatched, fixity = self._counts()
        except SQLAlchemyError:  # the process metrics are still worth a scrape
            log.warning("metrics: database unreachable", exc_info=True)
            reachable.add_metric([], 0.0)
            yield reachable
            return
        reachable.add_metric([], 1.0)
        yield reachable
        depth = GaugeMetricFamily(
            "casetrail_inspection_queue_depth",
            "evidence waiting for media inspection",
            labels=["status"],
        )
        for status in ("pending", "running"):
            depth.add_metric([status], float(queue.get(status, 0)))
        yield depth
        failures = GaugeMetricFamily(
            "casetrail_verification_failures",
            "evidence whose bytes failed a check: ingest digest (quarantined) or fixity",
            labels=["check"],
        )
        failures.add_metric(["ingest_digest"], float(mismatched))
        failures.add_metric(["fixity"], float(fixity))
        yield failures

    def _counts(self) -> tuple[dict[str, int], int, int]:
        with self.parts.unit_of_work() as uow:
            session = uow.session
            rows = session.execute(
                select(Evidence.inspection_status, func.count())
                .where(Evidence.inspection_status.in_(("pending", "running")))
                .group_by(Evidence.inspection_status)
            ).all()
            mismatched = session.scalar(
                select(func.count()).select_from(Evidence).where(Evidence.status == "mismatch")
            )
            fixity = session.scalar(
                select(func.count())
                .select_from(FixityCheck)
                .where(FixityCheck.status.in_(("failed", "missing")))
            )
        return {str(k): int(v) for k, v in rows}, int(mismatched or 0), int(fixity or 0)
