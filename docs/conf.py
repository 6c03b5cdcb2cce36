"""Sphinx configuration of the gagebench documentation site.

Built with ``python -m sphinx -W -b html docs <dir>`` (every warning is an error): the
PyData theme, MyST markdown, myst-nb executing every notebook and ``{code-cell}`` page at
build time (``nb_execution_mode = "force"``, a failing cell fails the build), and an
autosummary API reference of the package's public names (``gagebench.__all__``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE / "_ext"))

import gagebench  # noqa: E402

project = "gagebench"
author = "gagebench developers"
copyright = "gagebench developers"
release = version = gagebench.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "sphinxarg.ext",  # sphinx-argparse: the command-line reference from cli.build_parser
    "gagebench_docs",  # _ext/: the configuration reference, tutorial notebooks, offline intersphinx
    "gagebench_metrics",  # _ext/: the metric tables and metric functions' API list, from the registry
]

# Sources: MyST markdown (.md; a page with a ``{code-cell}`` is executed as a notebook),
# notebooks (.ipynb, committed without outputs) and reStructuredText (.rst: the API pages
# autosummary writes under reference/generated/; without ``.rst`` here they are written as
# .md and show their directives as raw text).
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = [
    "_build",
    "_generated",  # the tutorials as .ipynb downloads (written by _ext/gagebench_docs.py)
    "reference/generated/*.md",  # stubs an older build wrote as .md (now .rst)
    "**/.ipynb_checkpoints",
    "img/*.py",  # the script that draws the README's figure
    "README.md",
    "Thumbs.db",
    ".DS_Store",
]
master_doc = root_doc = "index"
# Smart quotes and ellipses, but no smart dashes: the option ``--set`` in a help text or a
# settings comment (the generated CLI and configuration pages) must not become ``–set``,
# which a reader copies into a command that fails.
smartquotes_action = "qe"

# Every notebook is executed on each build, and an error in a cell fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = int(os.environ.get("GAGEBENCH_DOCS_CELL_TIMEOUT", "600"))
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# The reference names the public API only; a docstring's link to an internal module or
# to a class of another project without an inventory here is plain text, not a warning.
nitpicky = False
# Links to the projects gagebench's API speaks in. The inventories are fetched at build
# time; a build without network (CI sandboxes, this repository's development machines)
# logs them as unreachable (gagebench_docs turns that warning into an info line, so -W
# passes) and renders those links as plain text. A short timeout keeps an offline build
# from waiting on each inventory.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "xarray": ("https://docs.xarray.dev/en/stable", None),
    "dask": ("https://docs.dask.org/en/stable", None),
    "distributed": ("https://distributed.dask.org/en/stable", None),
}
intersphinx_timeout = 10
# Only explicit roles (:py:class:, {external}) may resolve to another project's pages: a
# bare MyST link such as [stores](stores.md) never silently points to another site.
intersphinx_disabled_reftypes = ["std:doc"]

# Copy buttons leave out the prompts and the output of console examples.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

html_theme = "pydata_sphinx_theme"
html_title = f"gagebench {version}"
html_static_path = ["_static"]
html_css_files = ["gagebench.css"]
# The wide reference tables (configuration, errors) get the page's whole width.
WIDE_PAGES = ("reference/configuration", "errors")
html_theme_options = {
    "github_url": "https://github.com/gagebench/gagebench",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": {
        "**": ["page-toc", "sourcelink"],
        **{page: [] for page in WIDE_PAGES},
    },
}
html_sidebars: dict[str, list[str]] = {page: [] for page in WIDE_PAGES}
# Pages whose tables hold long unbroken code (test ids, messages): it may break anywhere.
gagebench_wrapped_pages = ["errors"]
html_context = {"default_mode": "light"}

# Optional pages written on other branches (docs/uncertainty.md, docs/crosswalks.md; also
# looked for under user-guide/): the user guide's toctree lists them only when present, so
# a checkout without them builds without a warning and one with them includes them.
OPTIONAL_GUIDE_PAGES = ("uncertainty", "crosswalks")
OPTIONAL_MARKER = "%optional-guide-pages%"


def optional_pages() -> list[str]:
    """Toctree entries (absolute docnames) of the optional pages in this checkout."""
    found = []
    for name in OPTIONAL_GUIDE_PAGES:
        for folder in ("user-guide", ""):
            if (HERE / folder / f"{name}.md").exists():
                found.append("/" + (f"{folder}/{name}" if folder else name))
                break
    return found


def _insert_optional_pages(app: object, docname: str, source: list[str]) -> None:
    if OPTIONAL_MARKER in source[0]:
        source[0] = source[0].replace(OPTIONAL_MARKER, "\n".join(optional_pages()))


# Reports the executed tutorials link to: a tutorial writes its run (``runs/``, or the
# hub stand-in's ``scratch/runs/``) or a copy of its report (``reports/``) beside itself, and links it relatively, as Jupyter would
# open it. The build starts without the previous build's (a run folder left behind would
# make the run "already complete") and ships each report at the same place beside the
# tutorial's page, so the links work on the site.
TUTORIAL_OUTPUTS = ("tutorials/runs", "tutorials/reports", "tutorials/scratch")
SHIPPED_REPORTS = (
    "tutorials/runs/*/report.html",
    "tutorials/scratch/runs/*/report.html",
    "tutorials/reports/*.html",
)


def _clean_tutorial_outputs(app: object) -> None:
    import shutil

    for folder in TUTORIAL_OUTPUTS:
        shutil.rmtree(HERE / folder, ignore_errors=True)


def _ship_tutorial_reports(app: Any, exception: Exception | None) -> None:
    import shutil

    if exception is not None or app.builder.format != "html":
        return
    for pattern in SHIPPED_REPORTS:
        for report in HERE.glob(pattern):
            target = Path(app.outdir) / report.relative_to(HERE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(report, target)


def setup(app: object) -> dict[str, bool]:
    app.connect("source-read", _insert_optional_pages)  # type: ignore[attr-defined]
    app.connect("builder-inited", _clean_tutorial_outputs)  # type: ignore[attr-defined]
    app.connect("build-finished", _ship_tutorial_reports)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True}
