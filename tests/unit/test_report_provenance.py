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
from test_exporters import _ManifestTable, _run

from gagebench.results.layout import FIGURES_DIR, MANIFEST_FILE, REPORT_FILE


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=6, seed=7, start="2001-01-01", end="2003-12-31")
    return dict(made.to_config_dict())


@pytest.fixture(scope="module")
def client() -> Any:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


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
