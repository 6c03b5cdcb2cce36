"""How gagebench objects show themselves in Jupyter.

- ``gagebench.plot_*`` return open figures with ``_repr_png_``, so the last expression of a
  cell displays inline even though pyplot (IPython's inline backend) is never imported;
- ``RunResult._repr_html_`` is a card: run id, status counts, medians per model, a link
  to the report and timings;
- ``gagebench.run`` shows a ``tqdm.auto`` bar in a Jupyter kernel and nothing elsewhere,
  while the CLI keeps its bar / log lines.
"""

from __future__ import annotations

import io
import sys
import types
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

import gagebench
from gagebench.pipeline import RunResult
from gagebench.progress import (
    BarProgress,
    LogProgress,
    NotebookProgress,
    Progress,
    default_progress,
    in_notebook,
    make_progress,
)
from gagebench.report.comparison import compare
from report_fixtures import synthetic_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return synthetic_results(60, models=("nwm", "nhm"))


def _figures(results: pd.DataFrame) -> dict[str, Figure]:
    return {
        "plot_cdf": gagebench.plot_cdf(results, ["NSE", "KGE"]),
        "plot_map": gagebench.plot_map(results, "KGE"),
        "plot_by_class": gagebench.plot_by_class(results),
        "plot_scorecard": gagebench.plot_scorecard(results),
        "plot_comparison": gagebench.plot_comparison(compare(results)),
    }


def test_every_plot_function_returns_a_figure_that_displays_as_png(
    results: pd.DataFrame,
) -> None:
    public = {name for name in gagebench.__all__ if name.startswith("plot_")}
    figures = _figures(results)
    assert set(figures) == public
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        assert fig.axes, f"{name}: nothing drawn"
        png = fig._repr_png_()  # type: ignore[attr-defined]
        assert png.startswith(PNG_MAGIC), name
        assert len(png) > 5000, f"{name}: a blank image?"
        # still open and drawable after display (not closed before return)
        assert fig._repr_png_().startswith(PNG_MAGIC)  # type: ignore[attr-defined]


def test_ipython_displays_the_figures_without_pyplot(results: pd.DataFrame) -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    fig = gagebench.plot_cdf(results, "KGE")
    data, _ = formatters.DisplayFormatter().format(fig)
    assert data["image/png"][:8] == PNG_MAGIC


def _manifest(report: bool = True) -> dict[str, Any]:
    return {
        "run_id": "nb-<1>",
        "gagebench_version": gagebench.__version__,
        "inputs": {"n_gages": 3, "mode": "standard"},
        "counts": {"nwm": {"ok": 2, "too_few_days": 1}, "nhm": {"ok": 3}},
        "medians": {"nwm": {"NSE": 0.4321, "KGE": 0.5123}, "nhm": {"NSE": 0.25, "KGE": None}},
        "outputs": ["results.parquet", *(["report.html"] if report else [])],
        "timings": {
            "started": "2026-01-01T00:00:00+00:00",
            "setup_s": 1.25,
            "compute_s": 12.5,
            "commit_s": 0.5,
            "total_s": 14.25,
            "gages_per_s": 0.24,
        },
    }


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def test_run_result_card_has_counts_medians_report_link_id_and_timings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTER_SERVER_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # the notebook's folder: the run is under it
    result = RunResult(str(tmp_path / "runs" / "nb-1"), _manifest(), pd.DataFrame())
    card = result._repr_html_()
    assert "nb-&lt;1&gt;" in card  # the run id, escaped
    assert "too_few_days" in card
    assert "<td>2</td>" in card
    assert "<td>3</td>" in card
    assert "0.432" in card
    assert "0.512" in card
    assert "n/a" in card
    assert "setup 1.2 s" in card
    assert "compute 12.5 s" in card
    assert "total 14.2 s" in card
    assert "0.24 gages/s" in card  # a slow rate is never rounded away
    assert "2026-01-01T00:00:00+00:00" in card
    links = _Links()
    links.feed(card)
    assert links.hrefs == ["runs/nb-1/report.html"]  # relative: JupyterLab opens it
    assert "at <code>runs/nb-1</code>" in card  # where, as the link is: from the notebook
    assert result.report_url() == str(tmp_path / "runs" / "nb-1") + "/report.html"


