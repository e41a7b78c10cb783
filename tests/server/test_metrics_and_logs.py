"""/metrics counts an upload across gunicorn workers; one request's log lines share its id."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server.e2e_support import field_device
from tests.server.ingest_support import metadata
from tests.support.server_process import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}
UPLOAD_ROUTE = "/api/v1/uploads/<upload_id>"
IN_FLIGHT = ("casetrail_uploads_in_flight", ())


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by (name, sorted labels)."""
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_an_upload_while_it_runs_and_logs_carry_one_request_id(
    tmp_path: Path,
) -> None:
    server = ServerProcess(
        tmp_path / "var",
        workers=2,
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "CASETRAIL_LOG_FORMAT": "json",
        },
    )
    (tmp_path / "metrics").mkdir()
    server.start(init=True)
    try:
        device = field_device(server)
        data = os.urandom(3 << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        [evidence] = device.announce([("执法记录.bin", len(data), digest, "video/mp4")])
        before = scrape(server)
        assert before[("casetrail_uploads_in_flight", ())] == 0
        assert before[("casetrail_ingested_bytes_total", ())] == 0

        auth = {"Authorization": f"Bearer {device.token}", **TUS}
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as http:
            created = http.post(
                "/api/v1/uploads",
                headers={
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": metadata(evidence_id=evidence["evidence_id"]),
                },
            )
            assert created.status_code == 201, created.text
            location = str(
                httpx.URL(server.url + "/api/v1/uploads").join(created.headers["Location"])
            )
            first = http.patch(
                location,
                content=data[: 1 << 20],
                headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            )
            assert first.status_code == 204, first.text

            # The rest goes up as a chunked body that pauses half-way: scrape meanwhile.
            paused, resume = threading.Event(), threading.Event()

            def body() -> Iterator[bytes]:
                yield data[1 << 20 : 2 << 20]
                paused.set()
                resume.wait(60)
                yield data[2 << 20 :]

            request_id = "ct-" + uuid.uuid4().hex
            answers: list[httpx.Response] = []
            sender = threading.Thread(
                target=lambda: answers.append(
                    http.patch(
                        location,
                        content=body(),
                        headers={
                            "Upload-Offset": str(1 << 20),
                            "Content-Type": "application/offset+octet-stream",
                            "X-Request-Id": request_id,
                        },
                    )
                )
            )
            sender.start()
            assert paused.wait(30)
            # The worker takes the request once its headers and first bytes are in.
            deadline = time.monotonic() + 20
            during = scrape(server)
            while during[IN_FLIGHT] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
                during = scrape(server)
            resume.set()
            sender.join(60)
        assert during[IN_FLIGHT] == 1
        assert during[("casetrail_ingested_bytes_total", ())] == 1 << 20
        assert during[("casetrail_uploads_completed_total", ())] == 0

        [completed] = answers
        assert completed.status_code == 204, completed.text
        assert completed.headers["X-Request-Id"] == request_id
        after = scrape(server)
        assert after[("casetrail_uploads_in_flight", ())] == 0
        assert after[("casetrail_ingested_bytes_total", ())] == len(data)
        assert after[("casetrail_uploads_completed_total", ())] == 1
        patches = (
            "casetrail_request_seconds_count",
            (("method", "PATCH"), ("route", UPLOAD_ROUTE)),
        )
        assert after[patches] == 2
        assert ("casetrail_inspection_queue_depth", (("status", "pending"),)) in after
        assert after[("casetrail_verification_failures", (("check", "fixity"),))] == 0
        assert after[("casetrail_database_reachable", ())] == 1

        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("request_id") == request_id]
        assert [line["message"] for line in mine] == ["上传完成 upload completed", "request"]
        assert mine[-1]["route"] == UPLOAD_ROUTE and mine[-1]["status"] == 204
        # the request line is the access log: who called, with what; gunicorn writes none
        assert mine[-1]["client"] == "127.0.0.1"
        assert mine[-1]["user_agent"].startswith("python-httpx/")
        assert not [line for line in server.log().splitlines() if '"PATCH /api/v1/' in line]
        assert all(line["time"].endswith("+08:00") for line in mine)
        # Requests without an id got their own, one each.
        others = {line["request_id"] for line in lines if line["message"] == "request"} - {
            request_id
        }
        assert len(others) >= 5 and None not in others
    finally:
        server.stop()


def test_a_scrape_still_answers_when_the_database_is_down(tmp_path: Path) -> None:
    from server.app import create_app
    from server.settings import Settings
    from tests.support.server_process import free_port

    closed = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/casetrail"
    app = create_app(Settings.for_data_dir(tmp_path / "var", database_url=closed))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert samples["casetrail_database_reachable"] == 0
    assert "casetrail_uploads_in_flight" in samples
    assert "casetrail_inspection_queue_depth" not in samples
