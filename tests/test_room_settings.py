"""The server's settings: one typed object read from defaults, a TOML file, SYNTHROOM_<FIELD>
variables and flags (in rising precedence), documented in one table."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthroom.cli.app import app as cli
from synthroom.errors import InputError
from synthroom.room.settings import Settings, load_settings, settings_table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cleanroom.md"


def test_each_source_overrides_the_one_before(tmp_path):
    config = tmp_path / "server.toml"
    config.write_text("[server]\nmax_rows = 500\npage_size = 20\njob_threads = 3\n")
    environ = {"SYNTHROOM_PAGE_SIZE": "30", "SYNTHROOM_JOB_THREADS": "4"}
    settings = load_settings(config, environ, job_threads=5, max_page_size=None)
    assert (settings.max_rows, settings.page_size, settings.job_threads) == (500, 30, 5)
    assert settings.max_page_size == Settings().max_page_size  # None: not given
    top_level = tmp_path / "flat.toml"
    top_level.write_text("max_rows = 9\n")
    assert load_settings(None, {"SYNTHROOM_CONFIG": str(top_level)}).max_rows == 9


def test_a_bad_value_or_key_names_where_it_came_from(tmp_path):
    with pytest.raises(InputError, match="^SYNTHROOM_MAX_ROWS: Input should be greater than or equal to 1$"):
        load_settings(None, {"SYNTHROOM_MAX_ROWS": "0"})
    config = tmp_path / "server.toml"
    config.write_text("max_rows = 0\n")
    with pytest.raises(InputError, match=f"^{config}: max_rows: Input should be greater than or equal to 1$"):
        load_settings(config, {})
    config.write_text("max_row = 5\n")
    with pytest.raises(InputError, match=f"^{config}: unknown setting 'max_row' \\(the settings: max_body_bytes, "):
        load_settings(config, {})
    config.write_text("max_rows = \n")
    with pytest.raises(InputError, match=f"^the config file {config} is not valid TOML: "):
        load_settings(config, {})


def test_serve_takes_the_environment_and_a_flag_given_overrides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHROOM_MAX_ROWS", "0")
    refused = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path / "d")])
    assert refused.exit_code == 2 and "SYNTHROOM_MAX_ROWS: Input should be greater than or equal to 1" in refused.output
    refused = CliRunner().invoke(
        cli, ["serve", "--data-dir", str(tmp_path / "d"), "--max-rows", "5", "--page-size", "0"]
    )
    assert refused.exit_code == 2 and "SYNTHROOM_MAX_ROWS" not in refused.output
    assert "--page-size: Input should be greater than or equal to 1" in refused.output
    assert not (tmp_path / "d").exists()  # nothing written


def test_the_docs_table_is_the_settings_own():
    assert settings_table() in DOCS.read_text()


def test_the_served_room_has_the_config_files_and_the_environments_settings(tmp_path, monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app))
    config = tmp_path / "server.toml"
    config.write_text("[server]\nmax_rows = 500\npage_size = 20\n")
    monkeypatch.setenv("SYNTHROOM_PAGE_SIZE", "30")
    result = CliRunner().invoke(
        cli, ["serve", "--data-dir", str(tmp_path / "d"), "--config", str(config), "--max-body-bytes", "4096"]
    )
    assert result.exit_code == 0, result.output
    settings = started["app"].state.room.settings
    assert (settings.max_rows, settings.page_size, settings.max_body_bytes) == (500, 30, 4096)
