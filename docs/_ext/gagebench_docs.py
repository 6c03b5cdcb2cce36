"""Sphinx helpers of the gagebench site: pages generated from the code, so they cannot go stale.

- ``.. gagebench-config::`` (a directive): the configuration reference, one row per key of
  the packaged ``gagebench.yaml`` with its type, default and the file's own comments;
- tutorial notebooks: each MyST tutorial is converted to ``.ipynb`` (jupytext) when the
  build starts, and its page gets a download link;
- wide tables: the tables of the pages in ``gagebench_wrapped_pages`` get a class that
  lets their code break anywhere (``_static/gagebench.css``);
- dashes: smart dashes are off (``--set`` stays two dashes), and a spaced `` -- `` outside
  code (the separator of a parameter and its description) becomes an en dash;
- source pages' ``[docs]`` links: Sphinx's viewcode gives every function of a module the
  anchor of the first name the module was documented under, so a module that holds a
  re-exported function (``gagebench.compare``) and one documented by its module path
  (``gagebench.report.comparison.describe_columns``) links one of them to an anchor its
  page lacks; the build fixes such a link to the function's own anchor;
- intersphinx offline: an unreachable inventory (a build without network) is logged as
  an info line, not a warning, so ``-W`` builds pass offline; links to those projects are
  then plain text (``nitpicky`` is off).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# ---------------------------------------------------------------------------------------
# The configuration reference


@dataclass(frozen=True)
class ConfigKey:
    """One key of ``gagebench.yaml``: dotted path, type, default (as written) and meaning."""

    path: str
    type: str
    default: str
    meaning: str
    section: bool = False


def _comment(line: str) -> str | None:
    """The text of a comment-only line, else None."""
    stripped = line.strip()
    return stripped[1:].strip() if stripped.startswith("#") else None


def _comments_above(lines: list[str], row: int, column: int) -> list[str]:
    """The comment block directly above line ``row``, its ``#`` at ``column``.

    A comment indented deeper belongs to the key above (a continuation), not to this one.
    """
    found: list[str] = []
    i = row - 1
    while i >= 0 and (text := _comment(lines[i])) is not None:
        if len(lines[i]) - len(lines[i].lstrip()) != column:
            break
        found.insert(0, text)
        i -= 1
    return found


def _comments_after(lines: list[str], value: yaml.Node, key_column: int) -> list[str]:
    """The comment after ``value`` (a key: after its colon) on its line, and its continuations.

    A continuation is a comment-only line right below, indented deeper than the key.
    """
    line = lines[value.end_mark.line]
    rest = line[value.end_mark.column :].strip().removeprefix(":").strip()
    if not rest.startswith("#"):
        return []
    found = [rest[1:].strip()]
    i = value.end_mark.line + 1
    while i < len(lines) and (text := _comment(lines[i])) is not None:
        if len(lines[i]) - len(lines[i].lstrip()) <= key_column:
            break
        found.append(text)
        i += 1
    return found


def _source(lines: list[str], node: yaml.Node) -> str:
    """A one-line value as written in the file."""
    if node.start_mark.line != node.end_mark.line:
        return yaml.safe_dump(yaml.safe_load(yaml.serialize(node)), default_flow_style=True)
    return lines[node.start_mark.line][node.start_mark.column : node.end_mark.column].strip()


def _annotations() -> dict[str, str]:
    """Dotted key -> annotation, from the configuration dataclasses where they name it."""
    from gagebench.config import Crosswalk, RunConfig, StoreConfig

    found: dict[str, str] = {}
    for prefix, cls in (("", RunConfig), ("observed.", StoreConfig)):
        for f in dataclasses.fields(cls):
            found[prefix + f.name] = str(f.type)
    for f in dataclasses.fields(Crosswalk):
        found[f"observed.crosswalk.{f.name}"] = str(f.type)
    return found


_TYPE_WORDS = {
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "float": "number",
    "None": "null",
    "StoreConfig": "store",
    "Crosswalk": "crosswalk",
    "ClusterConfig": "mapping",
}


def _type_of(annotation: str | None, value: Any) -> str:
    """A reader's type name: from the dataclass annotation when there is one, else the default."""
    if annotation:
        if annotation.startswith("Mapping[str, StoreConfig]"):
            return "mapping of name to store"
        if annotation.startswith("Mapping"):
            return "mapping"
        if annotation.startswith("tuple"):
            return "list of strings"
        parts = [p.strip() for p in annotation.split("|")]
        if value is None and "None" not in parts:
            parts.append("None")  # validated into a value (e.g. run_id: derived when null)
        return " or ".join(_TYPE_WORDS.get(p, p) for p in parts)
    if value is None:
        return "optional (null)"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}.get(
        type(value), "mapping"
    )


