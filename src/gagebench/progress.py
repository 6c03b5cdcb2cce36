"""Progress of a long run on the terminal, in the logs or in Jupyter.

Renderers behind one small interface (:class:`Progress`): a tqdm bar with gages/s and an
ETA on a TTY, periodic log lines elsewhere (plain text or JSON per
:func:`gagebench.logs.setup_logging`, so a Kubernetes log collector sees progress), a
``tqdm.auto`` bar in Jupyter (a widget where ipywidgets is installed), and nothing in
quiet mode. The CLI picks with :func:`make_progress`;
``gagebench.run`` called from Python picks with :func:`default_progress`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO, Any

log = logging.getLogger("gagebench.progress")


def rate_text(per_s: float) -> str:
    """A gage rate readable at any speed: never rounded to "0 gages/s" while gages finish.

    ``302 gages/s``, ``2.5 gages/s``, ``0.25 gages/s``; below 0.1 gages/s the time per
    gage (``1 gage every 25 s``, ``1 gage every 12 min``).
    """
    if per_s >= 9.95:
        return f"{per_s:.0f} gages/s"
    if per_s >= 0.1:
        return f"{per_s:.2g} gages/s"
    if per_s <= 0:
        return "0 gages/s"
    every = 1.0 / per_s
    return f"1 gage every {every:.0f} s" if every < 600 else f"1 gage every {every / 60:.0f} min"


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
    """A tqdm bar counting gages: gages/s and ETA from tqdm, batches as its postfix.

    On a terminal (stderr, or ``stream``) by default; ``tqdm_class`` replaces
    ``tqdm.std.tqdm`` and ``tqdm_kwargs`` reach it (``mininterval``, ``file``...). A
    resumed run's bar starts at the gages already done (``initial``), so its rate counts
    this process's work only.
    """

    def __init__(
        self, stream: IO[str] | None = None, tqdm_class: Any = None, **tqdm_kwargs: Any
    ) -> None:
        super().__init__()
        self._tqdm_class = tqdm_class
        self._tqdm_kwargs = {"file": stream, **tqdm_kwargs} if stream else tqdm_kwargs
        self.bar: Any = None

    def _size(self) -> dict[str, Any]:
        """tqdm's size options: the terminal's size, followed as it changes."""
        return _terminal_size(self._tqdm_kwargs.get("file") or sys.stderr)

    def _new_bar(self, **kwargs: Any) -> Any:
        """A tqdm bar built with ``kwargs``."""
        if self._tqdm_class is not None:
            return self._tqdm_class(**kwargs)
        from tqdm.std import tqdm

        return tqdm(**kwargs)

    def render(self, final: bool) -> None:
        if self.bar is None:
            if final and self.total_gages == 0:
                return
            kwargs = {
                "total": self.total_gages,
                "initial": self.done_gages,
                "unit": "gage",
                "desc": "gagebench",
                **self._size(),
                **self._tqdm_kwargs,
            }
            self.bar = self._new_bar(**kwargs)
        self.bar.n = self.done_gages
        self.bar.set_postfix_str(f"{self.done_batches}/{self.total_batches} batches", refresh=False)
        self.bar.refresh()
        if final:
            self.bar.close()


def _terminal_size(stream: IO[str]) -> dict[str, Any]:
    """tqdm follows the terminal's size; a terminal that reports none (a pseudo-terminal
    nobody sized, a stream without a file) gets a fixed one: tqdm hides bars at 0 rows."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        size = os.terminal_size((0, 0))
    if size.columns > 0 and size.lines > 0:
        return {"dynamic_ncols": True}
    return {"ncols": 100, "nrows": 24}


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
            "progress: %d/%d batches, %d/%d gages, %s",
            self.done_batches,
            self.total_batches,
            self.done_gages,
            self.total_gages,
            rate_text(self.rate),
            extra={
                "batches_done": self.done_batches,
                "batches_total": self.total_batches,
                "gages_done": self.done_gages,
                "gages_total": self.total_gages,
                "gages_per_s": round(self.rate, 2),
            },
        )


class NotebookProgress(BarProgress):
    """A ``tqdm`` widget bar in a Jupyter kernel, a ``tqdm.auto`` bar elsewhere.

    In a kernel the widget is shown through a display handle, and when the run's compute
    phase ends the handle is updated to :class:`FinalProgress` (text and HTML): a saved or
    statically rendered notebook (the documentation site, nbviewer, GitHub) shows the
    final count instead of a blank box, since a widget needs a live kernel to draw.
    Without ipywidgets, tqdm's notebook bar cannot be built and the text bar is used.
    """

    def __init__(self, tqdm_class: Any = None, **tqdm_kwargs: Any) -> None:
        super().__init__(None, tqdm_class, **tqdm_kwargs)
        self._handle: Any = None

    def _size(self) -> dict[str, Any]:
        return {"dynamic_ncols": True}  # a widget's width is the page's, not a terminal's

    def _new_bar(self, **kwargs: Any) -> Any:
        if self._tqdm_class is None:
            if in_notebook():
                bar = self._widget_bar(**kwargs)
                if bar is not None:
                    return bar
            from tqdm.auto import tqdm

            try:
                return tqdm(**kwargs)
            except ImportError:  # tqdm.notebook without ipywidgets ("IProgress not found")
                pass
        return super()._new_bar(**kwargs)

    def _widget_bar(self, **kwargs: Any) -> Any:
        """tqdm's widget bar, displayed through a handle this renderer can replace."""
        try:
            from IPython.display import display
            from tqdm.notebook import tqdm as notebook_tqdm

            bar = notebook_tqdm(display=False, **kwargs)
        except ImportError:
            return None
        self._handle = display(bar.container, display_id=True)
        return bar

    def render(self, final: bool) -> None:
        super().render(final)
        if final and self._handle is not None and self.bar is not None:
            self._handle.update(FinalProgress(self.done_gages, self.total_gages, str(self.bar)))
            self._handle = None


class FinalProgress:
    """A finished bar as text and HTML: what a notebook keeps once the widget is gone."""

    def __init__(self, done: int, total: int, text: str) -> None:
        self.done, self.total, self.text = done, total, text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return (
            '<div class="gagebench-progress" style="font-family: monospace">'
            f'<progress value="{self.done}" max="{max(self.total, 1)}"></progress> '
            f"{html.escape(self.text)}</div>"
        )


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
