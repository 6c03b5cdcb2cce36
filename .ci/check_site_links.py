"""Check that every local link of a built docs site leads somewhere (run by .ci/run).

    python .ci/check_site_links.py BUILD_DIR

Follows, on every page of the site (``*.html``, the shipped reports included), each
``href`` and ``src`` that stays on the site (no scheme, not ``mailto:``/``data:``) and
fails (exit 1, one line per link) when:

- the file it names is not in the site (a folder link needs its ``index.html``);
- its ``#anchor`` names no element of the page it leads to.

Sphinx's ``-W`` checks cross-references it resolves itself, not a Markdown link written
as a path, a link in a notebook's HTML output, a download or an image; a reader clicking
one gets a "file not found".
"""

from __future__ import annotations

import sys
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src"}
# Placeholders some themes and notebook outputs use for "no link".
IGNORED = ("#", "")


class _Links(HTMLParser):
    """The local links of a page and the ids (anchors) it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if values.get(name):
                self.ids.add(str(values[name]))
        attribute = LINK_ATTRIBUTES.get(tag)
        link = values.get(attribute) if attribute else None
        if link is None or link.strip() in IGNORED:
            return
        parts = urlsplit(link.strip())
        if parts.scheme or parts.netloc or link.startswith("//"):
            return  # another site, mailto:, data:, javascript:
        self.links.append(link.strip())


@cache
def _parse(page: Path) -> _Links:
    parsed = _Links()
    parsed.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parsed


def _target(page: Path, path: str) -> Path:
    """The file a link's path names, relative to the page (a folder: its index.html)."""
    target = (page.parent / unquote(path)).resolve() if path else page.resolve()
    return target / "index.html" if target.is_dir() else target


def problems(site: Path) -> list[str]:
    """Every broken local link of the site built in ``site``, one line each."""
    _parse.cache_clear()
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no HTML pages (is this a built site?)"]
    root = site.resolve()
    found = []
    for page in pages:
        if "_static" in page.relative_to(site).parts:
            continue  # the theme's own templates
        name = page.relative_to(site)
        for link in _parse(page).links:
            parts = urlsplit(link)
            target = _target(page, parts.path)
            if not target.is_relative_to(root):
                found.append(f"{name}: links {link}, outside the site")
            elif not target.is_file():
                found.append(f"{name}: links {link}, which the site does not have")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in _parse(target).ids
            ):
                found.append(f"{name}: links {link}, but that page has no #{parts.fragment}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python .ci/check_site_links.py BUILD_DIR", file=sys.stderr)
        return 2
    found = problems(Path(args[0]))
    for line in found:
        print(f"check_site_links: {line}", file=sys.stderr)
    if not found:
        print(f"check_site_links: {args[0]}: every local link leads to a file of the site")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
