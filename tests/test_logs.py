"""The JSON log format keeps what the text format keeps: an exception's traceback."""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import logs
from app.factory import create_app
from tests.conftest import make_config


@pytest.fixture(autouse=True)
def app_logger_restored() -> Iterator[None]:
    """`logs.configure` rebinds the `app` logger: give later tests back what they had."""
    root = logging.getLogger("app")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed, without its time (it varies)."""
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert line.pop("time")
    return lines


def logger_to(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("tests.logs.json")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def test_log_exception_keeps_the_traceback_in_an_exception_field() -> None:
    stream = io.StringIO()
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError as exc:
        logger_to(stream).exception("mapping failed for %s", "row 7")
        expected = "".join(traceback.format_exception(exc)).rstrip("\n")

    (line,) = json_lines(stream.getvalue())
    assert line == {
        "level": "error",
        "logger": "tests.logs.json",
        "message": "mapping failed for row 7",
        "exception": expected,
    }
    assert line["exception"].startswith("Traceback (most recent call last):\n")
    assert line["exception"].endswith("\nKeyError: 'missing'")


def test_a_line_without_an_exception_has_no_exception_field_and_keeps_its_fields() -> None:
    stream = io.StringIO()
    logger_to(stream).warning("skipped %d", 3, extra={"fields": {"reason": "too_large"}})

    assert json_lines(stream.getvalue()) == [
        {"level": "warning", "logger": "tests.logs.json", "message": "skipped 3",
         "reason": "too_large"}
    ]  # fmt: skip


def test_a_logged_stack_is_kept_in_a_stack_field() -> None:
    stream = io.StringIO()
    logger_to(stream).info("where am I", stack_info=True)

    (line,) = json_lines(stream.getvalue())
    assert line["stack"].startswith("Stack (most recent call last):\n")
    assert "test_a_logged_stack_is_kept_in_a_stack_field" in line["stack"]


def test_a_500_from_flask_is_logged_as_json_with_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(f"sqlite:///{tmp_path}/bridge.sqlite3", "http://127.0.0.1:9",
                         log_format="json")  # fmt: skip
    app = create_app(config)  # logs to sys.stderr, which capsys holds now

    @app.get("/explode")
    def explode() -> str:
        raise RuntimeError("the cause of this 500")

    capsys.readouterr()
    response = app.test_client().get("/explode")

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_server_error"
    (line,) = json_lines(capsys.readouterr().err)
    assert {k: v for k, v in line.items() if k != "exception"} == {
        "level": "error",
        "logger": "app.factory",
        "message": "Exception on /explode [GET]",
    }
    assert line["exception"].startswith("Traceback (most recent call last):\n")
    assert 'raise RuntimeError("the cause of this 500")' in line["exception"]
    assert line["exception"].endswith("\nRuntimeError: the cause of this 500")
