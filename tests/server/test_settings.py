"""Settings from CASETRAIL_* variables: embedded default, overrides, every fault at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.settings import Settings, SettingsInvalid


def test_zero_config_is_the_embedded_default_under_var(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'casetrail.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'var' / 'blobs'}"
    assert settings.signing_key_file == tmp_path / "var" / "keys" / "log-signing.pem"
    assert settings.is_sqlite


def test_postgresql_and_s3_by_urls_only(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CASETRAIL_DATA_DIR": str(tmp_path),
            "CASETRAIL_DATABASE_URL": "postgresql://ct@db.internal/casetrail",
            "CASETRAIL_STORAGE_URL": "s3://evidence/casetrail",
            "CASETRAIL_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
            "CASETRAIL_S3_ACCESS_KEY": "ak",
            "CASETRAIL_S3_SECRET_KEY": "sk",
            "CASETRAIL_MAX_JSON_BODY": "2048",
            "CASETRAIL_PUBLIC_URL": "https://evidence.example.gov.cn/",
        }
    )
    assert not settings.is_sqlite
    assert settings.max_json_body == 2048
    assert settings.public_url == "https://evidence.example.gov.cn"
    assert settings.storage_options()["s3_endpoint_url"] == "http://127.0.0.1:8333"
    assert "sk" not in repr(settings)  # secrets stay out of logs


def test_every_bad_variable_is_reported_together() -> None:
    with pytest.raises(SettingsInvalid) as caught:
        Settings.from_env(
            {
                "CASETRAIL_DATABASE_URL": "mysql://x/y",
                "CASETRAIL_STORAGE_URL": "file://relative/path",
                "CASETRAIL_MAX_JSON_BODY": "lots",
                "CASETRAIL_LOG_ORIGIN": "has space",
                "CASETRAIL_PUBLIC_URL": "ftp://x",
            }
        )
    names = [p.split(":")[0] for p in caught.value.problems]
    assert names == [
        "CASETRAIL_DATABASE_URL",
        "CASETRAIL_STORAGE_URL",
        "CASETRAIL_MAX_JSON_BODY",
        "CASETRAIL_LOG_ORIGIN",
        "CASETRAIL_PUBLIC_URL",
    ]
    assert "配置有误" in str(caught.value)


def test_config_file_gives_settings_and_variables_win(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        'data_dir = "../data"\n'
        'public_url = "https://file.example.gov.cn"\n'
        "s3_retention_days = 3650\n"
        'cors_origins = ["https://app.example.gov.cn", "http://127.0.0.1:5173"]\n',
        "utf-8",
    )
    settings = Settings.from_env(
        {"CASETRAIL_CONFIG": str(config), "CASETRAIL_PUBLIC_URL": "https://env.example.gov.cn"}
    )
    assert settings.config_file == config
    assert settings.data_dir == tmp_path / "data"  # relative to the file, made absolute
    assert settings.public_url == "https://env.example.gov.cn"
    assert settings.cors_origins == ("https://app.example.gov.cn", "http://127.0.0.1:5173")
    assert settings.storage_options()["s3_retention_days"] == "3650"


def test_config_file_faults_are_listed_with_the_variables(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('data_dir = "/srv/ct"\nport = 8000\ncors_origins = "https://a/b"\n')
    with pytest.raises(SettingsInvalid) as caught:
        Settings.from_env(
            {
                "CASETRAIL_CONFIG": str(config),
                "CASETRAIL_S3_RETENTION_DAYS": "0",
                "CASETRAIL_LOG_FORMAT": "xml",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "未知设置 (unknown setting) 'port'" in problems
    assert "CASETRAIL_S3_RETENTION_DAYS" in problems
    assert "CASETRAIL_CORS_ORIGINS" in problems and "'https://a/b'" in problems
    assert "CASETRAIL_LOG_FORMAT: 须为 json 或 text" in problems
    with pytest.raises(SettingsInvalid, match="找不到配置文件"):
        Settings.from_env({"CASETRAIL_CONFIG": str(tmp_path / "missing.toml")})


def test_default_config_location_is_read_for_the_process_environment(
    tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "home"
    (home / ".config" / "casetrail").mkdir(parents=True)
    (home / ".config" / "casetrail" / "config.toml").write_text('data_dir = "/srv/casetrail"\n')
    monkeypatch.setenv("HOME", str(home))
    for name in [n for n in os.environ if n.startswith("CASETRAIL_")]:
        monkeypatch.delenv(name)
    assert Settings.from_env().data_dir == Path("/srv/casetrail")
    assert Settings.from_env({}).config_file is None  # an explicit mapping reads no default
