"""Every tag file of a bag is bound to the signed log: edits to bag-info.txt and the guide.

The forger edits a tag file and recomputes both tag manifests, so the Library of
Congress ``bagit`` tool still validates the bag in full; ``casetrail verify``, the bag's
own ``verify.py`` and a reader holding only the log's public key must each find the edit.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bagit
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.checkpoint import NoteSigner, sign_note
from core.verify import verify_bag
from server.cli import main
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World

FILES = [("现场检查笔录.pdf", b"%PDF-1.4\n" + b"r" * 3000, "application/pdf")]
BLOCK_CORE = "import sys, runpy; sys.modules['core'] = None; sys.modules['server'] = None; "


def _retag(bag: Path) -> None:
    for alg in ("sha256", "sha512"):
        lines = []
        for path in sorted(bag.rglob("*")):
            rel = path.relative_to(bag).as_posix()
            if path.is_file() and not rel.startswith(("data/", "tagmanifest-")):
                lines.append(f"{hashlib.new(alg, path.read_bytes()).hexdigest()}  {rel}\n")
        (bag / f"tagmanifest-{alg}.txt").write_text("".join(lines), "utf-8")


def _set_info(label: str, value: str) -> Callable[[Path], None]:
    def edit(bag: Path) -> None:
        path = bag / "bag-info.txt"
        text = path.read_text("utf-8")
        assert re.search(rf"^{label}: ", text, re.M)
        path.write_text(re.sub(rf"^{label}: .*$", f"{label}: {value}", text, flags=re.M), "utf-8")

    return edit


def _edit_readme(bag: Path) -> None:
    path = bag / "casetrail/README.zh-en.md"
    text = path.read_text("utf-8")
    path.write_text(text.replace("python casetrail/verify.py", "python fetch-and-run.py"), "utf-8")


def _add_to_bagit_txt(bag: Path) -> None:
    with (bag / "bagit.txt").open("a", encoding="utf-8") as f:
        f.write("Note: looks harmless\n")


def _delete_seal(bag: Path) -> None:
    (bag / "casetrail/seal.txt").unlink()


def _forge_seal(bag: Path) -> None:
    """Re-sign the (truthful) seal text with another key of the same name."""
    seal = bag / "casetrail/seal.txt"
    body = seal.read_text("utf-8").partition("\n\n")[0] + "\n"
    name = body.splitlines()[0]
    seal.write_text(sign_note(body, NoteSigner(name, Ed25519PrivateKey.generate())), "utf-8")


EDITS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "case number": (_set_info("External-Identifier", "黔市监罚〔2026〕9号"), "bag_info_mismatch", "External-Identifier"),
    "agency": (_set_info("Source-Organization", "另一个局"), "bag_info_mismatch", "Source-Organization"),
    "bagging date": (_set_info("Bagging-Date", "2020-01-01"), "bag_info_mismatch", "Bagging-Date"),
    "title": (_set_info("External-Description", "改过的案件名称"), "bag_info_mismatch", "External-Description"),
    "guide": (_edit_readme, "guide_altered", "README.zh-en.md"),
    "bagit.txt": (_add_to_bagit_txt, "bagit_txt_invalid", "bagit.txt"),
    "seal deleted": (_delete_seal, "seal_missing", "seal.txt"),
    "seal signed by another key": (_forge_seal, "seal_invalid", "seal.txt"),
}  # fmt: skip
SEAL_KEPT = {"seal deleted", "seal signed by another key"}  # every other edit leaves it stale


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_tag_file_edit_is_caught_by_all_three_verifiers(world: World, tmp_path: Path) -> None:
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", FILES)])
    archivist = world.as_("a_archivist")
    pristine = extract_tar(
        archivist.post(f"/cases/{ingested.case['id']}/export").data, tmp_path / "pristine"
    )
    log_key = archivist.get("/log/public-key").get_json()["verifier_key"]
    bagit.Bag(str(pristine)).validate()  # the LoC tool, in full (every payload re-hashed)
    assert verify_bag(pristine, log_key=log_key).problems == []
    seal = (pristine / "casetrail/seal.txt").read_text("utf-8")
    assert seal.startswith(log_key.split("+")[0] + "\ncasetrail-bag-seal/1\n")
    assert f"case {ingested.case['id']}\n" in seal and "tagmanifest-sha256.txt sha256:" in seal

    for name, (edit, code, where) in EDITS.items():
        bag = tmp_path / name.replace(" ", "-")
        shutil.copytree(pristine, bag)
        edit(bag)
        _retag(bag)
        if name != "bagit.txt":  # the LoC tool itself refuses unknown bagit.txt lines
            bagit.Bag(str(bag)).validate()  # the careful forger fools BagIt alone

        # a reader with only the log's public key
        problems = verify_bag(bag, log_key=log_key).problems
        found = [p for p in problems if p.code == code]
        assert found and where in found[0].where + found[0].message, (name, problems)
        codes = {code} if name in SEAL_KEPT else {code, "seal_stale"}
        assert codes <= {p.code for p in problems}, (name, problems)

        # casetrail verify
        cli = CliRunner().invoke(main, ["verify", str(bag), "--log-key", log_key])
        assert cli.exit_code == 1, (name, cli.output)
        assert all(f"[{c}]" in cli.output for c in codes), (name, cli.output)

        # the bag's own verify.py, with Python and cryptography alone
        own = subprocess.run(
            [sys.executable, "-I", "-c", BLOCK_CORE + "sys.argv = ['verify.py']; "
             "runpy.run_path('casetrail/verify.py', run_name='__main__')"],
            cwd=bag, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert own.returncode == 1, (name, own.stdout + own.stderr)
        assert all(f"[{c}]" in own.stdout for c in codes), (name, own.stdout + own.stderr)
