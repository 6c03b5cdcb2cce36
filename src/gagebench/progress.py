"""Progress of a long run on the terminal or in the logs, and JSON log lines.

Renderers behind one small interface (:class:`Progress`): a one-line bar with gages/s and
an ETA on a TTY, periodic log lines elsewhere (plain text or JSON, so a Kubernetes log
collector sees progress), a ``tqdm.auto`` bar in Jupyter (a widget where ipywidgets is
installed), and nothing in quiet mode. The CLI picks with :func:`make_progress`;
``gagebench.run`` called from Python picks with :func:`default_progress`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import time
from typing import IO, Any

log = logging.getLogger("gagebench.progress")


class Progress:
    """Counts finished batches and gages; subclasses decide how to show them."""

    def __init__(self) -> None:
        self.total_batches = 0
        self.total_gages = 0
        self.done_batches = 0
        self.done_gages = 0
        self._new_gages = 0
        self._t0 = time.perf_counter()

    def start(
        self, total_batches: int, total_gages: int, done_batches: int, done_gages: int
    ) -> None:
        """Begin counting; ``done_*`` are batches already finished (a resumed run)."""
        self.total_batches, self.total_gages = total_batches, total_gages
        self.done_batches, self.done_gages = done_batches, done_gages
        self._new_gages = 0
        self._t0 = time.perf_counter()
        self.render(final=False)

    def update(self, gages: int) -> None:
        """One more batch of ``gages`` gages is finished."""
        self.done_batches += 1
        self.done_gages += gages
        self._new_gages += gages
        self.render(final=False)

    def close(self) -> None:
        """The compute phase is over."""
        self.render(final=True)

    @property
    def rate(self) -> float:
        """Gages per second computed by this process so far."""
        elapsed = time.perf_counter() - self._t0
        return self._new_gages / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first batch)."""
        rate = self.rate
        if rate <= 0:
            return None
        return (self.total_gages - self.done_gages) / rate

    def render(self, final: bool) -> None:
        """Show the current state (nothing here: quiet mode)."""


class BarProgress(Progress):
    """A one-line bar redrawn in place on a terminal (stderr)."""

    def __init__(self, stream: IO[str] | None = None, width: int = 28) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0

    def render(self, final: bool) -> None:
        now = time.perf_counter()
        if not final and now - self._last < 0.1 and self.done_batches < self.total_batches:
            return
        self._last = now
        total = max(self.total_batches, 1)
        filled = int(self.width * self.done_batches / total)
        bar = "#" * filled + "." * (self.width - filled)
        eta = self.eta
        eta_text = f" eta {eta:4.0f}s" if eta is not None and not final else ""
        line = (
            f"\r[{bar}] {self.done_batches}/{self.total_batches} batches "
            f"{self.done_gages}/{self.total_gages} gages {self.rate:7.1f} gages/s{eta_text}"
        )
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()


class LogProgress(Progress):
    """Progress as log records (text or JSON, per the logging setup), every ``every`` s."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._last = -1e9

    def render(self, final: bool) -> None:
        now = time.perf_counter()
        if not final and now - self._last < self.every:
            return
        self._last = now
        log.info(
            "progress: %d/%d batches, %d/%d gages, %.1f gages/s",
            self.done_batches,
            self.total_batches,
            self.done_gages,
            self.total_gages,
            self.rate,
            extra={
                "batches_done": self.done_batches,
                "batches_total": self.total_batches,
                "gages_done": self.done_gages,
                "gages_total": self.total_gages,
                "gages_per_s": round(self.rate, 2),
            },
        )


class NotebookProgress(Progress):
    """A ``tqdm.auto`` bar counting gages: a widget in Jupyter, text elsewhere.

    ``tqdm_class`` replaces ``tqdm.auto.tqdm`` (tests); without ipywidgets, tqdm's
    notebook bar cannot be built and the plain text bar is used instead.
    """

    def __init__(self, tqdm_class: Any = None, **tqdm_kwargs: Any) -> None:
        super().__init__()
        self._tqdm_class = tqdm_class
        self._tqdm_kwargs = tqdm_kwargs
        self.bar: Any = None

    def _open(self) -> Any:
        kwargs = {
            "total": self.total_gages,
            "initial": self.done_gages,
            "unit": "gage",
            "desc": "gagebench",
            "dynamic_ncols": True,
            **self._tqdm_kwargs,
        }
        if self._tqdm_class is not None:
            return self._tqdm_class(**kwargs)
        from tqdm.auto import tqdm

        try:
            return tqdm(**kwargs)
        except ImportError:  # tqdm.notebook without ipywidgets ("IProgress not found")
            from tqdm.std import tqdm as text_tqdm

            return text_tqdm(**kwargs)

    def render(self, final: bool) -> None:
        if self.bar is None:
            if final and self.total_gages == 0:
                return
            self.bar = self._open()
        self.bar.n = self.done_gages
        self.bar.set_postfix_str(f"{self.done_batches}/{self.total_batches} batches", refresh=False)
        self.bar.refresh()
        if final:
            self.bar.close()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel), never importing IPython."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def default_progress(enabled: bool = True) -> Progress:
    """The renderer for ``gagebench.run`` called without one: a bar in Jupyter, else none.

    From a script or a terminal IPython, ``run`` stays silent unless given a renderer
    (the CLI passes :func:`make_progress`'s); ``enabled`` is the ``progress`` setting.
    """
    if enabled and in_notebook():
        return NotebookProgress()
    return Progress()


def make_progress(
    enabled: bool, quiet: bool, log_format: str, stream: IO[str] | None = None
) -> Progress:
    """The renderer for a run: a bar on a TTY, log lines otherwise, nothing when quiet."""
    stream = stream or sys.stderr
    if quiet or not enabled:
        return Progress()
    if log_format == "text" and stream.isatty():
        return BarProgress(stream)
    return LogProgress()


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
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(log_format: str = "text", quiet: bool = False) -> None:
    """Configure the root logger once for the CLI: text for people, JSON for collectors."""
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