def config_keys(path: Path) -> tuple[list[str], list[ConfigKey]]:
    """The header comment of ``gagebench.yaml`` and every key under ``gagebench:``."""
    text = path.read_text()
    lines = text.splitlines()
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    top_key, top = root.value[0]
    header = _comments_above(lines, top_key.start_mark.line, top_key.start_mark.column)
    annotations = _annotations()
    keys: list[ConfigKey] = []

    def walk(node: yaml.MappingNode, prefix: str) -> None:
        for key, value in node.value:
            dotted = prefix + key.value
            block = isinstance(value, yaml.MappingNode) and not value.flow_style and value.value
            meaning = _comments_above(lines, key.start_mark.line, key.start_mark.column)
            meaning += _comments_after(lines, key if block else value, key.start_mark.column)
            parsed = yaml.safe_load(yaml.serialize(value))
            keys.append(
                ConfigKey(
                    path=dotted,
                    type=_type_of(annotations.get(dotted), parsed) if not block else "section",
                    default="" if block else _source(lines, value),
                    meaning=" ".join(meaning),
                    section=bool(block),
                )
            )
            if block:
                walk(value, dotted + ".")

    assert isinstance(top, yaml.MappingNode)
    walk(top, "")
    return header, keys


def _inline(text: str) -> list[nodes.Node]:
    """Text with ``code`` (backticked) spans as literals, nothing else interpreted."""
    out: list[nodes.Node] = []
    for i, part in enumerate(re.split(r"`([^`]+)`", text)):
        if part:
            out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


def _header_nodes(header: list[str]) -> Iterator[nodes.Node]:
    """The file's header comment: paragraphs, and its ``- `` lines as a bullet list."""
    blocks: list[tuple[str, list[str]]] = []
    for line in header:
        if line.startswith("- "):
            blocks.append(("item", [line[2:]]))
        elif blocks and line and (blocks[-1][0] == "item" or blocks[-1][0] == "para"):
            if blocks[-1][0] == "item" and not line.startswith(" ") and line[:1].isupper():
                blocks.append(("para", [line]))
            else:
                blocks[-1][1].append(line)
        elif line:
            blocks.append(("para", [line]))
    bullets: nodes.bullet_list | None = None
    for kind, parts in blocks:
        para = nodes.paragraph("", "", *_inline(" ".join(p.strip() for p in parts)))
        if kind == "item":
            if bullets is None:
                bullets = nodes.bullet_list()
            bullets += nodes.list_item("", para)
            continue
        if bullets is not None:
            yield bullets
            bullets = None
        yield para
    if bullets is not None:
        yield bullets


def _table(keys: list[ConfigKey]) -> nodes.table:
    columns = (("key", 27), ("type", 11), ("default", 20), ("meaning", 42))
    table = nodes.table(classes=["gagebench-config", "colwidths-given"])
    group = nodes.tgroup(cols=len(columns))
    table += group
    for _, width in columns:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for title, _ in columns:
        row += nodes.entry("", nodes.paragraph(text=title))
    head += row
    body = nodes.tbody()
    group += body
    for key in keys:
        row = nodes.row(ids=[f"config-{key.path.replace('.', '-').replace('_', '-')}"])
        key_para = nodes.paragraph("", "", nodes.literal(key.path, key.path))
        if key.section:
            key_para = nodes.paragraph("", "", nodes.strong("", "", key_para.children[0]))
        cells = [
            key_para,
            nodes.paragraph(text=key.type),
            nodes.paragraph("", "", nodes.literal(key.default, key.default))
            if key.default
            else nodes.paragraph(),
            nodes.paragraph("", "", *_inline(key.meaning)),
        ]
        for cell in cells:
            row += nodes.entry("", cell)
        body += row
    return table


