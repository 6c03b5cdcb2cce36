"""Checks the built site's tutorial pages, as a reader follows them (run by .ci/run).

- no link to the build machine (``file://``) or to a bucket (``s3://``, ``gs://``): a
  browser opens neither from a web page;
- every relative link to an ``.html`` file (the reports the tutorials link to) resolves
  to a file shipped in the site;
- each executed tutorial links at least one report;
- no progress widget is left as the only output of a cell: without a live kernel a widget
  renders as an empty box (the bar must leave its final text).

Usage: ``python .ci/check_tutorial_links.py BUILT_SITE_DIR``; exit 1 with one line per
problem.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.widgets = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))
        if tag == "script" and values.get("type") == "application/vnd.jupyter.widget-view+json":
            self.widgets += 1


def problems(site: Path) -> list[str]:
    """Every problem of the tutorial pages under ``site``."""
    found = []
    pages = sorted((site / "tutorials").glob("*.html"))
    if not pages:
        return [f"{site}: no tutorials/*.html (is this a built site?)"]
    for page in pages:
        if page.name == "index.html":
            continue
        parsed = _Page()
        parsed.feed(page.read_text(encoding="utf-8"))
        name = page.relative_to(site)
        reports = 0
        for href in parsed.hrefs:
            scheme = urlsplit(href).scheme
            if scheme in ("file", "s3", "gs", "gcs", "az", "abfs"):
                found.append(f"{name}: links {href} (a browser cannot open it)")
            elif not scheme and re.search(r"\.html?$", urlsplit(href).path):
                target = (page.parent / unquote(urlsplit(href).path)).resolve()
                if not target.is_file():
                    found.append(f"{name}: links {href}, which the site does not ship")
                elif "report" in href:
                    reports += 1
        if reports == 0:
            found.append(f"{name}: links no report shipped with the site")
        if parsed.widgets:
            found.append(f"{name}: {parsed.widgets} widget output(s) (blank without a kernel)")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    found = problems(Path(argv[1]))
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
