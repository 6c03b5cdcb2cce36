"""The report's markup: the Jinja2 template of ``gagebench/report/templates``.

Values from data (gage and model names, notes, run settings) are escaped by the engine;
the page stays one self-contained file; a figure or table that cannot be made is shown
as a note in its section; the template is found through the package, as installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest

import gagebench
import gagebench.report.html as report_html
from gagebench.metrics import DSCORE_COLUMNS
from gagebench.report.comparison import compare
from gagebench.report.html import (
    TEMPLATE,
    RenderedFigure,
    Section,
    make_table,
    render_html,
    templates,
    write_comparison,
    write_report,
)
from report_fixtures import (
    assert_self_contained,
    check_report,
    parse_page,
    synthetic_results,
    write_run,
)

HOSTILE_MODEL = 'nhm <script>alert("x") & co'  # no "/": write_run makes a folder of it
HOSTILE_GAGE = "USGS-<script>&1"
HOSTILE_SETTING = "<img src=http://evil.example/x.png> & <b>"


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return synthetic_results(30, models=("nwm", "nhm"), seed=5)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, results: pd.DataFrame) -> Path:
    """A report of a run whose model name, one gage id and one setting hold markup."""
    frame = results.copy()
    frame["model"] = frame["model"].replace({"nhm": HOSTILE_MODEL})
    stranger = frame["site_no"] == frame["site_no"].iloc[0]
    frame.loc[stranger, "site_no"] = HOSTILE_GAGE
    frame.loc[stranger & (frame["model"] == HOSTILE_MODEL), "KGE"] = 0.999  # ranked best
    run = tmp_path_factory.mktemp("hostile") / "run-<&>"
    manifest = {"run_id": run.name, "config": {"mode": "standard", "label": HOSTILE_SETTING}}
    write_run(run, frame, manifest)
    return Path(write_report(str(run)))


def test_names_from_the_data_are_escaped(hostile: Path) -> None:
    text = hostile.read_text(encoding="utf-8")
    page = check_report(str(hostile), {"cdf", "map_kge", "scorecard"})
    assert "<script" not in text.lower()
    assert "<b>" not in text
    assert "evil.example/x.png>" not in text
    # escaped by the engine, once (no "&amp;lt;"), and read back as the original text
    assert "nhm &lt;script&gt;alert(&#34;x&#34;) &amp; co" in text
    assert "USGS-&lt;script&gt;&amp;1" in text
    assert "&amp;lt;" not in text
    shown = "".join(page.text)
    for value in (HOSTILE_MODEL, HOSTILE_GAGE, HOSTILE_SETTING, "run-<&>"):
        assert value in shown, value
    assert "<title>gagebench report: run-&lt;&amp;&gt;</title>" in text
    assert page.figures()["compare_nwm_vs_nhm-script-alert-x-co"] == "img"


def test_the_report_is_one_self_contained_file(hostile: Path) -> None:
    text = hostile.read_text(encoding="utf-8")
    page = parse_page(text)
    assert_self_contained(text, page)
    links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    sources = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert links
    assert all(link and link.startswith("#") and link[1:] in ids for link in links), links
    assert sources
    assert all(src and src.startswith("data:image/png;base64,") for src in sources)
    assert "<style>" in text
    assert "body {" in text  # the CSS is inlined from the package's templates/report.css


def test_a_part_that_cannot_be_made_is_shown_in_its_section(
    tmp_path: Path, results: pd.DataFrame
) -> None:
    frame = results.drop(columns=list(DSCORE_COLUMNS)).assign(KGE=np.nan)
    run = write_run(tmp_path / "failing-parts", frame)
    page = check_report(write_report(str(run)), {"cdf", "map_kge", "scorecard"})
    figures = page.figures()
    assert figures["scorecard"] == figures["map_kge"] == "note"
    assert any("no 'mse' column" in note for note in page.section_notes["dscore"])
    assert any("Map of KGE cannot be drawn" in n for n in page.section_notes["map"])
    gages = page.section_notes["gages"]
    assert any("Best and worst gages cannot be listed" in note for note in gages), gages
    ids = [attrs.get("id") for tag, attrs in page.tags if tag == "section"]
    assert ids[:5] == ["summary", "skill", "map", "groups", "dscore"]


def test_render_html_escapes_every_field() -> None:
    section = Section("s1", "Title <i>", "Intro & <u>")
    section.notes.append("a note <script>")
    section.figures.append(RenderedFigure("f1", "Fig <1>", "cap", note="cannot draw <x>"))
    frame = pd.DataFrame({"model <m>": ["a&b", None], "KGE": [0.12345, np.nan], "n": [3, 4]})
    section.tables.append(make_table("Caption <c>", frame))
    text = render_html("Report <t>", ["line & 1"], [section])
    assert text.startswith("<!DOCTYPE html>")
    page = parse_page(text)
    assert_self_contained(text, page)
    assert "<i>" not in text
    assert "<u>" not in text
    assert "<x>" not in text
    assert "<script" not in text
    shown = "".join(page.text)
    for value in ("Report <t>", "line & 1", "Title <i>", "Intro & <u>", "a note <script>"):
        assert value in shown, value
    assert page.figures() == {"f1": "note"}
    assert page.section_notes["s1"] == ["a note <script>", "cannot draw <x>"]
    assert "<th>model &lt;m&gt;</th><th>KGE</th><th>n</th>" in text
    assert "<tr><td>a&amp;b</td><td>0.123</td><td>3</td></tr>" in text
    assert "<tr><td>–</td><td>–</td><td>4</td></tr>" in text


def test_make_table_formats_cells_and_keeps_the_index() -> None:
    frame = pd.DataFrame(
        {"share": [0.5, np.nan], "p": [0.000123, 1.0], "x": [1.5, 2.0]},
        index=pd.Index(["east", "west"], name="ecoregion"),
    )
    table = make_table("t", frame, index=True, formats={"share": ".0%", "p": ".2g"}, kind="kv")
    assert table.columns == ["ecoregion", "share", "p", "x"]
    assert table.rows == [["east", "50%", "0.00012", "1.500"], ["west", "–", "1", "2.000"]]
    assert table.kind == "kv"
    assert make_table("empty", frame.iloc[:0]).rows == []


def test_the_comparison_page_uses_the_template(tmp_path: Path, results: pd.DataFrame) -> None:
    frame = results.assign(model=results["model"].replace({"nhm": HOSTILE_MODEL}))
    out = write_comparison(compare(frame), str(tmp_path / "cmp.html"))
    text = Path(out).read_text(encoding="utf-8")
    page = check_report(out, {"compare_nwm_vs_nhm-script-alert-x-co"}, figure_files=False)
    assert "<script" not in text
    assert f"gagebench comparison: nwm vs {HOSTILE_MODEL}" in "".join(page.text)
    assert [attrs.get("id") for tag, attrs in page.tags if tag == "section"] == [
        "compare-nwm-nhm-script-alert-x-co"
    ]


def test_the_template_is_found_through_the_package_loader() -> None:
    environment = templates()
    assert isinstance(environment.loader, jinja2.PackageLoader)
    assert environment.autoescape is True
    assert {TEMPLATE, "report.css"} <= set(environment.list_templates())
    source, filename, _ = environment.loader.get_source(environment, TEMPLATE)
    assert Path(filename).parent.parent == Path(report_html.__file__).parent
    assert "<!DOCTYPE html>" in source


def test_the_report_renders_from_an_installed_package(tmp_path: Path) -> None:
    """A copy of the package as a wheel installs it (no src/, no checkout on the path)
    renders a page with the template and CSS read from its own folder."""
    site = tmp_path / "site-packages"
    shutil.copytree(
        Path(gagebench.__file__).parent,
        site / "gagebench",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    script = (
        "import gagebench.report.html as h, sys\n"
        "assert h.__file__.startswith(sys.argv[1]), h.__file__\n"
        "s = h.Section('k', 'T<&>')\n"
        "print(h.render_html('title', [], [s]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("<!DOCTYPE html>")
    assert "<h2>T&lt;&amp;&gt;</h2>" in done.stdout
    assert "background: #16425b" in done.stdout
