"""A run folder never keeps a report.html that shows another manifest than manifest.json.

A commit made again (a manifest whose outputs were missing, a commit cut short after its
page was written) with ``report: false`` (a setting that does not decide the results, so
it may change on a rerun) left the earlier report.html in place: a page whose provenance
was a manifest that is no longer (or never was) manifest.json. Real runs: real Dask worker
processes, stores and run folder on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_exporters
from test_exporters import _ManifestTable, _run

from gagebench.results.layout import FIGURES_DIR, MANIFEST_FILE, REPORT_FILE

# the exporter tests' module fixtures: 6 synthetic gages and a 1-worker cluster
stores = test_exporters.stores
client = test_exporters.client


def _shown_batches(page: str) -> dict[str, str]:
    table = _ManifestTable()
    table.feed(page)
    return {r[0]: r[1] for r in table.rows if len(r) == 2 and r[0].startswith("batches.")}


@pytest.mark.timeout(300)
def test_a_commit_made_again_without_the_report_leaves_no_stale_page(
    stores: dict[str, Any], tmp_path: Path, client: Any
) -> None:
    first = _run(stores, tmp_path, client, report=True)
    folder = tmp_path / "r1"
    assert REPORT_FILE in first.manifest["outputs"]
    assert _shown_batches((folder / REPORT_FILE).read_text())["batches.computed"] != "0"
    (folder / "results.parquet").unlink()  # a commit cut short: it is made again

    again = _run(stores, tmp_path, client, report=False)
    written = json.loads((folder / MANIFEST_FILE).read_text())
    assert written == again.manifest
    assert written["batches"]["computed"] == 0
    assert REPORT_FILE not in written["outputs"]
    # the old page showed the first commit's manifest (batches computed, not reused)
    assert not (folder / REPORT_FILE).exists()
    assert not (folder / FIGURES_DIR).exists()
