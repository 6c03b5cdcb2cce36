"""The commit's exporters and the manifest the report shows.

- ``report.html`` shows ``manifest.json`` exactly as written (a real run: real Dask
  worker processes, stores and run folder on disk);
- an output added as one exporter class (here, in the test) is written atomically,
  listed in the manifest, unpublished with the others when the commit fails, and
  written again when a rerun finds it missing; the writer is not edited for it;
- the built-in HyTEST CSVs hold, byte for byte, what pandas writes from results.parquet.
"""

from __future__ import annotations

import json
import logging
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from gagebench.errors import StorageError
from gagebench.evaluation import missing_rows, rows_frame
from gagebench.metrics import evaluate_arrays
from gagebench.results import exporters
from gagebench.results.exporters import EXPORTERS, Exporter, Files
from gagebench.results.layout import Plan, suite_csv_columns
from gagebench.results.parts import Part
from gagebench.results.writer import MANIFEST_FILE, RunSink

SUITES = ("standard", "dscore")
DATES = np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]")
EXTRA = "gage_ids.txt"


class GageIds(Exporter):
    """A tiny output: the gage id of each row, one a line (a test's own exporter)."""

    name = "gage-ids"
    #: Whether the file was visible under its final name while being written.
    seen_early: ClassVar[list[bool]] = []
    fail_at: ClassVar[int | None] = None
    folder: ClassVar[RunSink | None] = None

    def files(self, plan: Plan) -> list[str]:
        return [EXTRA]

    def write(self, part: Part, files: Files) -> None:
        if self.folder is not None:
            GageIds.seen_early.append(self.folder.exists(self.folder.path(EXTRA)))
        if part.index == self.fail_at:
            raise StorageError(f"the store failed while writing part {part.index}")
        files[EXTRA].write("".join(f"{g}\n" for g in part.frame["site_no"]).encode())


def _plan(n: int = 6, batch_size: int = 2) -> Plan:
    ids = [f"USGS-0{i:07d}" for i in range(n)]
    batches = tuple(tuple(ids[i : i + batch_size]) for i in range(0, n, batch_size))
    return Plan("r1", batches, ("nwm", "nhm"), SUITES, "standard")


def _part(plan: Plan, index: int) -> pd.DataFrame:
    ids = list(plan.batches[index])
    rng = np.random.default_rng(index)
    frames = []
    for model in plan.models:
        obs = rng.gamma(2.0, 5.0, (len(ids) - 1, DATES.size))
        sim = obs * rng.uniform(0.5, 1.5, (len(ids) - 1, 1))
        scores = evaluate_arrays(obs, sim, DATES, suites=SUITES)
        frames.append(rows_frame(scores, ids[:-1], model, DATES))
        frames.append(missing_rows(ids[-1:], model, SUITES, "not_in_model", "absent"))
    return pd.concat(frames, ignore_index=True)


def _sink(url: str, plan: Plan, extra: type[Exporter] = GageIds) -> RunSink:
    sink = RunSink(url, exporters=[*EXPORTERS, extra])
    sink.parts.start(plan)
    for i in range(len(plan.batches)):
        sink.parts.write(i, _part(plan, i), SUITES)
    return sink


