"""Configuration: environment, TOML file, validation naming the setting, masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.config import ConfigError, load_settings


def test_defaults_put_everything_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RHENUS_HOME", str(tmp_path / "h"))
    settings = load_settings()
    assert settings.database_url.get_secret_value() == f"sqlite+aiosqlite:///{tmp_path}/h/rhenus.db"
    assert settings.blobs_url == (tmp_path / "h" / "blobs").as_uri()
    assert settings.public_url == "http://127.0.0.1:8080"


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "rhenus.toml"
    config.write_text('node_name = "de-berlin"\nport = 9000\n')
    monkeypatch.setenv("RHENUS_CONFIG", str(config))
    monkeypatch.setenv("RHENUS_PORT", "9100")
    settings = load_settings(home=tmp_path)
    assert settings.node_name == "de-berlin"
    assert settings.port == 9100


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RHENUS_PORT", "eighty"),
        ("RHENUS_PORT", "70000"),
        ("RHENUS_DATABASE_URL", "mysql://x"),
        ("RHENUS_LOG_LEVEL", "loud"),
        ("RHENUS_REDIS_URL", "http://127.0.0.1:6379"),
        ("RHENUS_WORKERS", "0"),
    ],
)
def test_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv("RHENUS_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert variable in str(raised.value)


def test_invalid_setting_stops_the_cli_with_its_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["config", "show"], env={"RHENUS_HOME": str(tmp_path), "RHENUS_PORT": "-1"}
    )
    assert result.exit_code == 2
    assert "RHENUS_PORT" in result.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "RHENUS_HOME": str(tmp_path),
        "RHENUS_DATABASE_URL": "postgresql+asyncpg://rhenus:s3cr3t-pw@db.example:5432/rhenus",
        "RHENUS_S3_SECRET_ACCESS_KEY": "very-secret-key",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "s3cr3t-pw" not in result.output
    assert "very-secret-key" not in result.output
    assert "postgresql+asyncpg://rhenus:********@db.example:5432/rhenus" in result.output
    assert "RHENUS_S3_SECRET_ACCESS_KEY" in result.output


@pytest.mark.parametrize(
    ("host", "public_url"),
    [("0.0.0.0", "http://127.0.0.1:8080"), ("127.0.0.1", "https://node.example.eu")],
)
def test_conformance_mode_is_refused_unless_the_node_is_loopback_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, public_url: str
) -> None:
    monkeypatch.setenv("RHENUS_HOME", str(tmp_path))
    monkeypatch.setenv("RHENUS_DSP_CONFORMANCE_TOKEN", "tck-secret")
    monkeypatch.setenv("RHENUS_HOST", host)
    monkeypatch.setenv("RHENUS_PUBLIC_URL", public_url)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "loopback" in str(raised.value)


def test_conformance_mode_on_loopback_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RHENUS_HOME", str(tmp_path))
    monkeypatch.setenv("RHENUS_DSP_CONFORMANCE_TOKEN", "tck-secret")
    settings = load_settings()
    assert settings.dsp_conformance_token.get_secret_value() == "tck-secret"
    assert "tck-secret" not in str(settings.masked())


def test_several_workers_need_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RHENUS_HOME", str(tmp_path))
    monkeypatch.setenv("RHENUS_WORKERS", "2")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "RHENUS_REDIS_URL" in str(raised.value)
    monkeypatch.setenv("RHENUS_REDIS_URL", "redis://:redis-pw@127.0.0.1:6379/0")
    settings = load_settings()
    assert settings.workers == 2
    assert settings.masked()["redis_url"] == "redis://:********@127.0.0.1:6379/0"


def test_run_with_workers_but_no_redis_stops_before_serving(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--workers", "2"], env={"RHENUS_HOME": str(tmp_path), "COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "RHENUS_REDIS_URL" in result.output
    assert not (tmp_path / "keys").exists()  # nothing initialised
