"""Capture into the vault: one-pass hashing, originals untouched, signed chain, all-or-nothing."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.errors import ManifestInvalid
from core.keys import load_public_key
from core.manifest import Location, SignedManifest, verify_device_chain, verify_manifest
from field_client.capture import Capturer, CaptureRequest
from field_client.cli import main
from field_client.config import FieldHome
from field_client.errors import CaptureError, VaultFileChanged, VaultFileMissing
from field_client.keys import load_device_key
from field_client.queue import ItemState, Queue
from field_client.vault import PENDING_MARKER, Recovery, Vault
from tests.field_client.conftest import make_file


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_capture_copies_hashes_signs_and_queues(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    photo = make_file(tmp_path / "src" / "IMG_0001.JPG", 3 * 1024 * 1024 + 17, seed=1)
    pdf = make_file(tmp_path / "src" / "笔录.pdf", 1000, seed=2)
    before = [(p.stat().st_mtime_ns, _sha(p)) for p in (photo, pdf)]

    result = capturer.capture([photo, pdf], request_facts)

    # originals untouched
    assert [(p.stat().st_mtime_ns, _sha(p)) for p in (photo, pdf)] == before
    # vault copies are identical, read-only and named by number, not by the client's name
    for copy, src in zip(result.files, (photo, pdf), strict=True):
        assert copy.path.read_bytes() == src.read_bytes()
        assert copy.sha256 == _sha(src)
        assert stat.S_IMODE(copy.path.stat().st_mode) == 0o400
    assert [c.path.name for c in result.files] == ["0000.jpg", "0001.pdf"]
    # queued, signed, verifiable with the device's public key
    items = queue.items()
    assert [(i.name, i.state, i.size) for i in items] == [
        ("IMG_0001.JPG", ItemState.CAPTURED, photo.stat().st_size),
        ("笔录.pdf", ItemState.CAPTURED, 1000),
    ]
    assert [i.media_type for i in items] == ["image/jpeg", "application/pdf"]
    signed = queue.signed_manifest(result.manifest_id)
    key = load_device_key(capturer.home)
    verify_manifest(signed, load_public_key(key.alg, key.public_key))
    m = SignedManifest.from_json(signed).manifest
    assert (m.device_seq, m.device_prev, m.case_ref) == (1, None, "黔市监罚〔2025〕12号")
    assert m.officers == ("52010012345", "52010012346")


def test_device_chain_links_every_capture(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    for n in range(4):
        capturer.capture([make_file(tmp_path / f"f{n}.jpg", 10, seed=n)], request_facts)
    manifests = [SignedManifest.from_json(queue.signed_manifest(i)) for i in queue.manifest_ids()]
    assert sorted(m.manifest.device_seq for m in manifests) == [1, 2, 3, 4]
    assert verify_device_chain(manifests) == []


def test_bad_facts_are_all_reported_before_any_copy(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    f = make_file(tmp_path / "a.jpg", 10)
    bad = CaptureRequest(
        case_ref=request_facts.case_ref,
        category="inspection",
        stage="",
        record_type="现场检查笔录",
        officers=("52010012345", "52010012345"),
        location=Location("91.5", "106.1"),
    )
    with pytest.raises(ManifestInvalid) as e:
        capturer.capture([f], bad)
    text = "\n".join(e.value.problems)
    assert "stage" in text and "officers" in text and "location.lat" in text
    assert queue.items() == [] and capturer.vault.captures() == set()


def test_unreadable_file_leaves_nothing(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    ok = make_file(tmp_path / "a.jpg", 2000)
    with pytest.raises(CaptureError, match="找不到文件"):
        capturer.capture([ok, tmp_path / "missing.jpg"], request_facts)
    assert queue.items() == []
    assert capturer.vault.captures() == set()
    assert not any(capturer.vault.staging_dir.iterdir())
    assert queue.chain_head("dev-test") == (0, None)
    with pytest.raises(CaptureError, match="import DIR"):
        capturer.capture([tmp_path], request_facts)


def test_file_changing_during_copy_is_refused(
    tmp_path: Path,
    capturer: Capturer,
    request_facts: CaptureRequest,
    queue: Queue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = make_file(tmp_path / "still-writing.mp4", 5000)
    real_open = open

    def growing_open(path: object, mode: str = "r", *a: object, **kw: object) -> object:
        handle = real_open(path, mode, *a, **kw)  # type: ignore[call-overload]
        if path == f and mode == "rb":
            with real_open(f, "ab") as w:  # the camera appends while we copy
                w.write(b"more")
        return handle

    monkeypatch.setattr("builtins.open", growing_open)
    with pytest.raises(CaptureError, match="still being written"):
        capturer.capture([f], request_facts)
    monkeypatch.undo()
    assert queue.items() == []


def _crash_during_capture(home_root: str, src: str, where: str) -> None:
    """Child process: capture, but die (no cleanup at all) at ``where``."""
    from field_client import capture as capture_mod
    from field_client.queue import Queue as Q
    from field_client.vault import Staging

    home = FieldHome(Path(home_root))
    if where == "mid-first-copy":

        def partial_add(self: Staging, source: Path, index: int, name: str) -> object:
            (self.dir / "0000.jpg").write_bytes(source.read_bytes()[:100])  # half a copy
            os._exit(9)

        Staging.add = partial_add  # type: ignore[method-assign]
    elif where == "after-first-copy":
        real_add = Staging.add

        def add(self: Staging, source: Path, index: int, name: str) -> object:
            out = real_add(self, source, index, name)
            os._exit(9)
            return out

        Staging.add = add  # type: ignore[method-assign]
    else:

        def add_capture(self: Q, *a: object, **kw: object) -> None:
            os._exit(9)

        Q.add_capture = add_capture  # type: ignore[method-assign]
    q = Q(home.queue_db)
    c = capture_mod.Capturer(home, home.load_config(), load_device_key(home), q)
    c.capture(
        [Path(src), Path(src).with_name("second.jpg")],
        CaptureRequest("X-1", "inspection", "implementation", "现场检查笔录", ("1", "2")),
    )


@pytest.mark.parametrize(
    ("where", "kept"),
    [("mid-first-copy", 0), ("after-first-copy", 1), ("before-queue-commit", 2)],
)
def test_crash_mid_capture_queues_nothing_and_never_deletes_a_complete_copy(
    tmp_path: Path,
    capturer: Capturer,
    request_facts: CaptureRequest,
    queue: Queue,
    where: str,
    kept: int,
) -> None:
    src = make_file(tmp_path / "x.jpg", 4000)
    second = make_file(tmp_path / "second.jpg", 4000, seed=3)
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_crash_during_capture, args=(str(capturer.home.root), str(src), where))
    p.start()
    p.join(60)
    assert p.exitcode == 9
    assert queue.items() == []  # nothing queued
    # the next capture continues the chain from the start; a half-written copy is
    # cleaned, complete copies are moved aside (with the signed manifest if it was made)
    result = capturer.capture([src], request_facts)
    assert [i.device_seq for i in queue.items()] == [1]
    vault = capturer.vault
    assert vault.captures() == queue.manifest_ids() == {result.manifest_id}
    assert not any(vault.staging_dir.iterdir())
    assert not (result.files[0].path.parent / PENDING_MARKER).exists()
    aside = vault.unqueued(queue.manifest_ids())
    assert list(result.set_aside) == aside
    if kept == 0:
        assert aside == []
    else:
        (folder,) = aside
        assert folder.parent == vault.orphans_dir
        copies = sorted(f for f in folder.iterdir() if not f.name.startswith("."))
        assert [f.read_bytes() for f in copies] == [src.read_bytes(), second.read_bytes()][:kept]
        manifest = folder / PENDING_MARKER
        assert manifest.exists() == (where == "before-queue-commit")


def test_lost_queue_database_never_deletes_vault_copies(
    tmp_path: Path,
    capturer: Capturer,
    request_facts: CaptureRequest,
    queue: Queue,
) -> None:
    first = capturer.capture([make_file(tmp_path / "a.jpg", 3000)], request_facts)
    queue.close()
    for f in capturer.home.root.glob("queue.db*"):
        f.unlink()  # the queue is lost (or another queue is used with this vault)
    with Queue(capturer.home.queue_db) as fresh:
        again = Capturer(capturer.home, capturer.config, capturer.key, fresh)
        second = again.capture([make_file(tmp_path / "b.jpg", 3000, seed=5)], request_facts)
        assert second.set_aside == ()
        old = first.files[0]
        capturer.vault.check(old.path, old.size, old.sha256)  # still there, untouched
        assert capturer.vault.unqueued(fresh.manifest_ids()) == [old.path.parent]
    out = CliRunner().invoke(main, ["--home", str(capturer.home.root), "status"])
    assert out.exit_code == 0, out.output
    assert "不在上传队列中" in out.output and "Do not delete them" in out.output
    assert str(old.path.parent) in out.output


def _capture_many(home_root: str, src: str, n: int) -> None:
    from field_client.capture import Capturer as C

    home = FieldHome(Path(home_root))
    with Queue(home.queue_db) as q:
        c = C(home, home.load_config(), load_device_key(home), q)
        for _ in range(n):
            c.capture(
                [Path(src)],
                CaptureRequest("X-1", "inspection", "implementation", "现场检查笔录", ("1", "2")),
            )


def test_two_processes_capturing_never_fork_the_chain(
    tmp_path: Path, capturer: Capturer, queue: Queue
) -> None:
    src = make_file(tmp_path / "x.jpg", 1000)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_capture_many, args=(str(capturer.home.root), str(src), 6))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    manifests = [SignedManifest.from_json(queue.signed_manifest(i)) for i in queue.manifest_ids()]
    assert sorted(m.manifest.device_seq for m in manifests) == list(range(1, 13))
    assert verify_device_chain(manifests) == []


def test_vault_check_reports_missing_and_changed_copies(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest
) -> None:
    result = capturer.capture([make_file(tmp_path / "a.jpg", 3000)], request_facts)
    copy = result.files[0]
    capturer.vault.check(copy.path, copy.size, copy.sha256)  # intact: no error
    os.chmod(copy.path, 0o600)
    with open(copy.path, "r+b") as f:
        f.write(b"X")
    with pytest.raises(VaultFileChanged, match="changed after capture"):
        capturer.vault.check(copy.path, copy.size, copy.sha256)
    copy.path.unlink()
    with pytest.raises(VaultFileMissing):
        capturer.vault.check(copy.path, copy.size, copy.sha256)


def test_recover_settles_queued_and_sets_aside_the_rest(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault")
    for name in ("queued", "crashed", "unknown"):
        s = vault.stage(name)
        s.add(make_file(tmp_path / f"{name}.bin", 10), 0, "a.bin")
        s.commit(f'{{"manifest": "{name}"}}')
    vault.settle("unknown")  # queued by a queue this process cannot see
    vault.stage("empty")
    half = vault.stage("half")
    (half.dir / "0000.bin").write_bytes(b"partial")
    vault.stage("one-done").add(make_file(tmp_path / "d.bin", 10), 0, "d.bin")

    recovery = vault.recover({"queued"})

    assert recovery.removed == ("empty", "half")
    assert [p.name for p in recovery.set_aside] == ["one-done", "crashed"]
    assert recovery.settled == ("queued",)
    assert vault.captures() == {"queued", "unknown"}
    assert not (vault.root / "queued" / PENDING_MARKER).exists()
    assert (vault.orphans_dir / "crashed" / PENDING_MARKER).read_text() == '{"manifest": "crashed"}'
    assert [p.name for p in vault.unqueued({"queued"})] == ["unknown", "crashed", "one-done"]
    assert vault.recover({"queued"}) == Recovery((), (), ())  # nothing left to do
