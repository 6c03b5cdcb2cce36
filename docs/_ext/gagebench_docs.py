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

import json
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


def _source(lines: list[str], node: yaml.Node) -> str:
    """A one-line value as written in the file."""
    if node.start_mark.line != node.end_mark.line:
        return yaml.safe_dump(yaml.safe_load(yaml.serialize(node)), default_flow_style=True)
    return lines[node.start_mark.line][node.start_mark.column : node.end_mark.column].strip()


def _schema_types() -> dict[str, str]:
    """Dotted key -> a reader's type (with bounds), from the run file's JSON Schema."""
    from gagebench.runfile import settings_schema

    root = settings_schema()
    defs = root.pop("$defs")
    found: dict[str, str] = {}

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, sub in (resolve(node).get("properties") or {}).items():
            found[prefix + key] = _type_words(sub, defs)
            for option in [sub, *sub.get("anyOf", [])]:  # a store: its section's keys
                if "$ref" in option or "properties" in option:
                    walk(resolve(option), f"{prefix}{key}.")

    walk(root, "")
    return found


def _type_words(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """``integer ≥ 1``, ``string or null``, ``one of standard, hytest``..."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return "store" if name == "StoreSettings" else "mapping"
    if "anyOf" in node:
        parts = []
        for option in node["anyOf"]:
            words = _type_words(option, defs)
            if words not in parts:
                parts.append(words)
        if "store" in parts:
            parts = [p for p in parts if p != "string"]  # a URL alone is a store too
        return " or ".join(parts)
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    if "const" in node:
        return repr(node["const"]).replace("'", '"')
    kind = node.get("type")
    if isinstance(kind, list):  # ["object", "null"]: a section that may be left empty
        return " or ".join(_type_words({**node, "type": k}, defs) for k in kind)
    if kind == "array":
        items = _type_words(node.get("items") or {}, defs) if node.get("items") else "values"
        return f"list of {items.removeprefix('one of ')}"
    if kind == "object":
        values = node.get("additionalProperties")
        if (
            isinstance(values, dict)
            and "anyOf" in values
            and any("$ref" in o or "$ref" in str(o.get("allOf")) for o in values["anyOf"])
        ):
            return "mapping of name to store"
        return "mapping"
    words = str(kind) if kind in ("integer", "number", "string", "boolean", "null") else "value"
    if "minimum" in node:
        words += f" ≥ {node['minimum']}"
    if "exclusiveMinimum" in node:
        words += f" > {node['exclusiveMinimum']}"
    if "maximum" in node and node["maximum"] < 2**62:  # not the seed's int64 bound
        words += f" ≤ {node['maximum']}"
    return words


def _type_of(schema_type: str | None, value: Any) -> str:
    """A reader's type name: the schema's when it knows the key, else from the default."""
    if schema_type:
        return schema_type
    if value is None:
        return "optional (null)"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}.get(
        type(value), "mapping"
    )


def config_keys(path: Path) -> tuple[list[str], list[ConfigKey]]:
    """The header comment of ``gagebench.yaml`` and every key under ``gagebench:``: its
    type and bounds from the settings schema, its default and meaning from the file."""
    from gagebench.defaults import commented_keys

    lines = path.read_text().splitlines()
    header, entries = commented_keys(path)
    packaged = path.resolve() == _packaged().resolve()
    types = _schema_types() if packaged else {}
    from gagebench.config import RESULT_KEYS

    deciding = set(RESULT_KEYS) if packaged else set()
    keys: list[ConfigKey] = []
    for dotted, value, meaning in entries:
        if dotted in deciding:
            meaning += " Decides the results: part of the default run id's hash, and a run "
            meaning += "folder computed with another value is not resumed under it."
        block = isinstance(value, yaml.MappingNode) and not value.flow_style and value.value
        parsed = yaml.safe_load(yaml.serialize(value))
        keys.append(
            ConfigKey(
                path=dotted,
                type="section" if block else _type_of(types.get(dotted), parsed),
                default="" if block else _source(lines, value),
                meaning=meaning,
                section=bool(block),
            )
        )
    return header, keys


def _packaged() -> Path:
    from gagebench.defaults import DEFAULTS_FILE

    return DEFAULTS_FILE


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


def headed_table(
    columns: tuple[tuple[str, int], ...], css_class: str
) -> tuple[nodes.table, nodes.tbody]:
    """An empty docutils table with a header row of ``columns`` (title, relative width)
    and the body its rows go in (the configuration reference and the metric tables)."""
    table = nodes.table(classes=[css_class, "colwidths-given"])
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
    return table, body


def _table(keys: list[ConfigKey]) -> nodes.table:
    columns = (("key", 27), ("type", 11), ("default", 20), ("meaning", 42))
    table, body = headed_table(columns, "gagebench-config")
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


def write_run_file_schema(app: Sphinx, exception: Exception | None) -> None:
    """Publish the run file's JSON Schema with the site, at ``schema/run-file.json``: the
    URL the examples' ``# yaml-language-server: $schema=...`` lines point to
    (:data:`gagebench.runfile.SCHEMA_URL`)."""
    if exception is not None or app.builder.format != "html":
        return
    from gagebench.runfile import SCHEMA_URL, run_file_schema

    target = Path(app.outdir) / SCHEMA_URL.split("/gagebench/", 1)[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(run_file_schema(), indent=2) + "\n")


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
    app.connect("build-finished", write_run_file_schema)
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(_OfflineInventories())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
