"""Vendored browser scripts are exactly what VENDORED.toml lists (pinned, with licence)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "server" / "web" / "static" / "vendor"


def _listed() -> dict[Path, str]:
    data = tomllib.loads((VENDOR / "VENDORED.toml").read_text(encoding="utf-8"))
    listed: dict[Path, str] = {}
    for package in data["package"]:
        assert package["integrity"].startswith("sha512-"), package["name"]
        assert package["license"], package["name"]
        folder = VENDOR / f"{package['name']}@{package['version']}"
        assert "LICENSE" in package["files"] or any(
            name.upper().startswith("LICENSE") for name in package["files"]
        ), f"{package['name']}: its LICENSE file must be vendored and listed"
        for name, digest in package["files"].items():
            listed[folder / name] = digest
    return listed


def test_every_listed_vendored_file_has_its_recorded_sha256() -> None:
    listed = _listed()
    assert listed, "VENDORED.toml lists no file"
    for path, digest in listed.items():
        assert path.is_file(), f"listed but missing: {path.relative_to(VENDOR)}"
        actual = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == digest, f"{path.relative_to(VENDOR)} changed: {actual} != {digest}"


def test_nothing_under_vendor_is_unlisted() -> None:
    listed = set(_listed())
    present = {p for p in VENDOR.rglob("*") if p.is_file() and p.name != "VENDORED.toml"}
    unlisted = sorted(str(p.relative_to(VENDOR)) for p in present - listed)
    assert unlisted == [], f"files under vendor/ missing from VENDORED.toml: {unlisted}"
