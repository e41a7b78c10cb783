"""Every command finds the same data from any directory and never makes a stray ./var."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import Settings
from tests.server.conftest import World
from tests.server.test_api_cases import open_case
from tests.support.postgres import PostgresCluster

CASETRAIL = str(Path(sys.executable).parent / "casetrail")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env["HOME"] = str(home)  # no ~/.config/casetrail/config.toml of the developer
    env.update(extra)
    return env


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # paths matter on SQLite only
def test_cases_list_gives_the_same_answer_from_root_and_from_a_temp_dir(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    open_case(world, title="某超市销售过期食品案")
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    # A relative data_dir in the file is relative to the file, not to the current directory.
    data_dir = os.path.relpath(settings.data_dir, config.parent)
    config.write_text(
        f'data_dir = "{data_dir}"\ndatabase_url = "{settings.database_url}"\n', "utf-8"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(tmp_path / "home", CASETRAIL_CONFIG=str(config))
    answers = [
        subprocess.run(
            [CASETRAIL, "cases", "list"], cwd=cwd, env=env, capture_output=True, text=True
        )
        for cwd in ("/", elsewhere)
    ]
    for answer in answers:
        assert answer.returncode == 0, answer.stderr
    assert answers[0].stdout == answers[1].stdout
    assert "某超市销售过期食品案" in answers[0].stdout
    assert list(elsewhere.iterdir()) == []
    assert not Path("/var/casetrail.db").exists() and not Path("/var/blobs").exists()


def test_a_command_without_a_database_names_it_and_creates_nothing(tmp_path: Path) -> None:
    answer = subprocess.run(
        [CASETRAIL, "cases", "list"],
        cwd=tmp_path,
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 1
    assert f"找不到数据库 {tmp_path / 'var' / 'casetrail.db'}" in answer.stderr
    assert "nothing was created" in answer.stderr
    assert list(tmp_path.iterdir()) == []  # no ./var, no home folder


@pytest.mark.postgres
def test_an_uninitialised_postgresql_database_is_named_without_its_password(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    name = postgres.create_database()
    url = postgres.url(name).replace(f"//{postgres.user}@", f"//{postgres.user}:s3cret-pw@", 1)
    assert "s3cret-pw" in url
    answer = subprocess.run(
        [CASETRAIL, "cases", "list"],
        cwd=tmp_path,
        env=_env(tmp_path / "home", CASETRAIL_DATABASE_URL=url, CASETRAIL_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 1
    assert "数据库尚未初始化" in answer.stderr and "s3cret-pw" not in answer.stderr
    assert f"{postgres.user}:***@" in answer.stderr
    postgres.drop_database(name)