def test_run_result_card_without_a_report_or_an_evaluated_gage() -> None:
    manifest = _manifest(report=False)
    manifest["medians"] = {}
    result = RunResult("s3://bucket/runs/x", manifest, pd.DataFrame())
    card = result._repr_html_()
    assert "no report" in card
    assert "<a " not in card
    assert "no gage evaluated" in card
    assert result.report_url() is None


def test_run_result_shows_no_password_or_token_of_its_url() -> None:
    """A run folder reached with ``user:pass@`` or a signed query: neither its repr nor
    its notebook card (the report's link included) shows the secret."""
    url = "https://alice:pw-0d9e8f7a6b@host/runs/x?X-Amz-Signature=sig-1a2b3c4d5e"
    result = RunResult(url, _manifest(report=True), pd.DataFrame())
    for shown in (repr(result), result._repr_html_()):
        assert "pw-0d9e8f7a6b" not in shown
        assert "sig-1a2b3c4d5e" not in shown
        assert "host/runs/x" in shown


def _card_links(result: RunResult) -> tuple[list[str], str]:
    card = result._repr_html_()
    links = _Links()
    links.feed(card)
    return links.hrefs, card


def test_card_links_a_report_under_the_server_root_relative_to_the_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JUPYTER_SERVER_ROOT is the served folder; the link is relative to the kernel's
    folder (the notebook's), as JupyterLab resolves links in outputs."""
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("JUPYTER_SERVER_ROOT", str(tmp_path))
    beside = RunResult(str(tmp_path / "runs" / "nb-1"), _manifest(), pd.DataFrame())
    assert _card_links(beside)[0] == ["../runs/nb-1/report.html"]
    relative = RunResult("out/nb-2", _manifest(), pd.DataFrame())  # output: a relative path
    assert _card_links(relative)[0] == ["out/nb-2/report.html"]


def test_card_shows_a_report_outside_the_root_with_a_command_not_a_file_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("JUPYTER_SERVER_ROOT", raising=False)  # root: the notebook's folder
    elsewhere = tmp_path / "scratch" / "runs" / "nb-1"
    hrefs, card = _card_links(RunResult(str(elsewhere), _manifest(), pd.DataFrame()))
    assert hrefs == []  # a file:// link would be blocked by the browser
    report = elsewhere / "report.html"
    assert f"<code>{report}</code>" in card
    assert "outside the Jupyter server's root" in card
    assert f"python -m webbrowser -t {report.as_uri()}</code>" in card


def test_card_shows_a_remote_report_with_the_command_that_copies_it() -> None:
    hrefs, card = _card_links(RunResult("s3://bucket/runs/x", _manifest(), pd.DataFrame()))
    assert hrefs == []  # an s3:// link opens nothing in a browser
    assert "<code>s3://bucket/runs/x/report.html</code>" in card
    assert "gagebench report s3://bucket/runs/x --output report.html</code>" in card


class _FakeBar:
    """Records what the renderer does to a tqdm bar."""

    made: list[_FakeBar] = []  # noqa: RUF012

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.n = kwargs.get("initial", 0)
        self.seen: list[int] = []
        self.postfix = ""
        self.closed = False
        _FakeBar.made.append(self)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def refresh(self) -> None:
        self.seen.append(self.n)

    def close(self) -> None:
        self.closed = True


def test_notebook_progress_counts_gages_from_a_resumed_start() -> None:
    _FakeBar.made.clear()
    progress = NotebookProgress(tqdm_class=_FakeBar)
    progress.start(total_batches=4, total_gages=100, done_batches=1, done_gages=25)
    progress.update(25)
    progress.update(50)
    progress.close()
    (bar,) = _FakeBar.made
    assert bar.kwargs["total"] == 100
    assert bar.kwargs["initial"] == 25
    assert bar.kwargs["unit"] == "gage"
    assert bar.seen == [25, 50, 100, 100]
    assert bar.postfix == "3/4 batches"
    assert bar.closed


def test_notebook_progress_with_the_real_tqdm() -> None:
    out = io.StringIO()
    progress = NotebookProgress(tqdm_class=None, file=out, mininterval=0)
    progress.start(total_batches=2, total_gages=10, done_batches=0, done_gages=0)
    progress.update(5)
    progress.update(5)
    progress.close()
    text = out.getvalue()
    assert "10/10" in text
    assert "2/2 batches" in text
    assert "gage" in text


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to run in a Jupyter kernel: IPython's shell has a ``kernel``."""
    shell = types.SimpleNamespace(kernel=object())
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)