class ConfigReference(SphinxDirective):
    """``.. gagebench-config::``: every key of the packaged ``gagebench.yaml``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from gagebench.defaults import DEFAULTS_FILE

        self.env.note_dependency(str(DEFAULTS_FILE))
        header, keys = config_keys(DEFAULTS_FILE)
        return [*_header_nodes(header), _table(keys)]


# ---------------------------------------------------------------------------------------
# Tutorials as notebooks

NOTEBOOK_DIR = "_generated/notebooks"


def _tutorials(srcdir: Path) -> list[Path]:
    """The executed MyST tutorials (pages with code cells) under tutorials/."""
    return sorted(
        p for p in (srcdir / "tutorials").glob("*.md") if "```{code-cell}" in p.read_text()
    )


def write_notebooks(app: Sphinx) -> None:
    """Convert each tutorial to ``_generated/notebooks/<name>.ipynb`` (outputs empty)."""
    import jupytext

    out = Path(app.srcdir) / NOTEBOOK_DIR
    out.mkdir(parents=True, exist_ok=True)
    for page in _tutorials(Path(app.srcdir)):
        notebook = jupytext.read(page, fmt="md:myst")
        notebook.metadata.pop("jupytext", None)
        target = out / f"{page.stem}.ipynb"
        text = jupytext.writes(notebook, fmt="ipynb")
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def link_notebook(app: Sphinx, docname: str, source: list[str]) -> None:
    """Add a download link to a tutorial's page, under its title."""
    folder, _, name = docname.partition("/")
    notebook = Path(app.srcdir) / NOTEBOOK_DIR / f"{name}.ipynb"
    if folder != "tutorials" or not notebook.exists():
        return
    link = (
        f"\n:::{{note}}\nDownload this tutorial as a notebook: "
        f"{{download}}`{name}.ipynb </{NOTEBOOK_DIR}/{name}.ipynb>`.\n:::\n"
    )
    source[0] = re.sub(
        r"^(# .+)$", lambda m: m.group(1) + "\n" + link, source[0], count=1, flags=re.M
    )


# ---------------------------------------------------------------------------------------
# Dashes

SPACED_DASHES = " -- "
EN_DASH = " \u2013 "


def spaced_dashes(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Write " -- " outside code as an en dash.

    The site turns docutils' smart dashes off (``smartquotes_action = "qe"``), so an
    option in a help text (``--set``) stays two dashes; this gives back the one place
    they were wanted: the separator Sphinx puts between a parameter and its description.
    """
    for text in list(doctree.findall(nodes.Text)):
        parent = text.parent
        if SPACED_DASHES not in text or parent is None:
            continue
        if isinstance(parent, nodes.literal | nodes.FixedTextElement):
            continue
        parent.replace(text, nodes.Text(str(text).replace(SPACED_DASHES, EN_DASH)))


# ---------------------------------------------------------------------------------------
# viewcode's [docs] links

_BACKLINK = re.compile(
    r'(<div class="viewcode-block" id="(?P<name>[^"]+)">\s*<a class="viewcode-back" '
    r'href="(?P<page>[^"#]+)#)(?P<anchor>[^"]*)(?=")'
)


def fix_viewcode_backlinks(outdir: Path) -> int:
    """Point each ``[docs]`` link of the source pages (``_modules/``) whose anchor its
    page lacks to the page's one signature of that name (``<module>.<name>``).

    Returns the number of links changed; a link with no or several candidates is left
    as it is (the site's link check reports it)."""
    changed = 0
    ids: dict[Path, set[str]] = {}
    for source in sorted((outdir / "_modules").rglob("*.html")):
        text = source.read_text(encoding="utf-8")

        def fix(match: re.Match[str], source: Path = source) -> str:
            nonlocal changed
            target = (source.parent / match["page"]).resolve()
            if target not in ids:
                page = target.read_text(encoding="utf-8") if target.is_file() else ""
                ids[target] = set(re.findall(r'\bid="([^"]+)"', page))
            if match["anchor"] in ids[target]:
                return match.group(0)
            name = match["name"]
            found = sorted(i for i in ids[target] if i.endswith("." + name))
            if len(found) != 1:
                return match.group(0)
            changed += 1
            return match.group(1) + found[0]

        fixed = _BACKLINK.sub(fix, text)
        if fixed != text:
            source.write_text(fixed, encoding="utf-8")
    return changed


def _fix_backlinks_when_built(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        fix_viewcode_backlinks(Path(app.outdir))


# ---------------------------------------------------------------------------------------
# intersphinx without network


class _OfflineInventories(logging.Filter):
    """An unreachable intersphinx inventory is an info line, not a build-failing warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and "failed to reach any of the inventories" in str(
            record.msg
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "intersphinx: inventory unreachable (offline?), links are plain text:\n%s"
        return True


def mark_wrapped_tables(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Tables of the pages in ``gagebench_wrapped_pages`` may break code anywhere.

    Their cells hold long unbroken code (test ids, messages) that would push the table
    past the page; elsewhere code breaks only where it must, so short names stay whole.
    """
    if docname in app.config.gagebench_wrapped_pages:
        for table in doctree.findall(nodes.table):
            table["classes"].append("gagebench-wrap")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("gagebench_wrapped_pages", [], "html", types=frozenset({list, tuple}))
    app.connect("doctree-resolved", mark_wrapped_tables)
    app.connect("doctree-resolved", spaced_dashes)
    app.add_directive("gagebench-config", ConfigReference)
    app.connect("builder-inited", write_notebooks)
    app.connect("source-read", link_notebook)
    app.connect("build-finished", _fix_backlinks_when_built)
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(_OfflineInventories())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
