"""The packaged defaults (``gagebench.yaml``): the one place every default is written.

A leaf module (it imports nothing of gagebench), so config, the cluster backends, the
storage retry layer and the uncertainty settings derive their defaults from it without
importing each other. Importing it registers the file as dask's config defaults, so dask
YAML files (``~/.config/dask/*.yaml``) and ``DASK_GAGEBENCH__...`` variables override it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dask.config
import yaml

#: The packaged defaults file (also dask's config defaults, under ``gagebench:``).
DEFAULTS_FILE = Path(__file__).with_name("gagebench.yaml")


def load_defaults() -> dict[str, Any]:
    """A fresh copy of ``gagebench.yaml`` as written (top-level key ``gagebench``)."""
    with DEFAULTS_FILE.open() as fh:
        return yaml.safe_load(fh)


_FILE = load_defaults()
#: ``gagebench.yaml``'s ``gagebench`` section, read-only (a copy: dask keeps the file's).
PACKAGED_DEFAULTS: Mapping[str, Any] = MappingProxyType(copy.deepcopy(_FILE["gagebench"]))
dask.config.update_defaults(_FILE)
#: The ``uncertainty`` section and its defaults (gumboot bootjack() settings).
UNCERTAINTY_DEFAULTS: Mapping[str, Any] = MappingProxyType(dict(PACKAGED_DEFAULTS["uncertainty"]))


def backend_defaults(name: str) -> Mapping[str, Any]:
    """The settings of cluster backend ``name`` with their defaults (``cluster.<name>``).

    Every accepted key is in the file; a backend without settings (``auto``) has no
    section and gets an empty mapping.
    """
    section = PACKAGED_DEFAULTS["cluster"].get(name, {})
    return MappingProxyType(copy.deepcopy(section))


def default(dotted: str) -> Any:
    """The packaged default of one setting by its dotted key (``"retries.max_attempts"``):
    a fresh copy, so a caller may keep it. A key the file lacks raises KeyError."""
    node: Any = PACKAGED_DEFAULTS
    for part in dotted.split("."):
        node = node[part]
    return copy.deepcopy(node)


# -- the file's comments: the help text of every setting ---------------------------------


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


def commented_keys(
    path: Path = DEFAULTS_FILE,
) -> tuple[list[str], list[tuple[str, yaml.Node, str]]]:
    """The header comment of a defaults file and, for every key under ``gagebench:`` in
    file order, ``(dotted key, value node, its comment)``: the help text of the settings
    (the schema's descriptions, the docs' configuration reference)."""
    text = path.read_text()
    lines = text.splitlines()
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    top_key, top = root.value[0]
    header = _comments_above(lines, top_key.start_mark.line, top_key.start_mark.column)
    keys: list[tuple[str, yaml.Node, str]] = []

    def walk(node: yaml.MappingNode, prefix: str) -> None:
        for key, value in node.value:
            dotted = prefix + key.value
            block = isinstance(value, yaml.MappingNode) and not value.flow_style and value.value
            meaning = _comments_above(lines, key.start_mark.line, key.start_mark.column)
            meaning += _comments_after(lines, key if block else value, key.start_mark.column)
            keys.append((dotted, value, " ".join(meaning)))
            if block:
                assert isinstance(value, yaml.MappingNode)
                walk(value, dotted + ".")

    assert isinstance(top, yaml.MappingNode)
    walk(top, "")
    return header, keys


def help_text(dotted: str) -> str:
    """The comment of one setting in ``gagebench.yaml`` ("" when it has none)."""
    return _help().get(dotted, "")


@functools.cache
def _help() -> dict[str, str]:
    return {key: meaning for key, _, meaning in commented_keys()[1]}
