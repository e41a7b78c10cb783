"""Settings from CASETRAIL_* variables: embedded default, overrides, every fault at once."""

from __future__ import annotations

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
