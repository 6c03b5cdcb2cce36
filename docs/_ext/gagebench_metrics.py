"""Sphinx helpers for the metrics, generated from the metric registry so they cannot go stale.

- ``.. gagebench-metrics:: SUITE`` (a directive): the suite's table on the Metric
  definitions page, one row per registry metric (``MetricInfo.definition``, optimal
  value, reference), in column order;
- ``.. gagebench-metric-functions::`` (a directive): the API page's autosummary of the
  one-series functions (``gagebench.metrics.functions.__all__``, made from the registry).
  autosummary writes stub pages only for the ``autosummary`` blocks written in the
  sources, so when the build starts this extension has autosummary write the stubs of
  the same block (``write_function_stubs``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from gagebench_docs import headed_table
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Where the stubs' source block is written (``_generated`` is in ``exclude_patterns``).
FUNCTIONS_SOURCE = "_generated/metric_functions.rst"
#: The API page's folder; its autosummary stubs go to ``generated`` under it.
API_FOLDER = "reference"


def _inline(text: str) -> list[nodes.Node]:
    """MyST-like text: ``$math$`` as inline math, backticked spans as literals."""
    out: list[nodes.Node] = []
    for part in re.split(r"(\$[^$]+\$|`[^`]+`)", text):
        if part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(nodes.math(part[1:-1], part[1:-1]))
        elif part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(nodes.literal(part[1:-1], part[1:-1]))
        elif part:
            out.append(nodes.Text(part))
    return out


def _number(value: float) -> str:
    return {float("inf"): "∞", float("-inf"): "−∞"}.get(value, f"{value:g}")


def suite_rows(suite: str, metrics: Sequence[Any] | None = None) -> list[tuple[str, ...]]:
    """(column, definition, optimal, reference) of each metric of ``suite``, in column order.

    ``metrics`` defaults to ``gagebench.metrics.registry.METRICS``; the reference is the
    citation without its DOI (the References section links the DOIs).
    """
    if metrics is None:
        from gagebench.metrics.registry import METRICS as metrics
    rows = [
        (m.name, m.definition or m.formula, _number(m.optimal), m.reference.split(", doi:")[0])
        for m in metrics
        if m.suite == suite
    ]
    if not rows:
        raise ValueError(f"no metric of the suite {suite!r} in the registry")
    return rows


def suite_table(rows: list[tuple[str, ...]]) -> nodes.table:
    """A docutils table of ``suite_rows``."""
    columns = (("column", 14), ("definition", 60), ("optimal", 8), ("reference", 18))
    table, body = headed_table(columns, "gagebench-metrics")
    for name, definition, optimal, reference in rows:
        row = nodes.row()
        cells = [
            nodes.paragraph("", "", nodes.literal(name, name)),
            nodes.paragraph("", "", *_inline(definition)),
            nodes.paragraph(text=optimal),
            nodes.paragraph(text=reference),
        ]
        for cell in cells:
            row += nodes.entry("", cell)
        body += row
    return table


class SuiteTable(SphinxDirective):
    """``.. gagebench-metrics:: standard``: the suite's metrics from the registry."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from gagebench.metrics import registry

        self.env.note_dependency(registry.__file__)
        return [suite_table(suite_rows(self.arguments[0]))]


def function_names() -> list[str]:
    """The one-series metric functions, as ``gagebench.metrics`` exports them."""
    from gagebench.metrics import functions

    return list(functions.__all__)


def functions_autosummary(toctree: str) -> str:
    """The reStructuredText autosummary block of the metric functions."""
    names = "".join(f"   {name}\n" for name in function_names())
    return (
        ".. currentmodule:: gagebench.metrics\n\n"
        f".. autosummary::\n   :toctree: {toctree}\n   :nosignatures:\n\n{names}"
    )


class FunctionsAutosummary(SphinxDirective):
    """``.. gagebench-metric-functions::``: the autosummary of the metric functions."""

    def run(self) -> list[nodes.Node]:
        from gagebench.metrics import functions, registry

        self.env.note_dependency(registry.__file__)
        self.env.note_dependency(functions.__file__)
        container = nodes.container()
        lines = StringList(
            functions_autosummary("generated").splitlines(), self.get_source_info()[0]
        )
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


def write_function_stubs(app: Sphinx) -> None:
    """Have autosummary write the metric functions' stub pages, as for a written block."""
    from sphinx.ext.autosummary.generate import generate_autosummary_docs

    source = Path(app.srcdir) / FUNCTIONS_SOURCE
    source.parent.mkdir(parents=True, exist_ok=True)
    # Paths of a source's :toctree: are relative to its folder: aim at the API page's.
    toctree = Path("..") / API_FOLDER / "generated"
    source.write_text(functions_autosummary(toctree.as_posix()))
    generate_autosummary_docs(
        [str(source)],
        suffix=".rst",
        base_path=app.srcdir,
        app=app,
        imported_members=app.config.autosummary_imported_members,
        overwrite=app.config.autosummary_generate_overwrite,
        encoding=app.config.source_encoding,
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autosummary")
    app.add_directive("gagebench-metrics", SuiteTable)
    app.add_directive("gagebench-metric-functions", FunctionsAutosummary)
    app.connect("builder-inited", write_function_stubs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
