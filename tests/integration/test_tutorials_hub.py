"""Each tutorial as a hub user runs it: every cell except the stand-ins.

A tutorial's stand-in cells (tagged ``stand-in``, hidden on the site) start what a hub or
a cloud account provides: a dask-gateway server, an S3 server. A hub user skips them, so
here the test starts the same services itself (a real dask-gateway server with local
processes, moto's S3 server on 127.0.0.1), gives their endpoints through the environment
as a hub does (``DASK_GATEWAY__ADDRESS``, ``SCRATCH_BUCKET``, ``AWS_ENDPOINT_URL``...),
and executes the rest of the MyST notebook in a real kernel (nbclient), in a fresh folder.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

# the module-scoped dask-gateway server of the gateway backend's tests
from test_gateway_server import gateway_url  # noqa: F401

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
STAND_IN = "stand-in"
HIDDEN = {"hide-input", "remove-input", "remove-cell"}
HUB_TUTORIALS = ("jupyterhub-gateway", "bring-your-own-stores")


def _notebook(name: str) -> Any:
    from myst_nb.core.read import read_myst_markdown_notebook

    path = TUTORIALS / f"{name}.md"
    return read_myst_markdown_notebook(path.read_text(), path=path)


def _tags(cell: Any) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _code(cell: Any) -> str:
    return "\n".join(
        line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )


def _assigned(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _loaded(source: str) -> set[str]:
    return {
        node.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


@pytest.mark.parametrize("name", HUB_TUTORIALS)
def test_stand_in_cells_are_hidden_and_define_nothing_the_hub_cells_use(name: str) -> None:
    """Skipping the stand-ins cannot end in a NameError: every name a hub cell uses is
    set by a hub cell before it (or is a builtin)."""
    import builtins

    cells = [c for c in _notebook(name).cells if c.cell_type == "code"]
    stand_ins = [c for c in cells if STAND_IN in _tags(c)]
    assert stand_ins, f"{name}: no cell tagged {STAND_IN!r}"
    for cell in stand_ins:
        assert _tags(cell) & HIDDEN, f"{name}: a stand-in cell is shown in full"
    known = set(dir(builtins)) | {"display", "get_ipython"}
    for cell in cells:
        if STAND_IN in _tags(cell):
            continue
        source = _code(cell)
        missing = _loaded(source) - known - _assigned(source)
        assert not missing, f"{name}: {sorted(missing)} used before a hub cell sets them"
        known |= _assigned(source)


def _execute(name: str, folder: Path) -> Any:
    """The tutorial without its stand-in cells, executed in a kernel started in ``folder``."""
    from nbclient import NotebookClient

    folder.mkdir(parents=True, exist_ok=True)
    notebook = _notebook(name)
    notebook.cells = [c for c in notebook.cells if STAND_IN not in _tags(c)]
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    return notebook


def _html_outputs(notebook: Any) -> str:
    return "\n".join(
        str(output.get("data", {}).get("text/html", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def _linked_reports(notebook: Any, folder: Path) -> list[Path]:
    """The local files the outputs link to (relative hrefs), which must exist."""
    hrefs = re.findall(r"""href=['"]([^'"]+\.html)['"]""", _html_outputs(notebook))
    relative = [h for h in hrefs if "://" not in h and not h.startswith("/")]
    return [folder / h for h in relative]


@pytest.mark.integration
@pytest.mark.slow
def test_jupyterhub_tutorial_runs_on_a_hub_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gateway_url: str,  # noqa: F811
) -> None:
    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", gateway_url)
    monkeypatch.setenv("DASK_GATEWAY__AUTH__TYPE", "basic")
    monkeypatch.setenv("SCRATCH_BUCKET", str(tmp_path / "scratch"))
    notebook = _execute("jupyterhub-gateway", tmp_path / "home")
    reports = _linked_reports(notebook, tmp_path / "home")
    assert reports == [tmp_path / "home" / "reports" / "gateway-backend.html"]
    assert "gagebench report" in reports[0].read_text()
    assert (tmp_path / "scratch" / "runs" / "from-the-hub" / "report.html").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_own_stores_tutorial_runs_against_a_bucket_given_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: Any, bucket_url: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("GAGEBENCH_BUCKET", bucket_url)
    notebook = _execute("bring-your-own-stores", tmp_path)
    reports = _linked_reports(notebook, tmp_path)
    assert reports == [tmp_path / "reports" / "my-stores.html"]
    assert "gagebench report" in reports[0].read_text()
    import fsspec

    fs = fsspec.filesystem("s3", **s3.storage_options)
    assert fs.exists(f"{bucket_url}/runs/my-stores/results.parquet")


@pytest.mark.integration
@pytest.mark.slow
def test_benchmark_tutorial_card_links_its_report_beside_the_notebook(tmp_path: Path) -> None:
    notebook = _execute("benchmark-500-gages", tmp_path)
    reports = _linked_reports(notebook, tmp_path)
    assert tmp_path / "runs" / "tutorial-500" / "report.html" in reports
    assert all(report.exists() for report in reports)
