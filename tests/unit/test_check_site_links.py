"""The link check of .ci/run (``.ci/check_site_links.py``) on small built sites."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "check_site_links.py"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_site_links", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _site(tmp_path: Path, body: str) -> Path:
    """A site of a landing page, a page under guide/ holding ``body``, an image and a
    download."""
    site = tmp_path / "site"
    (site / "guide").mkdir(parents=True)
    (site / "_images").mkdir()
    (site / "_downloads").mkdir()
    (site / "index.html").write_text('<h1 id="top">gagebench</h1><a name="old">old</a>')
    (site / "_images" / "map.png").write_bytes(b"\x89PNG")
    (site / "_downloads" / "t.ipynb").write_text("{}")
    (site / "guide" / "page.html").write_text(f"<html><body>{body}</body></html>")
    return site


def test_links_that_lead_somewhere_pass(tmp_path: Path, check: ModuleType) -> None:
    site = _site(
        tmp_path,
        '<a href="../index.html#top">up</a> <a href="../index.html#old">old</a>'
        ' <a href="../">home</a> <img src="../_images/map.png">'
        ' <a href="../_downloads/t.ipynb">notebook</a> <a href="#">menu</a>'
        ' <a href="https://example.org/x.html">away</a> <a href="mailto:a@b.org">mail</a>'
        ' <img src="data:image/png;base64,AAAA"> <a href="page.html?x=1">self</a>',
    )
    assert check.problems(site) == []
    assert check.main([str(site)]) == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<a href="missing.html">x</a>', "links missing.html, which the site does not have"),
        ('<img src="../_images/none.png">', "links ../_images/none.png, which the site"),
        ('<a href="../index.html#nowhere">x</a>', "that page has no #nowhere"),
        ('<a href="#nowhere">x</a>', "that page has no #nowhere"),
        ('<a href="../../outside.html">x</a>', "outside the site"),
        ('<link rel="stylesheet" href="../_static/none.css">', "_static/none.css"),
    ],
    ids=["page", "image", "anchor", "own-anchor", "outside", "stylesheet"],
)
def test_each_broken_link_is_reported(
    tmp_path: Path, check: ModuleType, body: str, expected: str
) -> None:
    found = check.problems(_site(tmp_path, body))
    assert len(found) == 1, found
    assert found[0].startswith("guide/page.html: ")
    assert expected in found[0]


def test_the_script_exits_1_naming_each_broken_link(tmp_path: Path) -> None:
    site = _site(tmp_path, '<a href="a.html">a</a><a href="b.html">b</a>')
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(site)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "a.html" in done.stderr
    assert "b.html" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_folder_that_is_no_site_is_refused(tmp_path: Path, check: ModuleType) -> None:
    assert check.problems(tmp_path) == [f"{tmp_path}: no HTML pages (is this a built site?)"]
