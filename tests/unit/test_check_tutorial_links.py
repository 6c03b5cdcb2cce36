"""The site check of .ci/run (``.ci/check_tutorial_links.py``) on small built pages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "check_tutorial_links.py"
WIDGET = '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "x"}</script>'


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_tutorial_links", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _site(tmp_path: Path, body: str, ship: bool = True) -> Path:
    pages = tmp_path / "site" / "tutorials"
    pages.mkdir(parents=True)
    (pages / "index.html").write_text("<p>tutorials</p>")
    (pages / "run.html").write_text(f"<html><body>{body}</body></html>")
    if ship:
        (pages / "runs" / "r").mkdir(parents=True)
        (pages / "runs" / "r" / "report.html").write_text("<p>report</p>")
    return tmp_path / "site"


def test_a_page_linking_a_shipped_report_passes(tmp_path: Path, check: ModuleType) -> None:
    site = _site(tmp_path, '<a href="runs/r/report.html">report.html</a>')
    assert check.problems(site) == []
    assert check.main(["check", str(site)]) == 0


@pytest.mark.parametrize(
    ("body", "ship", "expected"),
    [
        ('<a href="file:///tmp/x/report.html">r</a>', True, "a browser cannot open it"),
        ('<a href="s3://bucket/runs/r/report.html">r</a>', True, "a browser cannot open it"),
        ('<a href="runs/r/report.html">r</a>', False, "which the site does not ship"),
        ("<p>no link</p>", True, "links no report"),
        ('<a href="runs/r/report.html">r</a>' + WIDGET, True, "widget output"),
    ],
    ids=["file-link", "s3-link", "report-not-shipped", "no-report", "blank-widget"],
)
def test_each_problem_a_reader_would_meet_is_reported(
    tmp_path: Path, check: ModuleType, body: str, ship: bool, expected: str
) -> None:
    site = _site(tmp_path, body, ship)
    found = check.problems(site)
    assert any(expected in line for line in found), found
    assert check.main(["check", str(site)]) == 1
