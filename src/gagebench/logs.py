"""Log lines of the CLI on stderr: text for people, one JSON object a line for collectors.

:func:`setup_logging` configures the root logger once per command; :class:`JsonFormatter`
turns a record and its ``extra`` fields (the progress counts, for example) into JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any

from gagebench.defaults import default

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_text:  # set (masked) by gagebench.redact's record factory
            data["exception"] = record.exc_text
        elif record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(log_format: str = default("log_format"), quiet: bool = False) -> None:
    """Configure the root logger once for the CLI: text for people, JSON for collectors.

    Every log record and warning of the process is masked (:func:`gagebench.redact.install`).
    """
    from gagebench.redact import install

    install()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    # distributed logs every worker start/stop at INFO: keep the run's own lines readable.
    # Its logging is (re)configured from dask config when distributed is imported, in this
    # process and in worker processes, so set it there too.
    import dask.config

    dask.config.set({"logging.distributed": "warning"})
    logging.getLogger("distributed").setLevel(logging.WARNING)
