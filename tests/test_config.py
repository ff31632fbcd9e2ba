"""Settings: precedence, .env.local, database URL spellings, and clear errors for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, Settings
from server.runtime.startup import renamed_variable_warnings
from server.settings.database_url import normalise_database_url
from tests.support.settings import make_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_put_everything_under_the_data_dir(tmp_path):
    settings = Settings.load({"CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'store.db'}"
    assert settings.encryption_key_file == tmp_path / "encryption.key"
    assert settings.port == 2455
    assert settings.upstream_base_url == "https://chatgpt.com/backend-api"
    assert settings.auth_base_url == "https://auth.openai.com"


def test_container_default_data_dir_is_var_lib(tmp_path):
    settings = Settings.load({"CODEX_LB_IN_CONTAINER": "1"}, cwd=tmp_path)
    assert settings.data_dir == Path("/var/lib/codex-lb")
    assert settings.host == "0.0.0.0"


def test_host_default_data_dir_is_in_home(tmp_path):
    settings = Settings.load({"CODEX_LB_IN_CONTAINER": "0"}, cwd=tmp_path)
    assert settings.data_dir == Path.home() / ".codex-lb"
    assert settings.host == "127.0.0.1"


def test_environment_beats_env_file_which_beats_defaults(tmp_path):
    (tmp_path / ".env.local").write_text(
        "# comment\n"
        "CODEX_LB_PORT=3000\n"
        "export CODEX_LB_LOG_LEVEL='debug'\n"
        "OTHER_TOOL_SETTING=ignored\n"
        'CODEX_LB_AUTH_BASE_URL="http://127.0.0.1:9999"\n'
    )
    settings = Settings.load({"CODEX_LB_PORT": "4000", "CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert settings.port == 4000
    assert settings.log_level == "DEBUG"
    assert settings.auth_base_url == "http://127.0.0.1:9999"
    assert "other_tool_setting" not in settings.extra


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/clb", "postgresql://u:p@db:5432/clb"),
        ("postgres://u@db/clb", "postgresql://u@db/clb"),
        ("postgresql+asyncpg://u:p@db/clb", "postgresql://u:p@db/clb"),
        ("postgresql+psycopg://u:p@db/clb?sslmode=require", "postgresql://u:p@db/clb?sslmode=require"),
        ("sqlite:////var/lib/codex-lb/store.db", "sqlite:////var/lib/codex-lb/store.db"),
        ("sqlite+aiosqlite:////data/store.db", "sqlite:////data/store.db"),
    ],
)
def test_database_url_spellings_are_normalised(given, expected):
    assert normalise_database_url(given) == expected


def test_relative_sqlite_path_is_made_absolute():
    assert normalise_database_url("sqlite:///store.db") == f"sqlite:///{Path.cwd() / 'store.db'}"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "http", "CODEX_LB_PORT"),
        ("PORT", "70000", "out of range"),
        ("DATABASE_URL", "mysql://root:hunter2@db/x", "CODEX_LB_DATABASE_URL"),
        ("UPSTREAM_BASE_URL", "chatgpt.com", "CODEX_LB_UPSTREAM_BASE_URL"),
        ("LOG_LEVEL", "LOUD", "CODEX_LB_LOG_LEVEL"),
        ("WORKERS", "0", "CODEX_LB_WORKERS"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.load({f"CODEX_LB_{name}": value, "CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path)


def test_database_password_never_appears_in_errors(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Settings.load({"CODEX_LB_DATABASE_URL": "mysql://root:hunter2@db/x"}, cwd=tmp_path)
    assert "hunter2" not in str(caught.value)


def test_server_with_bad_setting_stops_with_one_clear_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CODEX_LB_PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "sanic", "server.app", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert lines == ["codex-lb: configuration error: CODEX_LB_PORT='not-a-port' is not a whole number"]


def test_cli_help_explains_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--data-dir", "2455"):
        assert option in result.stdout


def test_an_old_name_still_works_and_start_up_names_the_new_one(tmp_path):
    settings = Settings.load(
        {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_MODELS_SYNC_INTERVAL_S": "60"}, cwd=tmp_path
    )
    assert settings.models_sync_interval_s == 60 and settings.unknown_variables == ()
    assert renamed_variable_warnings(settings) == [
        "codex-lb: warning: CODEX_LB_MODELS_SYNC_INTERVAL_S is an old name: call it "
        "CODEX_LB_MODELS_SYNC_INTERVAL_SECONDS (the new name wins when both are set)"
    ]
    assert make_settings(tmp_path, models_sync_interval_seconds="90").models_sync_interval_s == 90


def test_the_new_name_wins_and_a_bad_value_under_the_old_one_names_it(tmp_path):
    both = {"CODEX_LB_UPSTREAM_WS_TOTAL": "5", "CODEX_LB_UPSTREAM_WEBSOCKETS_TOTAL": "7"}
    assert Settings.load({**both, "CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path).upstream_ws_total == 7
    with pytest.raises(ConfigError, match="^CODEX_LB_UPSTREAM_WS_TOTAL='many' is not a whole number$"):
        Settings.load(
            {"CODEX_LB_UPSTREAM_WS_TOTAL": "many", "CODEX_LB_DATA_DIR": str(tmp_path)}, cwd=tmp_path
        )


def test_only_the_process_environment_says_we_run_in_the_image(tmp_path):
    (tmp_path / ".env.local").write_text("CODEX_LB_IN_CONTAINER=1\n")
    assert Settings.load({}, cwd=tmp_path).in_container is False
    assert Settings.load({"CODEX_LB_IN_CONTAINER": "1"}, cwd=tmp_path).host == "0.0.0.0"


def test_secrets_stay_out_of_errors_and_the_repr(tmp_path):
    with pytest.raises(ConfigError) as caught:
        make_settings(tmp_path, dashboard_bootstrap_token="short-secret")
    assert str(caught.value) == "CODEX_LB_DASHBOARD_BOOTSTRAP_TOKEN must be at least 16 characters"
    settings = make_settings(tmp_path, metrics_token="scrape-secret", dashboard_bootstrap_token="x" * 20)
    assert "scrape-secret" not in repr(settings) and "x" * 20 not in repr(settings)
