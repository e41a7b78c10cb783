"""Read the systemd unit files of ``deploy/systemd`` and run exactly their ``ExecStart``.

The test machine has no systemd to start services, so the cluster tests parse each unit
and run its ``ExecStart`` command line as systemd would build it: ``%i`` (the instance of
a template unit) and ``${VAR}`` (from ``Environment=`` and the ``EnvironmentFile=`` the
test renders) are expanded the way systemd expands them, the line is split with shell
quoting rules, and only the absolute path of the program is mapped to where the tests
find it (``/usr/local/bin/weed`` → the venv's ``weed``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = DEPLOY / "systemd"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnitError(ValueError):
    """A unit file the tests cannot turn into a command line."""


@dataclass
class Unit:
    """One parsed unit file: ``sections[name][key]`` lists every value of ``key`` in order."""

    path: Path
    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def read(cls, name: str) -> Unit:
        """Parse ``deploy/systemd/<name>`` (continuation lines and comments understood)."""
        path = UNITS / name
        unit = cls(path)
        section: dict[str, list[str]] | None = None
        pending = ""
        for raw in path.read_text("utf-8").splitlines():
            line = pending + raw.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = unit.sections.setdefault(line[1:-1], {})
                continue
            if section is None or "=" not in line:
                raise UnitError(f"{path.name}: cannot read line {line!r}")
            key, value = (part.strip() for part in line.split("=", 1))
            section.setdefault(key, []).append(value)
        return unit

    def get(self, section: str, key: str) -> list[str]:
        """Every value of ``key`` in ``section`` (empty list when absent)."""
        return self.sections.get(section, {}).get(key, [])

    def environment(self) -> dict[str, str]:
        """The ``Environment=`` assignments of the [Service] section."""
        out: dict[str, str] = {}
        for value in self.get("Service", "Environment"):
            for word in shlex.split(value):
                name, _, val = word.partition("=")
                out[name] = val
        return out

    def command(
        self,
        env: Mapping[str, str],
        *,
        instance: str | None = None,
        programs: Mapping[str, str] | None = None,
        key: str = "ExecStart",
    ) -> list[str]:
        """The unit's command line with ``%i`` and ``${VAR}`` expanded from ``env``."""
        lines = self.get("Service", key)
        if len(lines) != 1:
            raise UnitError(f"{self.path.name}: expected one {key}, found {len(lines)}")
        line = lines[0]
        if line[:1] in "-@+!:":
            raise UnitError(f"{self.path.name}: {key} prefixes are not understood here")
        if "%i" in line:
            if instance is None:
                raise UnitError(f"{self.path.name} is a template: give the instance")
            line = line.replace("%i", instance)
        line = line.replace("%%", "%")
        merged = {**self.environment(), **env}

        def expand(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in merged:
                raise UnitError(f"{self.path.name}: ${{{name}}} is not set")
            return merged[name]

        argv = [_VAR.sub(expand, word) for word in shlex.split(line)]
        if not argv[0].startswith("/"):
            raise UnitError(f"{self.path.name}: {key} must start with an absolute path")
        argv[0] = (programs or {}).get(argv[0], argv[0])
        return argv


def read_environment_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an ``EnvironmentFile=`` (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise UnitError(f"{path}: cannot read line {line!r}")
        out[name.strip()] = value.strip().strip('"')
    return out


def write_environment_file(path: Path, values: Mapping[str, str]) -> Path:
    """Write ``values`` as an ``EnvironmentFile=`` (what an operator keeps in /etc)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), "utf-8")
    return path


def systemd_verify(*names: str) -> subprocess.CompletedProcess[str] | None:
    """``systemd-analyze verify`` of the named units, or None where it is not installed."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None
    return subprocess.run(
        [tool, "verify", *(str(UNITS / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
