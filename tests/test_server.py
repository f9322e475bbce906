"""`kotally serve`'s uvicorn settings that come from KOTALLY_ settings (uvicorn itself not run)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from kotally import cli as cli_module
from kotally import server
from kotally.config import Settings
from tests.conftest import TEST_SECRET


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append(kw))
    # serve() points the metrics at a directory it removes when uvicorn returns; the variable is
    # put back as it was after the test, or later tests' /metrics would look for that directory.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    return calls


@pytest.mark.parametrize(("value", "expected"), [(None, 5), ("75", 75)])
def test_keep_alive_from_the_settings(
    uvicorn_run: list[dict[str, Any]], database_url: str, value: str | None, expected: int
) -> None:
    overrides = {} if value is None else {"keep_alive_seconds": value}
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, **overrides)
    server.serve(settings, host="127.0.0.1", port=8000, workers=2)
    (call,) = uvicorn_run
    assert call["timeout_keep_alive"] == expected
    assert (call["workers"], call["port"]) == (2, 8000)


@pytest.mark.parametrize("value", ["0", "3601", "-1", "soon", "1.5"])
def test_keep_alive_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="keep_alive_seconds"):
        Settings(keep_alive_seconds=value)


def test_serve_names_the_bad_setting(
    uvicorn_run: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("KOTALLY_DATABASE_URL", database_url)
    monkeypatch.setenv("KOTALLY_KEEP_ALIVE_SECONDS", "0")
    result = CliRunner().invoke(cli_module.main, ["serve"])
    assert result.exit_code == 1
    assert "keep_alive_seconds" in result.output
    assert uvicorn_run == []
