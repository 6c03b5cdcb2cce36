"""The docs' reference pages are generated from the code, and the docstrings they show are
complete: the configuration reference lists every key of the packaged ``gagebench.yaml``
with its default and its comment, and ``gagebench.evaluate`` documents every parameter
and every suite.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

import gagebench
from gagebench.defaults import DEFAULTS_FILE, PACKAGED_DEFAULTS
from gagebench.metrics.registry import SUITES

ROOT = Path(__file__).resolve().parents[2]


def _load_extension() -> ModuleType:
    path = ROOT / "docs" / "_ext" / "gagebench_docs.py"
    spec = importlib.util.spec_from_file_location("gagebench_docs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gagebench_docs"] = module
    spec.loader.exec_module(module)
    return module


def _leaves(section: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> default of every key of a nested mapping (mappings included)."""
    found: dict[str, Any] = {}
    for key, value in section.items():
        found[prefix + key] = value
        if isinstance(value, dict):
            found |= _leaves(value, f"{prefix}{key}.")
    return found


def test_the_configuration_reference_lists_every_key_with_its_default() -> None:
    ext = _load_extension()
    header, keys = ext.config_keys(DEFAULTS_FILE)
    rows = {k.path: k for k in keys}
    packaged = _leaves(dict(PACKAGED_DEFAULTS))
    # every key of the file is a row, or sits inside a one-line default of a row
    for dotted in packaged:
        parent = dotted
        while parent not in rows:
            assert "." in parent, f"{dotted} is not in the configuration reference"
            parent = parent.rsplit(".", 1)[0]
    for row in keys:
        assert row.path in packaged
        if not row.section:  # the default as written parses to the packaged default
            assert yaml.safe_load(row.default) == packaged[row.path], row.path
    assert any("DASK_GAGEBENCH__" in line for line in header)  # how keys are set


def test_every_key_has_a_meaning_and_a_type() -> None:
    ext = _load_extension()
    _, keys = ext.config_keys(DEFAULTS_FILE)
    assert [k.path for k in keys if not k.meaning.strip()] == []
    assert [k.path for k in keys if not k.type] == []
    rows = {k.path: k for k in keys}
    # types and bounds come from the settings schema
    assert rows["gage_limit"].type == "integer ≥ 1 or null"
    assert rows["batch_size"].type == "integer ≥ 1 ≤ 100000"
    assert rows["mode"].type == "one of standard, hytest"
    assert rows["cluster.local.memory_limit"].type == "string or integer or number"
    assert "Decides the results" in rows["batch_size"].meaning  # the schema's marker
    assert "Decides the results" not in rows["report"].meaning
    assert rows["cluster.backend"].default == "local"
    backends = "local | kubernetes | gateway | slurm | address | auto"
    assert backends in rows["cluster.backend"].meaning
    # an inline comment and its continuation lines belong to their key, not to the next
    assert "GAGEBENCH_JOB_NAME" in rows["cluster.kubernetes.owner_job"].meaning
    assert "GAGEBENCH_JOB_NAME" not in rows["cluster.gateway"].meaning
    assert rows["cluster.gateway"].meaning.startswith("A dask-gateway cluster")


def test_a_key_without_a_comment_has_no_meaning(tmp_path: Path) -> None:
    ext = _load_extension()
    path = tmp_path / "gagebench.yaml"
    path.write_text(
        "# header\ngagebench:\n  # The first.\n  a: 1\n  b: {x: null}  # inline\n"
        "  c:\n    # Deep.\n    d: [1, 2]\n  e: null\n"
    )
    header, keys = ext.config_keys(path)
    assert header == ["header"]
    got = [(k.path, k.type, k.default, k.meaning, k.section) for k in keys]
    assert got == [
        ("a", "integer", "1", "The first.", False),
        ("b", "mapping", "{x: null}", "inline", False),
        ("c", "section", "", "", True),
        ("c.d", "list", "[1, 2]", "Deep.", False),
        ("e", "optional (null)", "null", "", False),
    ]


def _numpydoc_section(doc: str, title: str) -> str:
    match = re.search(rf"^{title}\n-+\n(.*?)(?:^\w[\w ]*\n-+\n|\Z)", doc, re.S | re.M)
    assert match, f"no {title} section"
    return match.group(1)


def test_evaluate_documents_every_parameter_and_every_suite() -> None:
    doc = inspect.cleandoc(gagebench.evaluate.__doc__ or "")
    params = _numpydoc_section(doc, "Parameters")
    documented = re.findall(r"^(\w+)$", params, re.M)
    assert documented == list(inspect.signature(gagebench.evaluate).parameters)
    suites_text = params.split("\nsuites\n", 1)[1].split("\nmode\n", 1)[0]
    for suite in SUITES:
        assert f'"{suite}"' in suites_text, suite
    assert "Returns" in doc


