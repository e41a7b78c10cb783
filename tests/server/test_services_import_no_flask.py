"""Use cases run without the web layer: importing any service module loads no Flask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import importlib, json, pkgutil, sys
import server.services
names = sorted(m.name for m in pkgutil.walk_packages(server.services.__path__, "server.services."))
for name in names:
    importlib.import_module(name)
web = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "flask_smorest", "werkzeug"))
print(json.dumps({"modules": names, "web": web}))
"""


def test_every_service_module_imports_without_flask() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "server.services.ingest" in found["modules"]
    assert "server.services.cases" in found["modules"]
    assert found["web"] == []


def test_each_service_module_does_one_job_in_at_most_500_lines() -> None:
    """STYLE.md rule 12: past ~500 lines a module is split into a package named by its jobs."""
    services = Path(__file__).resolve().parents[2] / "server" / "services"
    long = {
        str(p.relative_to(services)): n
        for p in services.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}