@pytest.fixture(params=["local", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "out" / "r1")
    return f"memory://gagebench-exporters-{tmp_path.name}/r1"


def test_an_added_exporter_is_written_atomically_and_listed(url: str) -> None:
    plan = _plan()
    sink = _sink(url, plan)
    GageIds.folder, GageIds.seen_early = sink, []
    try:
        with sink.commit(plan) as commit:
            facts = commit.facts
            manifest = commit.finish({"run_id": "r1", "outputs": list(facts.outputs)})
    finally:
        GageIds.folder = None
    assert GageIds.seen_early == [False] * len(plan.batches)  # published only when whole
    expected = "".join(f"{g}\n" for batch in plan.batches for m in plan.models for g in batch)
    assert sink.read_bytes(sink.path(EXTRA)).decode() == expected
    assert manifest["outputs"] == [
        "results.parquet",
        EXTRA,
        "nwm/standard_suite.csv",
        "nwm/dscore.csv",
        "nhm/standard_suite.csv",
        "nhm/dscore.csv",
    ]
    assert json.loads(sink.read_bytes(sink.path(MANIFEST_FILE))) == manifest
    assert not [p for p in sink.fs.find(sink.root) if ".tmp-" in p]
    assert sink.missing_outputs(manifest) == []
    sink.remove(EXTRA)
    assert sink.missing_outputs(manifest) == [EXTRA]  # what a rerun commits again


def test_a_failing_added_exporter_publishes_nothing(url: str) -> None:
    plan = _plan()

    class FailsAtPart1(GageIds):
        fail_at = 1

    sink = _sink(url, plan, FailsAtPart1)
    with pytest.raises(StorageError, match="writing part 1"), sink.commit(plan) as commit:
        commit.finish({"run_id": "r1"})  # (never reached)
    left = sorted(p.rsplit("/", 1)[-1] for p in sink.fs.find(sink.root))
    parts = [f"batch-0000{i}.parquet" for i in range(len(plan.batches))]
    assert left == [*parts, "plan.json"]


def test_the_hytest_csvs_are_what_pandas_writes_from_the_results(tmp_path: Path) -> None:
    """An independent reference: each CSV, byte for byte, is pandas' CSV of that model's
    rows of results.parquet in HyTEST's columns."""
    plan = _plan()
    sink = _sink(str(tmp_path / "r1"), plan, GageIds)
    with sink.commit(plan) as commit:
        commit.finish({"run_id": "r1"})
    results = pd.read_parquet(tmp_path / "r1" / "results.parquet")
    for model in plan.models:
        for suite, name in (("standard", "standard_suite.csv"), ("dscore", "dscore.csv")):
            rows = results[results["model"] == model][suite_csv_columns(suite)]
            reference = rows.to_csv(index=False, lineterminator="\n").encode()
            assert (tmp_path / "r1" / model / name).read_bytes() == reference, (model, suite)


# -- a real run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=6, seed=5, start="2001-01-01", end="2003-12-31")
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


def _run(stores: dict[str, Any], output: Path, client: Any, **settings: Any) -> Any:
    from gagebench.config import load_config
    from gagebench.pipeline import run

    overrides = {**stores, "output": str(output), "progress": False, "run_id": "r1"}
    return run(load_config(overrides={**overrides, **settings}), client=client)


class _ManifestTable(HTMLParser):
    """The rows (key, value) of the report's key-value table (its provenance)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_kv = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and "kv" in (dict(attrs).get("class") or "").split():
            self._in_kv = True
        elif self._in_kv and tag == "tr":
            self.rows.append([])
        elif self._in_kv and tag == "td":
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_kv = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None


def _shown(value: Any) -> str:
    """A manifest value as the provenance table shows it."""
    if value is None:
        return "–"
    if isinstance(value, list):
        text = json.dumps(value)
        return text if len(text) <= 300 else text[:297] + "…"
    if isinstance(value, dict) and not value:
        return "{}"
    return str(value)


def _leaves(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict) and value:
        found: dict[str, str] = {}
        for key, inner in value.items():
            found.update(_leaves(inner, f"{prefix}.{key}" if prefix else key))
        return found
    return {prefix: _shown(value)}


@pytest.mark.timeout(300)
def test_the_report_shows_manifest_json_as_written(
    stores: dict[str, Any], tmp_path: Path, client: Any
) -> None:
    """The report used to show a manifest built before it was drawn: no ``report.html``
    among the outputs, no ``report_s``. Now its provenance is manifest.json, key by key."""
    result = _run(stores, tmp_path, client, report=True)
    folder = tmp_path / "r1"
    written = json.loads((folder / MANIFEST_FILE).read_text())
    assert result.manifest == written
    assert "report.html" in written["outputs"]
    assert written["timings"]["report_s"] > 0
    page = _ManifestTable()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    shown = dict((row[0], row[1]) for row in page.rows if len(row) == 2)
    assert shown.pop("run URL") == written["run_url"]
    # the report leaves out the settings of cluster backends the run did not use
    backend = written["config"]["cluster"]["backend"]
    expected = {
        key: value
        for key, value in _leaves({k: v for k, v in written.items() if k != "run_url"}).items()
        if not key.startswith("config.cluster.options.")
        or key.startswith(f"config.cluster.options.{backend}.")
    }
    assert shown == expected


@pytest.mark.timeout(300)
def test_a_missing_added_output_is_written_again_by_the_rerun(
    stores: dict[str, Any],
    tmp_path: Path,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The output is added where a contributor adds one (the exporters' list), not in the
    writer: the run lists it, and a rerun that finds it missing commits again from the
    saved parts (computing nothing)."""
    monkeypatch.setattr(exporters, "EXPORTERS", (*exporters.EXPORTERS, GageIds))
    first = _run(stores, tmp_path, client, report=False)
    extra = tmp_path / "r1" / EXTRA
    assert EXTRA in first.manifest["outputs"]
    content = extra.read_bytes()
    assert sorted(content.decode().split()) == sorted(first.results["site_no"])
    extra.unlink()
    with caplog.at_level(logging.WARNING, logger="gagebench"):
        again = _run(stores, tmp_path, client, report=False)
    assert "committing it again from the saved batches" in caplog.text
    assert extra.read_bytes() == content
    assert again.manifest["batches"]["computed"] == 0
    assert again.manifest["outputs"] == first.manifest["outputs"]