def test_each_tutorial_is_offered_as_a_notebook_of_its_cells(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import nbformat

    ext = _load_extension()
    tutorials = tmp_path / "tutorials"
    tutorials.mkdir()
    (tutorials / "index.md").write_text("# Tutorials\n\nNo cells here.\n")
    (tutorials / "demo.md").write_text(
        "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n"
        "---\n\n# A demo\n\nText.\n\n```{code-cell} ipython3\n:tags: [remove-input]\nx = 1\n```\n"
        "\n```{code-cell} ipython3\nprint(x + 1)\n```\n"
    )
    app = SimpleNamespace(srcdir=str(tmp_path))
    ext.write_notebooks(app)
    written = sorted((tmp_path / ext.NOTEBOOK_DIR).iterdir())
    assert [p.name for p in written] == ["demo.ipynb"]
    notebook = nbformat.read(written[0], as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.source for c in code] == ["x = 1", "print(x + 1)"]
    assert code[0].metadata["tags"] == ["remove-input"]
    assert notebook.metadata["kernelspec"]["name"] == "python3"

    source = [(tutorials / "demo.md").read_text()]
    ext.link_notebook(app, "tutorials/demo", source)
    assert "# A demo\n\n:::{note}\nDownload this tutorial as a notebook: " in source[0]
    assert "{download}`demo.ipynb </_generated/notebooks/demo.ipynb>`" in source[0]
    untouched = [(tutorials / "index.md").read_text()]
    ext.link_notebook(app, "tutorials/index", untouched)
    assert untouched == [(tutorials / "index.md").read_text()]


def test_an_unreachable_inventory_is_an_info_line_offline() -> None:
    import logging

    ext = _load_extension()
    record = logging.LogRecord(
        "sphinx.sphinx.ext.intersphinx", logging.WARNING, __file__, 1,
        "failed to reach any of the inventories with the following issues:\n%s",
        ("https://docs.python.org/3/objects.inv: Name or service not known",), None,
    )  # fmt: skip
    assert ext._OfflineInventories().filter(record)
    assert record.levelno == logging.INFO
    assert "docs.python.org" in record.getMessage()
    other = logging.LogRecord("x", logging.WARNING, __file__, 1, "a real warning", (), None)
    ext._OfflineInventories().filter(other)
    assert other.levelno == logging.WARNING


def test_citation_file_names_the_methods_gagebench_implements() -> None:
    """CITATION.cff (CFF 1.2.0: its required keys) cites HyTEST's benchmark, the D-score
    and gumboot with their DOIs; the docs' "How to cite" page includes the file."""
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(citation)
    dois = {ref["doi"] for ref in citation["references"]}
    assert dois == {
        "10.5194/hess-27-1809-2023",  # Towler et al. 2023, the HyTEST benchmark
        "10.1029/2021MS002681",  # Hodson et al. 2021, the D-score
        "10.1029/2020WR029001",  # Clark et al. 2021, gumboot's method
        "10.32614/CRAN.package.gumboot",  # gumboot itself
    }
    page = (ROOT / "docs" / "cite.md").read_text()
    assert "```{literalinclude} ../CITATION.cff" in page
    assert all(doi in page for doi in dois)


def test_the_published_stores_page_includes_every_published_store_example() -> None:
    """Each run file for a published store (those that say they cannot be tested against
    the real stores) is on the "Reading the published stores" page as the file itself."""
    published = sorted(
        p.name
        for p in (ROOT / "examples").glob("*.yaml")
        if "NOT TESTED AGAINST THE REAL STORES" in p.read_text()
    )
    assert published == ["hytest-nwm-gages.yaml", "nhm-reference.yaml", "nwm-chrtout.yaml"]
    page = (ROOT / "docs" / "user-guide" / "published-stores.md").read_text()
    for name in published:
        assert f"```{{literalinclude}} ../../examples/{name}\n" in page, name
        assert f"`{name}`" in page, f"{name} is not in the page's overview table"


def test_source_pages_link_back_to_each_functions_own_anchor(tmp_path: Path) -> None:
    """viewcode gives every function of a module the anchor prefix of the first name the
    module was documented under (``gagebench.`` for ``gagebench.compare``), so the
    ``[docs]`` link of ``describe_columns``, documented by its module path, pointed to
    ``#gagebench.describe_columns``, which its page lacks: the build fixes it."""
    ext = _load_extension()
    api = tmp_path / "reference" / "generated"
    api.mkdir(parents=True)
    (api / "compare.html").write_text('<dt class="sig" id="gagebench.compare"></dt>')
    (api / "describe.html").write_text(
        '<section id="describe"><dt class="sig" id="gagebench.report.comparison.describe_columns">'
    )
    source = tmp_path / "_modules" / "gagebench" / "report" / "comparison.html"
    source.parent.mkdir(parents=True)
    block = (
        '<div class="viewcode-block" id="{name}">\n'
        '<a class="viewcode-back" href="../../../reference/generated/{page}#{anchor}">[docs]</a>'
    )
    good = block.format(name="compare", page="compare.html", anchor="gagebench.compare")
    broken = block.format(
        name="describe_columns", page="describe.html", anchor="gagebench.describe_columns"
    )
    source.write_text(f"<pre>{good}\ndef compare(): ...</div>\n{broken}\ndef d(): ...</div>")

    assert ext.fix_viewcode_backlinks(tmp_path) == 1
    text = source.read_text()
    assert good in text
    assert "describe.html#gagebench.report.comparison.describe_columns" in text
    assert "#gagebench.describe_columns" not in text
    assert ext.fix_viewcode_backlinks(tmp_path) == 0  # nothing left to fix


def _api_functions() -> list[str]:
    """Dotted names of the functions the API page lists, from its autosummary blocks
    (the metric functions, which share their module's description, left out)."""
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    found = []
    for section in re.split(r"^\.\. currentmodule:: ", page, flags=re.M)[1:]:
        module, _, body = section.partition("\n")
        if module.strip() == "gagebench.metrics":
            continue
        for name in re.findall(r"^   (\w+)$", body.split("```", 1)[0], flags=re.M):
            obj = getattr(importlib.import_module(module.strip()), name)
            if inspect.isfunction(obj):
                found.append(f"{module.strip()}.{name}")
    return found


def test_every_api_function_documents_each_parameter() -> None:
    """The API pages showed ``plot_map``'s ``results``, ``gages``, ``models`` and
    ``figure`` (and ``run``'s, ``synthesize``'s, ...) as bare names with a type: every
    function the API page lists has a numpydoc Parameters section naming each of its
    parameters, and a Returns section when it returns something."""
    functions = _api_functions()
    assert {"gagebench.run", "gagebench.plot_map", "gagebench.synth.synthesize"} <= set(functions)
    gaps = []
    for dotted in functions:
        module, _, name = dotted.rpartition(".")
        func = getattr(importlib.import_module(module), name)
        doc = inspect.cleandoc(func.__doc__ or "")
        params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
        if params:
            if "\nParameters\n----------\n" not in doc:
                gaps.append(f"{dotted}: no Parameters section")
                continue
            section = _numpydoc_section(doc, "Parameters")
            named = {n.strip() for line in re.findall(r"^(\w[\w, ]*)$", section, re.M)
                     for n in line.split(",")}  # fmt: skip
            if missing := [p for p in params if p not in named]:
                gaps.append(f"{dotted}: parameters {missing} not described")
        returns = inspect.signature(func).return_annotation
        if returns not in (None, "None", inspect.Signature.empty) and "\nReturns\n" not in doc:
            gaps.append(f"{dotted}: no Returns section")
    assert not gaps, "\n".join(gaps)


def test_a_spaced_double_dash_outside_code_is_an_en_dash() -> None:
    """With smart dashes off (so ``--set`` stays two dashes), the separator Sphinx puts
    between a parameter and its description (`` -- ``) is still written as a dash."""
    from docutils import nodes
    from docutils.utils import new_document

    ext = _load_extension()
    doc = new_document("page")
    field = nodes.paragraph("", "", nodes.strong("", "results"), nodes.Text(" -- A table."))
    option = nodes.paragraph("", "override one setting, e.g. --set batch_size=128")
    code = nodes.paragraph("", "", nodes.literal("", "a -- b"))
    block = nodes.literal_block("", "x = 1 -- 2")
    doc += [field, option, code, block]
    ext.spaced_dashes(None, doc, "page")
    assert field.astext() == "results \u2013 A table."
    assert option.astext() == "override one setting, e.g. --set batch_size=128"
    assert code.astext() == "a -- b"
    assert block.astext() == "x = 1 -- 2"


def test_the_docs_build_publishes_the_run_file_schema_where_the_examples_point(
    tmp_path: Path,
) -> None:
    """The examples' ``# yaml-language-server: $schema=<URL>`` lines name the site's copy:
    the build writes it there (``schema/run-file.json`` under the site root)."""
    import json
    from types import SimpleNamespace

    from gagebench.runfile import SCHEMA_URL, run_file_schema

    ext = _load_extension()
    app = SimpleNamespace(builder=SimpleNamespace(format="html"), outdir=str(tmp_path))
    ext.write_run_file_schema(app, None)
    assert SCHEMA_URL == "https://gagebench.github.io/gagebench/schema/run-file.json"
    written = tmp_path / "schema" / "run-file.json"
    assert json.loads(written.read_text()) == run_file_schema()
    ext.write_run_file_schema(SimpleNamespace(builder=SimpleNamespace(format="latex")), None)
