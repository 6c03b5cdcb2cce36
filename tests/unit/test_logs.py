"""gagebench.logs: the CLI's log lines, text for people and JSON for collectors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from gagebench.logs import JsonFormatter, setup_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_for_collectors_text_for_people(root_logger: logging.Logger) -> None:
    setup_logging("json")
    (handler,) = root_logger.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert root_logger.level == logging.INFO
    assert logging.getLogger("distributed").level == logging.WARNING
    setup_logging("text", quiet=True)
    (handler,) = root_logger.handlers  # replaced, not added
    assert not isinstance(handler.formatter, JsonFormatter)
    assert root_logger.level == logging.WARNING


def test_a_json_line_has_the_record_and_its_extras() -> None:
    record = logging.LogRecord("gagebench.x", logging.WARNING, "f.py", 1, "a %s", ("b",), None)
    record.gages_done = 3
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning"
    assert line["logger"] == "gagebench.x"
    assert line["message"] == "a b"
    assert line["gages_done"] == 3
    assert line["time"].endswith("+00:00")
