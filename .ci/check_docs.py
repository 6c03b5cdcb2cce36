"""Check a built docs site for API pages that did not render.

    python .ci/check_docs.py BUILD_DIR

Fails (exit 1, one line per problem) when:

- a page shows a raw directive as text (``.. autofunction::``, ``.. currentmodule::``,
  any ``.. auto...::``), as it does when autosummary's stubs are not parsed as
  reStructuredText; text in code blocks and inline code does not count;
- a generated API page (``reference/generated/*.html``) has no rendered signature;
- ``gagebench.evaluate``'s page lacks its signature with every parameter of the function;
- a page's text shows a command-line option with its dashes joined into one (``–set``
  for ``--set``: docutils' smart dashes), which fails when copied into a command;
- the generated reference pages lack what they are generated from: the command-line page
  a command or option of ``gagebench.cli.build_parser``, the configuration page a key of
  the packaged ``gagebench.yaml``.

Sphinx's ``-W`` does not catch the first two: the page builds, only its text is wrong.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

RAW_DIRECTIVE = re.compile(r"\.\. (auto\w+|currentmodule)::")
GENERATED = Path("reference") / "generated"
EVALUATE_PAGE = GENERATED / "gagebench.evaluate.html"
CLI_PAGE = Path("reference") / "cli.html"
CONFIG_PAGE = Path("reference") / "configuration.html"
# A dash (en or em) opening a word: ``--set`` or ``---x`` turned into one character.
JOINED_DASHES = re.compile(r"(?:^|(?<=[\s(\[]))[\u2013\u2014][a-z][\w-]*")
SIGNATURE = re.compile(r'<dt class="sig sig-object py"[^>]*>')
SKIPPED = {"pre", "code", "script", "style", "textarea"}


class _ProseText(HTMLParser):
    """The text of a page outside code, scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def prose(html: str) -> str:
    """The page's text outside ``<pre>``, ``<code>``, ``<script>`` and ``<style>``."""
    parser = _ProseText()
    parser.feed(html)
    return " ".join(parser.parts)


def signature_params(html: str, object_id: str) -> list[str] | None:
    """Parameter names of ``object_id``'s rendered signature, None without one."""
    match = re.search(
        rf'<dt class="sig sig-object py" id="{re.escape(object_id)}">(.*?)</dt>', html, re.S
    )
    if match is None:
        return None
    params = re.findall(r'<em class="sig-param">(.*?)</em>', match.group(1), re.S)
    names = [re.sub(r"<[^>]+>", "", p).split("=", 1)[0].strip() for p in params]
    return [n for n in names if n and n != "*"]


def expected_evaluate_params() -> list[str]:
    """``gagebench.evaluate``'s parameters, from the function itself."""
    import gagebench

    return list(inspect.signature(gagebench.evaluate).parameters)


def expected_cli_words() -> list[str]:
    """Every subcommand and option string of gagebench's argument parser."""
    import argparse

    from gagebench.cli import build_parser

    words: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            words.extend(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words.append(name)
                    walk(sub)

    walk(build_parser())
    return sorted(set(words))


def expected_config_keys() -> list[str]:
    """Every dotted key of the packaged ``gagebench.yaml``: sections (block mappings) and
    their keys; a one-line ``{...}`` default is one key."""
    import yaml

    from gagebench.defaults import DEFAULTS_FILE

    keys: list[str] = []

    def walk(node: yaml.MappingNode, prefix: str) -> None:
        for key, value in node.value:
            keys.append(prefix + key.value)
            if isinstance(value, yaml.MappingNode) and not value.flow_style:
                walk(value, f"{prefix}{key.value}.")

    root = yaml.compose(DEFAULTS_FILE.read_text())
    assert isinstance(root, yaml.MappingNode)
    walk(root.value[0][1], "")
    return keys


def missing_words(html: str, words: Iterable[str]) -> list[str]:
    """The words (commands, options, keys) not in the page's text."""
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return [w for w in words if not re.search(rf"(?<![\w.-]){re.escape(w)}(?![\w-])(?!\.\w)", text)]


def problems(
    build: Path,
    evaluate_params: Iterable[str],
    cli_words: Iterable[str] = (),
    config_keys: Iterable[str] = (),
) -> list[str]:
    """Every problem of the site built in ``build``, one line each (empty: fine)."""
    found: list[str] = []
    pages = sorted(p for p in build.rglob("*.html") if "_static" not in p.parts)
    if not pages:
        return [f"{build}: no HTML pages (is this a Sphinx build folder?)"]
    for page in pages:
        html = page.read_text(errors="replace")
        rel = page.relative_to(build)
        text = prose(html)
        for raw in sorted({m.group(0) for m in RAW_DIRECTIVE.finditer(text)}):
            found.append(f"{rel}: shows the raw directive {raw!r} instead of rendering it")
        for word in sorted({m.group(0) for m in JOINED_DASHES.finditer(text)}):
            found.append(f"{rel}: shows {word!r}, an option whose dashes became one (smart dashes)")
        if rel.parent == GENERATED and not SIGNATURE.search(html):
            found.append(f"{rel}: an API page without a rendered signature")
    page = build / EVALUATE_PAGE
    if not page.exists():
        found.append(f"{EVALUATE_PAGE}: missing (gagebench.evaluate has no API page)")
        return found
    params = signature_params(page.read_text(errors="replace"), "gagebench.evaluate")
    if params is None:
        found.append(f"{EVALUATE_PAGE}: no rendered signature of gagebench.evaluate")
    else:
        missing = [p for p in evaluate_params if p not in params]
        if missing:
            found.append(f"{EVALUATE_PAGE}: the signature lacks the parameters {missing}")
    for rel, words, what in (
        (CLI_PAGE, list(cli_words), "commands or options"),
        (CONFIG_PAGE, list(config_keys), "settings"),
    ):
        if not words:
            continue
        if not (build / rel).exists():
            found.append(f"{rel}: missing")
        elif missing := missing_words((build / rel).read_text(errors="replace"), words):
            found.append(f"{rel}: lacks the {what} {missing}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python .ci/check_docs.py BUILD_DIR", file=sys.stderr)
        return 2
    found = problems(
        Path(args[0]), expected_evaluate_params(), expected_cli_words(), expected_config_keys()
    )
    for line in found:
        print(f"check_docs: {line}", file=sys.stderr)
    if not found:
        print(f"check_docs: {args[0]}: every API page rendered")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