def test_outside_a_kernel_a_python_run_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert not in_notebook()
    assert type(default_progress()) is Progress
    monkeypatch.delitem(sys.modules, "IPython")
    assert not in_notebook()


@pytest.mark.usefixtures("kernel")
def test_in_a_kernel_a_python_run_shows_a_bar_unless_progress_is_off() -> None:
    assert in_notebook()
    assert isinstance(default_progress(), NotebookProgress)
    assert type(default_progress(enabled=False)) is Progress


@pytest.mark.usefixtures("kernel")
def test_the_cli_keeps_its_bar_and_log_lines_in_a_kernel() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_progress(True, False, "text", io.StringIO()), LogProgress)
    assert type(make_progress(True, False, "text", Tty())) is BarProgress  # not the widget


@pytest.mark.usefixtures("kernel")
def test_run_without_a_renderer_uses_the_notebook_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import gagebench.pipeline as pipeline

    seen: list[Progress] = []

    def fake_run(config: Any, client: Any, sink: Any, progress: Progress, *_: Any) -> str:
        seen.append(progress)
        return "ran"

    monkeypatch.setattr(pipeline, "_plan_compute_commit", fake_run)
    monkeypatch.setattr(pipeline, "_complete_run", lambda config, sink: None)
    monkeypatch.setattr(pipeline, "_check_inputs", lambda config: None)
    config = gagebench.load_config(
        overrides={
            "observed": {"url": "memory://nb/obs.zarr"},
            "models": {"nwm": {"url": "memory://nb/nwm.zarr"}},
            "output": "memory://nb/runs",
            "cluster.backend": "local",
        }
    )
    assert pipeline.run(config, client=object()) == "ran"  # type: ignore[arg-type]
    assert isinstance(seen[-1], NotebookProgress)
    quiet = Progress()
    pipeline.run(config, client=object(), progress=quiet)  # type: ignore[arg-type]
    assert seen[-1] is quiet


def test_without_ipywidgets_the_notebook_bar_falls_back_to_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tqdm.auto

    def no_widgets(**kwargs: Any) -> None:
        raise ImportError("IProgress not found. Please update jupyter and ipywidgets.")

    monkeypatch.setattr(tqdm.auto, "tqdm", no_widgets)
    out = io.StringIO()
    progress = NotebookProgress(file=out, mininterval=0)
    progress.start(total_batches=1, total_gages=3, done_batches=0, done_gages=0)
    progress.update(3)
    progress.close()
    assert "3/3" in out.getvalue()


PROGRESS_CELL = """
from gagebench.progress import NotebookProgress

progress = NotebookProgress()
progress.start(total_batches=2, total_gages=10, done_batches=0, done_gages=0)
progress.update(5)
progress.update(5)
progress.close()
"""
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.mark.slow
def test_the_widget_bar_leaves_its_final_text_in_the_saved_notebook(tmp_path: Path) -> None:
    """In a real kernel (nbclient): the widget shows while the run goes, and the saved
    notebook keeps a text/HTML bar with the final count, which a static page can show
    (a widget without a live kernel renders as an empty box)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROGRESS_CELL)])
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = notebook.cells[0].outputs
    bundles = [o["data"] for o in outputs if o["output_type"] == "display_data"]
    assert bundles, outputs
    assert not [b for b in bundles if WIDGET_MIME in b]  # replaced by the final state
    (final,) = bundles
    assert "10/10" in final["text/plain"]
    assert "2/2 batches" in final["text/plain"]
    assert '<progress value="10" max="10">' in final["text/html"]
