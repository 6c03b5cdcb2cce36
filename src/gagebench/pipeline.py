"""The job: a Dask bag of gage batches -> read -> evaluate -> rows, streamed to the sink.

HyTEST maps one bag element per gage; a Dask task costs ~2.6 ms here, so we map batches
(``batch_size`` gages per bag partition). Each batch is read from the zarr stores and
evaluated on a worker, and its rows come back to the client as soon as the task
finishes, where they are written as that batch's part file. At most a few tasks per
worker thread are in flight, so client and worker memory stay flat however many gages
the run has. A gage that cannot be evaluated is a row with a status, never a failed run.

The pipeline never creates clusters: it runs on the client it is given, or asks
:mod:`gagebench.clusters` for one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gagebench._version import __version__
from gagebench.batches import BatchesFailed, batches_failed_error
from gagebench.defaults import default
from gagebench.errors import (
    ClusterError,
    CommitError,
    ConfigError,
    GagebenchError,
    InputError,
    NoSpaceError,
    RunError,
    StorageError,
)
from gagebench.evaluation import (
    add_group_user_metrics,
    group_rows_frame,
    merge_uncertainty,
    missing_group_rows,
    missing_rows,
    rows_frame,
)
from gagebench.metrics import NOT_IN_MODEL, NOT_IN_OBSERVED, evaluate_arrays
from gagebench.metrics.user import names_of
from gagebench.progress import Progress, default_progress, rate_text
from gagebench.redact import redact_text, redact_urls
from gagebench.results.layout import (
    FIGURES_DIR,
    MANIFEST_FILE,
    PARTS,
    REPORT_FILE,
    SETTINGS_FILE,
    Plan,
)
from gagebench.results.writer import Commit, CommitFacts, RunSink, as_written

if TYPE_CHECKING:
    import distributed

    from gagebench.config import RunConfig
    from gagebench.report.against import BaselineOutcome
    from gagebench.report.html import DrawnReport
    from gagebench.results.lock import RunLock
    from gagebench.sources.sourceset import Batch, SourceSet
    from gagebench.uncertainty_suite import UncertaintySettings
    from gagebench.workermemory import BatchNeed

log = logging.getLogger(__name__)

#: Status of a gage whose arrays made the engine raise (the note holds the error).
ERROR = "error"


@dataclass(frozen=True)
class RunResult:
    """What a run produced: where, the manifest, and the results table."""

    run_url: str
    manifest: dict[str, Any]
    results: pd.DataFrame = field(repr=False)
    already_complete: bool = False

    def status_counts(self) -> pd.DataFrame:
        """Gages by status (rows) and model (columns)."""
        counts = self.manifest.get("counts", {})
        return pd.DataFrame(counts).fillna(0).astype(int).sort_index()

    def medians(self) -> pd.DataFrame:
        """Median NSE and KGE per model over evaluated gages."""
        return pd.DataFrame(self.manifest.get("medians", {})).T

    def __repr__(self) -> str:
        """One line: run id, where, gages, models and medians (not the whole manifest)."""
        medians = self.manifest.get("medians", {})
        per_model = ", ".join(
            f"{model}: NSE {_fmt(values.get('NSE'))}, KGE {_fmt(values.get('KGE'))}"
            for model, values in medians.items()
        )
        n_gages = self.manifest.get("inputs", {}).get("n_gages", "?")
        return redact_text(
            f"RunResult(run_id={self.manifest.get('run_id')!r}, url={self.run_url!r}, "
            f"gages={n_gages}, rows={len(self.results)}, median {{{per_model}}})"
        )

    def baselines(self) -> pd.DataFrame:
        """Median difference of each run model minus each published baseline (rows:
        ``baseline``, ``model``; ``median_KGE_diff``, ``median_NSE_diff``, paired gages,
        gages of one side only; ``error`` for a baseline that could not be compared)."""
        rows = []
        for name, entry in (self.manifest.get("baselines") or {}).items():
            if entry.get("status") != "compared":
                rows.append({"baseline": name, "model": None, "error": entry.get("error")})
                continue
            for model, values in (entry.get("models") or {}).items():
                rows.append({"baseline": name, "model": model, **values})
        return pd.DataFrame(rows)

    def report_url(self) -> str | None:
        """The URL of the run's ``report.html``, or None when the run has no report."""
        if REPORT_FILE not in self.manifest.get("outputs", []):
            return None
        return self.run_url.rstrip("/") + "/" + REPORT_FILE

    def _repr_html_(self) -> str:
        """A short card for notebooks: run id, where, status counts, medians, report, timings.

        The report is a link the page can follow when Jupyter serves it, else its location
        with a command to copy (:mod:`gagebench.report.link` has the rule).
        """
        import html

        from gagebench.report.link import relative_link, report_link_html

        def esc(value: Any) -> str:
            return html.escape(str(value))

        counts = self.status_counts()
        medians = self.medians()
        timings = self.manifest.get("timings", {})
        n_gages = self.manifest.get("inputs", {}).get("n_gages", "?")
        report = self.report_url()
        where = relative_link(self.run_url) or self.run_url  # as the report's link is
        report_html = "no report (report: false)" if report is None else report_link_html(report)
        parts = [
            f"{esc(n_gages)} gages",
            f"models {esc(', '.join(map(str, medians.index)) or '-')}",
            f"mode {esc(self.manifest.get('inputs', {}).get('mode', '?'))}",
            f"gagebench {esc(self.manifest.get('gagebench_version', '?'))}",
        ]
        timing_parts = [
            f"{label} {_seconds(timings.get(key))}"
            for key, label in (
                ("setup_s", "setup"),
                ("compute_s", "compute"),
                ("commit_s", "commit"),
                ("total_s", "total"),
            )
            if timings.get(key) is not None
        ]
        if timings.get("gages_per_s") is not None:
            timing_parts.append(rate_text(float(timings["gages_per_s"])))
        started = timings.get("started")
        medians_html = (
            medians.to_html(float_format="{:.3f}".format, na_rep="n/a")
            if not medians.empty
            else "<p>no gage evaluated</p>"
        )
        return redact_text(  # a password or token in the run's URL is not shown
            '<div class="gagebench-run">'
            f"<p><b>gagebench run <code>{esc(self.manifest.get('run_id'))}</code></b>"
            f"{' (already complete)' if self.already_complete else ''}"
            f" at <code>{esc(where)}</code><br>{esc(' · ').join(parts)}<br>"
            f"{report_html}</p>"
            f"<p>timings: {esc(', '.join(timing_parts) or 'n/a')}"
            f"{f' (started {esc(started)})' if started else ''}</p>"
            '<div style="display:flex; gap:2em; align-items:flex-start">'
            f"<div><b>gages by status</b>{counts.to_html()}</div>"
            f"<div><b>median over evaluated gages</b>{medians_html}</div>"
            f"{self._baselines_html()}"
            "</div></div>"
        )

    def _baselines_html(self) -> str:
        """The card's median KGE (and NSE) difference against each published baseline."""
        import html

        table = self.baselines()
        if table.empty:
            return ""
        shown = [
            c
            for c in ("baseline", "model", "median_KGE_diff", "median_NSE_diff", "error")
            if c in table.columns
        ]
        frame = table[shown].copy()
        for text in ("model", "error"):
            if text in frame.columns:
                frame[text] = frame[text].fillna("")
        body = frame.to_html(index=False, float_format="{:+.3f}".format, na_rep="")
        return (
            f"<div><b>against published baselines</b> "
            f"<small>{html.escape('(median of run − baseline per gage)')}</small>{body}</div>"
        )


def _seconds(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1f} s"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def evaluate_batch(
    source: SourceSet,
    gage_ids: Sequence[str],
    models: Sequence[str],
    suites: Sequence[str],
    mode: str,
    min_days: int = default("min_paired_days"),
    uncertainty: UncertaintySettings | None = None,
    by: Sequence[str] = (),
    metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """Read one batch from ``source`` and evaluate every model: one row per gage x model.

    With breakdowns (``by``), the rows of each grouping follow, one per gage, model and
    group, marked in the column ``breakdown`` (:func:`gagebench.results.layout.with_groups`).

    Gages absent from the observed store get ``not_in_observed`` rows, gages absent from
    a model store ``not_in_model`` rows; rows follow ``models`` then ``gage_ids`` order.
    The uncertainty suite (``uncertainty``: its settings, seed resolved) runs on every
    model of the batch at once, so models share draws and get paired columns.
    ``metrics``: the user metrics' import paths (``module:function``), imported here
    (:mod:`gagebench.metrics.user`); their columns follow the suites'.
    """
    from gagebench.evaluation import add_user_metrics
    from gagebench.metrics.user import import_metric

    user = tuple(import_metric(p) for p in metrics)
    names = [m.name for m in user]
    gage_ids = [str(g) for g in gage_ids]
    batch = source.read_batch(gage_ids)
    position = {str(g): i for i, g in enumerate(batch.gage_ids)}
    no_obs = {str(g) for g in batch.missing_observed} | {g for g in gage_ids if g not in position}
    suites = tuple(suites)
    extra = (
        _uncertainty_frames(batch, models, suites, mode, uncertainty)
        if "uncertainty" in suites
        else {}
    )
    frames = []
    grouped: dict[str, list[pd.DataFrame]] = {g: [] for g in by}
    labels = {g: _labels(batch.dates, g) for g in by}
    for model in models:
        no_model = {str(g) for g in batch.missing_model.get(model, ())} - no_obs
        ready = [g for g in gage_ids if g not in no_obs and g not in no_model]
        if ready:
            rows = [position[g] for g in ready]
            obs = (
                batch.observed if rows == list(range(len(batch.gage_ids))) else batch.observed[rows]
            )
            sim = batch.modeled[model]
            sim = sim if rows == list(range(len(batch.gage_ids))) else sim[rows]
            rows_of_model = _evaluate_rows(
                obs, sim, batch.dates, ready, model, suites, mode, min_days
            )
            if model in extra:
                picked = extra[model].iloc[rows].reset_index(drop=True)
                rows_of_model = merge_uncertainty(rows_of_model, picked, suites)
            frames.append(add_user_metrics(rows_of_model, obs, sim, user))
            for g in by:
                grouped[g].append(
                    add_group_user_metrics(
                        _evaluate_group_rows(obs, sim, batch.dates, ready, model, suites,
                                             mode, min_days, g, labels[g]),
                        obs, sim, ready, batch.dates, g, user,
                    )
                )  # fmt: skip
        for status, gone, note in (
            (NOT_IN_OBSERVED, no_obs, "gage not found in the observed store"),
            (NOT_IN_MODEL, no_model, f"gage not found in the {model} store"),
        ):
            ids = [g for g in gage_ids if g in gone]
            if ids:
                frames.append(missing_rows(ids, model, suites, status, note, names))
                for g in by:
                    grouped[g].append(
                        missing_group_rows(ids, model, suites, g, labels[g], status, note, names)
                    )
    frame = _in_batch_order(pd.concat(frames, ignore_index=True), gage_ids, models)
    if not by:
        return frame
    from gagebench.results.layout import with_groups

    tables = {
        g: _in_batch_order(pd.concat(grouped[g], ignore_index=True), gage_ids, models, g)
        for g in by
    }
    return with_groups(frame, tables)


def _in_batch_order(
    frame: pd.DataFrame, gage_ids: Sequence[str], models: Sequence[str], by: str | None = None
) -> pd.DataFrame:
    """Rows ordered by model, then gage (as in the batch), then group (a stable sort)."""
    order = {g: i for i, g in enumerate(gage_ids)}
    model_order = {m: i for i, m in enumerate(models)}
    key = frame["model"].map(model_order) * len(order) + frame["site_no"].map(order)
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _labels(dates: np.ndarray, by: str) -> list[Any]:
    """The groups of ``by`` that the batch's days fall in, in order."""
    from gagebench.metrics.breakdown import group_keys, group_label

    return [group_label(by, int(k)) for k in np.unique(group_keys(dates, by))]


def _uncertainty_frames(
    batch: Batch,
    models: Sequence[str],
    suites: tuple[str, ...],
    mode: str,
    settings: UncertaintySettings | None,
) -> dict[str, pd.DataFrame]:
    """The uncertainty suite's columns of every model, rows in ``batch.gage_ids`` order.

    If the batch raises :class:`~gagebench.errors.InputError` (a data condition the engine
    names), gage by gage; a gage that still raises it gets NaN and an ``error`` note (one
    bad gage is one row). Any other exception is a bug: it propagates and fails the batch.
    """
    from gagebench.uncertainty_suite import UncertaintySettings, evaluate_models

    settings = settings or UncertaintySettings(seed=0)
    ids = [str(g) for g in batch.gage_ids]
    sims = {m: batch.modeled[m] for m in models if m in batch.modeled}
    try:
        return evaluate_models(batch.observed, sims, batch.dates, ids, settings, mode)
    except InputError as batch_exc:
        log.warning(
            "uncertainty of a batch of %d gages failed (%s); gage by gage", len(ids), batch_exc
        )
    parts: dict[str, list[pd.DataFrame]] = {m: [] for m in sims}
    for i, gage in enumerate(ids):
        one = {m: sim[i : i + 1] for m, sim in sims.items()}
        try:
            got = evaluate_models(
                batch.observed[i : i + 1], one, batch.dates, [gage], settings, mode
            )
        except InputError as exc:
            got = {
                m: pd.DataFrame(
                    {"status": [ERROR], "note": [f"uncertainty: {type(exc).__name__}: {exc}"]}
                )
                for m in sims
            }
        for m in sims:
            parts[m].append(got[m])
    return {m: pd.concat(frames, ignore_index=True) for m, frames in parts.items()}


def _evaluate_rows(
    obs: np.ndarray,
    sim: np.ndarray,
    dates: np.ndarray,
    ids: list[str],
    model: str,
    suites: tuple[str, ...],
    mode: str,
    min_days: int = default("min_paired_days"),
) -> pd.DataFrame:
    """The engine on a batch; on an InputError, gage by gage, so one bad gage is one row.

    Only :class:`~gagebench.errors.InputError` (a data condition the engine names) becomes
    an ``error`` row; any other exception is a bug in the engine and propagates, so the
    batch fails loudly instead of writing rows that look like data.
    """
    return _batch_or_gage_by_gage(
        ids,
        lambda rows, gages: rows_frame(
            evaluate_arrays(
                obs[rows], sim[rows], dates, suites=suites, mode=mode, min_days=min_days
            ),
            gages,
            model,
            dates,
        ),
        lambda gage, note: missing_rows([gage], model, suites, ERROR, note),
        "batch",
    )


def _evaluate_group_rows(
    obs: np.ndarray,
    sim: np.ndarray,
    dates: np.ndarray,
    ids: list[str],
    model: str,
    suites: tuple[str, ...],
    mode: str,
    min_days: int,
    by: str,
    labels: list[Any],
) -> pd.DataFrame:
    """A breakdown of the batch (:func:`_evaluate_rows`' rules: on an InputError, gage by
    gage; a gage that still raises it gets an ``error`` row per group)."""
    from gagebench.metrics.breakdown import evaluate_groups

    return _batch_or_gage_by_gage(
        ids,
        lambda rows, gages: group_rows_frame(
            evaluate_groups(
                obs[rows], sim[rows], dates, by, suites=suites, mode=mode, min_days=min_days
            ),
            gages,
            model,
        ),
        lambda gage, note: missing_group_rows([gage], model, suites, by, labels, ERROR, note),
        f"breakdown by {by} of the batch",
    )


def _batch_or_gage_by_gage(
    ids: list[str],
    evaluate: Callable[[slice, list[str]], pd.DataFrame],
    error_rows: Callable[[str, str], pd.DataFrame],
    what: str,
) -> pd.DataFrame:
    """``evaluate(rows, gage ids)`` on the whole batch; on an InputError, gage by gage, a
    gage that still raises one getting ``error_rows(gage, note)``."""
    try:
        return evaluate(slice(None), ids)
    except InputError as batch_exc:
        log.warning(
            "%s of %d gages failed (%s); evaluating gage by gage", what, len(ids), batch_exc
        )
    frames = []
    for i, gage in enumerate(ids):
        try:
            frames.append(evaluate(slice(i, i + 1), [gage]))
        except InputError as exc:
            frames.append(error_rows(gage, f"{type(exc).__name__}: {exc}"))
    return pd.concat(frames, ignore_index=True)


# -- the Dask side -----------------------------------------------------------------------


def _evaluate_on_worker(
    element: tuple[int, tuple[str, ...]],
    source: SourceSet,
    models: tuple[str, ...],
    suites: tuple[str, ...],
    mode: str,
    min_days: int = default("min_paired_days"),
    uncertainty: UncertaintySettings | None = None,
    by: tuple[str, ...] = (),
    metrics: tuple[str, ...] = (),
) -> tuple[int, pd.DataFrame]:
    """One batch on a worker: ``(index, rows)``; tuned as its worker is (:mod:`.tuning`)."""
    from gagebench.tuning import tune_task

    # one numba thread for this task, only on workers gagebench started and tuned
    tune_task()
    index, ids = element
    return index, evaluate_batch(
        source, ids, models, suites, mode, min_days, uncertainty, by, metrics
    )


def _evaluate_or_failure(
    element: tuple[int, tuple[str, ...]],
    source: SourceSet,
    models: tuple[str, ...],
    suites: tuple[str, ...],
    mode: str,
    min_days: int = default("min_paired_days"),
    uncertainty: UncertaintySettings | None = None,
    by: tuple[str, ...] = (),
    metrics: tuple[str, ...] = (),
) -> tuple[int, Any]:
    """:func:`_evaluate_on_worker`; a failure comes back as a BatchFailure (no worker traceback)."""
    from gagebench.batches import batch_or_failure

    return batch_or_failure(
        lambda e: _evaluate_on_worker(
            e, source, models, suites, mode, min_days, uncertainty, by, metrics
        ),
        element,
    )


def stream_batches(
    client: distributed.Client,
    source: SourceSet,
    batches: Sequence[tuple[int, Sequence[str]]],
    models: Sequence[str],
    suites: Sequence[str],
    mode: str,
    max_in_flight: int | None = None,
    attempts: int = default("retries.batch_attempts"),
    min_days: int = default("min_paired_days"),
    uncertainty: UncertaintySettings | None = None,
    by: Sequence[str] = (),
    metrics: Sequence[str] = (),
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Evaluate ``(index, gage ids)`` batches on ``client``; yield results as they finish.

    A Dask bag with one partition per batch; its partitions are submitted a few at a time
    (``max_in_flight``, default 2 per worker thread) so memory stays flat. When a store
    holds several gages per chunk, each batch is a chunk-aware work unit whose chunk
    reads are tasks of their own (:func:`gagebench.sources.chunked.unit_graphs`). A failed
    batch is run again up to ``attempts`` times (:mod:`gagebench.batches`, which raises
    ``BatchesFailed`` at the end when some still fail).
    """
    import dask.bag as db

    from gagebench.batches import stream_with_retries
    from gagebench.sources.chunked import unit_graphs

    if not batches:
        return
    chunked = unit_graphs(source, [], _evaluate_or_failure, ()) is not None

    def submit(element: tuple[int, tuple[str, ...]]) -> Any:
        args = (
            tuple(models),
            tuple(suites),
            mode,
            min_days,
            uncertainty,
            tuple(by),
            tuple(metrics),
        )
        if chunked:  # several gages per chunk: the unit's chunk reads are tasks of their own
            graphs = unit_graphs(source, [element], _evaluate_or_failure, args)
            assert graphs is not None
            return client.compute(graphs[0])
        bag = db.from_sequence([element], npartitions=1).map(_evaluate_or_failure, source, *args)
        return client.compute(bag.to_delayed()[0])

    if max_in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        max_in_flight = max(2 * threads, 2)
    yield from stream_with_retries(client, submit, batches, max_in_flight, attempts)


@contextlib.contextmanager
def _client_for(
    config: RunConfig, client: distributed.Client | None
) -> Iterator[distributed.Client]:
    if client is not None:
        yield client
        return
    from gagebench.clusters import cluster_client

    with cluster_client(config) as opened:
        yield opened


# -- the run -----------------------------------------------------------------------------


def run(
    config: RunConfig,
    client: distributed.Client | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Run the benchmark of ``config`` and write its outputs under ``config.run_url``.

    Runs on ``client`` when given, else on a cluster from ``gagebench.clusters``. A run
    whose manifest exists is complete: it is returned as is when its settings are the
    same (else refused, naming what changed), unless ``force`` (then it is deleted and
    computed again). A run with parts but no manifest is resumed: only missing batches
    are computed. Every setting is checked before anything is written, and one process
    at a time holds the run folder (:mod:`gagebench.results.lock`). ``progress`` renders the
    run's progress: by default a bar in Jupyter
    (:func:`gagebench.progress.default_progress`) and nothing elsewhere.

    Parameters
    ----------
    config
        The run's settings, from :func:`gagebench.load_config`.
    client
        A ``distributed.Client`` of a cluster you opened (a ``LocalCluster``, a
        dask-gateway cluster); None: gagebench opens the cluster ``config.cluster``
        describes and closes it when the run ends, fails or is interrupted.
    force
        Delete a complete run of the same run id and compute it again.
    progress
        Where the progress goes; None: the default above.

    Returns
    -------
    RunResult
        The run's results table, manifest, status counts, medians and report URL; in
        Jupyter it shows itself as a card with a link to the report.
    """
    from gagebench.redact import install, mask_exception

    install()  # secrets masked in every log record and warning of this process
    try:
        return _check_and_lock_run(config, client, force=force, progress=progress)
    except BaseException as exc:  # the caller's own handler or Jupyter shows it: masked
        mask_exception(exc)
        raise


def _check_and_lock_run(
    config: RunConfig,
    client: distributed.Client | None,
    *,
    force: bool,
    progress: Progress | None,
) -> RunResult:
    """:func:`run`'s work, within its masking of secrets in exceptions."""
    from gagebench.clusters import check_settings
    from gagebench.results.layout import LOCK_FILE, check_apart, check_model_names
    from gagebench.results.lock import RunLock

    clock = _Clock.start()
    _refuse_unguarded_main()
    config.require_stores()
    check_model_names(list(config.models))
    check_apart(config.run_url, _inputs_of(config))
    check_settings(config, cluster=client is None)
    sink = RunSink(config.run_url, config.options_for())
    foreign = sink.foreign_entries()
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3])
        shown += ", ..." if len(foreign) > 3 else ""
        raise ConfigError(
            f"the run folder {sink.url} exists and is not a gagebench run folder (it holds "
            f"{shown}): the run would write into it (and --force delete it): choose another "
            "gagebench.output or run_id"
        )
    if not force:
        complete = _complete_run(config, sink)
        if complete is not None:
            return complete
    # every input is read and checked before the run folder is created (by the lock)
    inputs = _check_inputs(config)
    lock = RunLock(sink.fs, sink.path(LOCK_FILE), sink.url, local=sink.is_local)
    with lock.held():
        if force:
            log.info("--force: removing run %s at %s", config.run_id, sink.url)
            sink.clear()
            lock.refresh()
        else:
            # another run may have finished it while this one waited for the lease
            complete = _complete_run(config, sink)
            if complete is not None:
                return complete
            _drop_manifest_without_outputs(config, sink)
        if progress is None:
            progress = default_progress(config.progress)
        return _plan_compute_commit(config, client, sink, progress, inputs, lock, clock)


def _inputs_of(config: RunConfig) -> dict[str, str]:
    """What the run reads, by name: the stores, their crosswalk tables, the gage list."""
    stores = {"the observed store": config.observed}
    stores.update({f"the model {name!r} store": store for name, store in config.models.items()})
    inputs: dict[str, str] = {}
    for what, store in stores.items():
        if store is None:
            continue
        for i, url in enumerate(store.urls):  # a list of NetCDF files: each one
            inputs[what if i == 0 else f"{what} (file {i + 1})"] = url
        if store.crosswalk is not None and store.crosswalk.url is not None:
            inputs[f"the crosswalk of {what}"] = store.crosswalk.url
    if config.gages != "builtin":
        inputs["the gage list"] = config.gages
    return inputs


def _refuse_unguarded_main() -> None:
    """Stop a worker process that is re-running the user's script.

    Local workers are started with multiprocessing's spawn: each imports the script that
    started the run again (as ``__mp_main__``) while it is still bootstrapping. A script
    that calls ``gagebench.run()`` at module level, without ``if __name__ ==
    "__main__":``, would start a second run in every worker (refused by the run folder's
    lease, naming the script's own pid). The worker stops instead with one line saying to
    add the guard; the script's own run then fails with its workers
    (:mod:`gagebench.clusters.local` says why).
    """
    import multiprocessing
    import sys

    # multiprocessing's own "bootstrapping" flag, set while a spawned child imports main
    if not getattr(multiprocessing.current_process(), "_inheriting", False):
        return
    script = getattr(sys.modules.get("__mp_main__"), "__file__", None) or "the script"
    raise SystemExit(
        f"gagebench: {script} calls gagebench.run() when it is imported, and Dask's worker "
        f'processes import it again: put the call under if __name__ == "__main__": '
        "(see the Python API in the README)"
    )


@dataclass(frozen=True)
class _Clock:
    """The run's one clock: the wall-clock start and a monotonic reading of the same
    moment, so ``started``, ``finished`` and every ``*_s`` of the manifest agree."""

    started: _dt.datetime
    t0: float

    @classmethod
    def start(cls) -> _Clock:
        """Now, on both clocks."""
        return cls(_dt.datetime.now(_dt.UTC), time.perf_counter())


def _complete_run(config: RunConfig, sink: RunSink) -> RunResult | None:
    """The finished run of this id, if any; refused when its settings differ."""
    from gagebench.results.settings import differences, refusal, result_settings

    manifest = sink.read_manifest()
    if manifest is None or manifest.get("run_id") != config.run_id:
        return None
    diffs = differences(result_settings(manifest.get("config") or {}), result_settings(config))
    if diffs:
        raise ConfigError(refusal(config.run_id, sink.url, diffs, complete=True))
    if sink.missing_outputs(manifest):
        return None  # a commit cut short: committed again, under the lease
    log.info(
        "run %s is already complete at %s (manifest.json present); use --force to compute it again",
        config.run_id,
        sink.url,
    )
    return RunResult(sink.url, manifest, sink.read_results(), already_complete=True)


def _drop_manifest_without_outputs(config: RunConfig, sink: RunSink) -> None:
    """A manifest whose outputs are missing says "complete" falsely: remove it (the lease
    is held), so the run resumes from its saved parts and commits again."""
    manifest = sink.read_manifest()
    if manifest is None or manifest.get("run_id") != config.run_id:
        return
    missing = sink.missing_outputs(manifest)
    if missing:
        log.warning(
            "run %s at %s has manifest.json but not %s (a commit cut short): committing it "
            "again from the saved batches",
            config.run_id,
            sink.url,
            ", ".join(missing),
        )
        sink.remove(MANIFEST_FILE)


def _check_started(config: RunConfig, sink: RunSink) -> None:
    """Refuse to resume parts made with other settings; record them for the next resume."""
    import json

    from gagebench.results.settings import differences, refusal, result_settings

    path = sink.path(PARTS, SETTINGS_FILE)
    now = result_settings(config)
    if sink.exists(path):
        diffs = differences(json.loads(sink.read_bytes(path)), now)
        if diffs:
            raise ConfigError(refusal(config.run_id, sink.url, diffs, complete=False))
    else:
        sink.write_bytes(path, json.dumps(now).encode())


@dataclass(frozen=True)
class _Planned:
    """What the plan step hands on: the plan, the batches left and when the run began."""

    plan: Plan
    source: SourceSet
    done: set[int]
    todo: list[tuple[int, tuple[str, ...]]]
    uncertainty: UncertaintySettings | None
    started: _dt.datetime
    t0: float
    t_setup: float
    #: What the stores' check warned about (no day in common, missing units...).
    warnings: tuple[str, ...] = ()

    @property
    def computed_gages(self) -> int:
        """Gages in the batches this run computes (not the reused ones)."""
        return sum(len(ids) for _, ids in self.todo)


def _plan_compute_commit(
    config: RunConfig,
    client: distributed.Client | None,
    sink: RunSink,
    progress: Progress,
    inputs: _Inputs,
    lock: RunLock,
    clock: _Clock | None = None,
) -> RunResult:
    """The run itself, once the run folder's lease is held: plan, compute, commit."""
    planned = _plan_run(config, sink, inputs, clock or _Clock.start())
    compute_s = _compute(config, client, sink, progress, planned, lock)
    return _commit(config, sink, planned, compute_s, lock)


@dataclass(frozen=True)
class _Inputs:
    """The gage ids and the opened, checked stores (with their warnings): read before
    anything is written."""

    ids: list[str]
    source: SourceSet
    store_warnings: tuple[str, ...]


def _check_inputs(config: RunConfig) -> _Inputs:
    """Load the gage list and open and check the stores (nothing is written yet)."""
    from gagebench.gages import load_gages
    from gagebench.sources.sourceset import SourceSet

    _check_metric_names(config.metrics)
    gages = load_gages(config.gages, storage_options=config.options_for(), limit=config.gage_limit)
    ids = [str(g) for g in gages["gage_id"]]
    if not ids:
        raise InputError(f"the gage list {config.gages!r} is empty")
    source = SourceSet.from_config(config)
    store_warnings = tuple(source.check(config.min_paired_days))
    return _Inputs(ids, source, store_warnings)


def _check_metric_names(paths: Sequence[str]) -> None:
    """ConfigError when two user metrics share a column, or one takes a built-in's."""
    from gagebench.columns import builtin_columns

    taken = set(builtin_columns())
    for path, name in zip(paths, names_of(paths), strict=True):
        if name in taken:
            raise ConfigError(
                f"gagebench.metrics: the user metric {path!r} would be the column {name!r}, "
                "a built-in column or another user metric's: rename the function"
            )
        taken.add(name)


def _plan_run(config: RunConfig, sink: RunSink, inputs: _Inputs, clock: _Clock) -> _Planned:
    """Record the plan of the checked inputs and list the batches to compute."""
    from gagebench.results.layout import STARTED_FILE
    from gagebench.results.resume import started_record

    ids, source, store_warnings = inputs.ids, inputs.source, inputs.store_warnings
    plan = Plan(
        run_id=config.run_id,
        batches=source.plan_units(ids, config.batch_size),
        models=tuple(config.models),
        suites=config.suites,
        mode=config.mode,
        by=config.by,
        metrics=names_of(config.metrics),
    )
    _check_started(config, sink)
    unc_settings = config.uncertainty_settings() if "uncertainty" in config.suites else None
    done = sink.parts.start(plan)
    sink.write_bytes(sink.path(PARTS, STARTED_FILE), started_record(config.run_id))
    todo = [(i, plan.batches[i]) for i in range(len(plan.batches)) if i not in done]
    t_setup = time.perf_counter()
    log.info(
        "run %s: %d gages x %d model(s) in %d batches of %d; %d batches to compute -> %s",
        config.run_id,
        plan.n_gages,
        len(plan.models),
        len(plan.batches),
        plan.batch_size,
        len(todo),
        sink.url,
    )
    return _Planned(
        plan, source, done, todo, unc_settings, clock.started, clock.t0, t_setup, store_warnings
    )


def _compute(
    config: RunConfig,
    client: distributed.Client | None,
    sink: RunSink,
    progress: Progress,
    planned: _Planned,
    lock: RunLock,
) -> float:
    """Compute the batches left on the cluster, each saved as it comes; the seconds it took."""
    if not planned.todo:
        return 0.0
    from gagebench.workermemory import WorkersOutOfMemory, out_of_memory

    plan, done = planned.plan, planned.done
    with _client_for(config, client) as dask_client:
        need = _memory_check(config, client, dask_client, planned)
        if config.metrics:
            check_workers_import(dask_client, config.metrics)
        progress.start(
            len(plan.batches), plan.n_gages, len(done), sum(len(plan.batches[i]) for i in done)
        )
        t_compute0 = time.perf_counter()
        saved = len(done)
        try:
            for index, frame in stream_batches(
                dask_client,
                planned.source,
                planned.todo,
                plan.models,
                config.suites,
                config.mode,
                attempts=int(config.retries.get("batch_attempts", 3)),
                min_days=config.min_paired_days,
                uncertainty=planned.uncertainty,
                by=config.by,
                metrics=config.metrics,
            ):
                lock.check()  # a run that lost its lease stops before writing more
                sink.parts.write(index, frame, config.suites, config.by, plan.metrics)
                saved += 1
                progress.update(len(plan.batches[index]))
        except BatchesFailed as exc:
            raise batches_failed_error(
                config.run_id, sink.url_of("_parts"), exc, saved, plan, _resume(config.run_id, {})
            ) from exc
        except WorkersOutOfMemory as exc:
            raise out_of_memory(
                exc,
                config.run_id,
                _memory_setting(config, client),
                need,
                saved,
                len(plan.batches),
                sink.url_of("_parts"),
                functools.partial(_resume, config.run_id),
            ) from exc
        except NoSpaceError as exc:
            raise NoSpaceError(f"{exc}. {_resume_hint(config, sink)}") from exc
        except StorageError as exc:  # saving a part failed: a failed run (exit 1), not bad input
            raise RunError(
                f"run {config.run_id} stopped: {exc}. {_resume_hint(config, sink)}"
            ) from exc
        except GagebenchError:
            raise
        except Exception as exc:
            log.error("run %s: a batch failed on the cluster", config.run_id, exc_info=True)
            raise ClusterError(
                f"run {config.run_id} stopped: a batch failed on the cluster "
                f"({type(exc).__name__}: {exc}). Finished batches are saved under "
                f"{sink.url_of('_parts')}; resume with: {_resume(config.run_id, {})}"
            ) from exc
        finally:
            progress.close()
        return time.perf_counter() - t_compute0


def check_workers_import(client: distributed.Client, paths: Sequence[str]) -> None:
    """ConfigError unless every worker imports every user metric (``module:function``):
    checked once, before any batch, so a missing module is one clear error, not one
    failed batch after another.

    One task per worker, pinned to it (in its thread pool: an import that takes a while
    does not hold up the worker's heartbeats, as ``client.run`` in its event loop would);
    a cluster without workers yet (adaptive) checks the first worker it starts.
    """
    from gagebench.metrics.user import check_importable

    workers = list(client.scheduler_info().get("workers", {}))
    futures = {
        worker: client.submit(
            check_importable,
            list(paths),
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        for worker in workers
    } or {"(the first worker)": client.submit(check_importable, list(paths), pure=False)}
    found = {worker: future.result() for worker, future in futures.items()}
    failing = {worker: got for worker, got in found.items() if got}
    if not failing:
        return
    worker, problems = next(iter(failing.items()))
    path, problem = next(iter(problems.items()))
    raise ConfigError(
        f"gagebench.metrics: {len(failing)} of {len(found)} worker(s) cannot import the user "
        f"metric {path!r} (e.g. worker {worker}: {problem}); install its module in the "
        "workers' image or environment, or put its folder on the workers' PYTHONPATH "
        "(a local cluster's workers inherit the PYTHONPATH of the process that starts it)"
    )


def _resume(run_id: str, sets: dict[str, str]) -> str:
    """The command that resumes ``run_id`` from this process's command line."""
    from gagebench.commandline import command_line, resume_command

    return resume_command(run_id, command_line(), sets=sets)


def _memory_setting(config: RunConfig, client: distributed.Client | None) -> str | None:
    """The setting that sizes a worker's memory, on a cluster gagebench starts."""
    from gagebench.clusters import backend_class

    return None if client is not None else backend_class(config.cluster.backend).memory_setting()


def _memory_check(
    config: RunConfig,
    client: distributed.Client | None,
    dask_client: distributed.Client,
    planned: _Planned,
) -> BatchNeed:
    """What a worker needs for the batches left; a warning when workers have less."""
    from gagebench.sources.sourceset import OBSERVED
    from gagebench.workermemory import batch_need, memory_warning, smallest_worker

    source = planned.source
    keys = [OBSERVED, *(("model", name) for name in planned.plan.models)]
    steps = [int(source.store_of(key).n_time) for key in keys]
    gages = max(len(ids) for _, ids in planned.todo)
    workers = dask_client.scheduler_info().get("workers", {})
    if not workers and client is None and config.cluster.backend == "local":
        workers = _local_workers(config)  # all restarting already: the settings say it
    setting = _memory_setting(config, client) or "the workers' memory limit"
    warning = memory_warning(workers, gages, steps, setting)
    if warning:
        log.warning("%s", warning)
    smallest = smallest_worker(workers)
    return batch_need(gages, steps, smallest[1] if smallest else 1)


def _local_workers(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The local backend's worker size from its settings, as ``scheduler_info`` gives it."""
    from dask.utils import parse_bytes

    options = config.cluster.backend_options("local")
    memory = options.get("memory_limit")
    if not isinstance(memory, str | int | float) or str(memory).strip().lower() == "auto":
        return {}
    limit = parse_bytes(memory) if isinstance(memory, str) else int(memory)
    return {"settings": {"memory_limit": limit, "nthreads": options.get("threads_per_worker")}}


def _resume_hint(config: RunConfig, sink: RunSink) -> str:
    """Where the finished batches are and the exact command that resumes the run (the
    same command may mean another run: a ``{time}`` id, ``--force``)."""
    return (
        f"The finished batches are saved under {sink.url_of(PARTS)}; only missing batches "
        f"are computed when resumed with: {_resume(config.run_id, {})}"
    )


def _commit(
    config: RunConfig, sink: RunSink, planned: _Planned, compute_s: float, lock: RunLock
) -> RunResult:
    """Gather the parts into the outputs, draw the report, write ``manifest.json`` last.

    Publishing gives the facts; the manifest is built from them once, after the report is
    drawn (it records how long that took), and the page shows it as ``manifest.json``
    holds it. A storage failure is a :class:`~gagebench.errors.CommitError` (exit 1) that
    names the run folder and how to resume; a lost lease stops it before anything is
    published.
    """
    t_commit0 = time.perf_counter()
    try:
        with sink.commit(planned.plan, lease=lock.verify) as commit:
            timings = _timings(planned, compute_s, t_commit0)  # the run's clock stops here
            against = _against_baselines(config, sink)
            report = _Report(config, sink, commit, against) if config.report else None
            if report is not None:
                report.draw()
            manifest = _manifest(config, sink, planned, commit.facts, timings, report, against)
            if report is None:
                _drop_earlier_report(sink, commit)
            else:
                commit.verify_lease()  # the page goes into the folder: still this run's?
            if report is not None and report.write(manifest):
                manifest = _manifest(config, sink, planned, commit.facts, timings, report, against)
            commit.finish(manifest)
        final = commit.manifest
    except NoSpaceError as exc:
        raise NoSpaceError(f"{exc}. {_resume_hint(config, sink)}") from exc
    except StorageError as exc:
        raise CommitError(
            f"run {config.run_id}: the commit to {sink.url} failed: {exc}. "
            f"{_resume_hint(config, sink)}, then committed"
        ) from exc
    assert final is not None  # the commit ended with its manifest, or raised
    log.info("run %s complete: %s", config.run_id, sink.url_of(MANIFEST_FILE))
    return RunResult(sink.url, final, sink.read_results())


def _against_baselines(config: RunConfig, sink: RunSink) -> list[BaselineOutcome]:
    """The run's published baselines compared with its committed results (none: [])."""
    if not config.baselines:
        return []
    from gagebench.report.against import compare_with_baselines

    return compare_with_baselines(sink.read_results(), _thaw_baselines(config))


def _thaw_baselines(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The run file's ``baselines:`` as plain dicts and lists (the config holds them frozen)."""

    def thaw(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: thaw(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return [thaw(v) for v in value]
        return value

    return {str(k): thaw(v) for k, v in config.baselines.items()}


def _drop_earlier_report(sink: RunSink, commit: Commit) -> None:
    """A commit without the report removes the page (and its figures) an earlier commit
    of this run left (one cut short, or whose outputs went missing): it shows a manifest
    that is not ``manifest.json``. ``gagebench report`` writes this run's page."""
    commit.verify_lease()
    for rel in (REPORT_FILE, FIGURES_DIR):
        sink.remove_tree(rel)


class _Report:
    """The run's ``report.html``: drawn after the outputs, written with the manifest. A
    report that fails is a warning in the manifest, not a failed run."""

    def __init__(
        self,
        config: RunConfig,
        sink: RunSink,
        commit: Commit,
        baselines: list[BaselineOutcome] | None = None,
    ) -> None:
        self.config, self.sink, self.commit = config, sink, commit
        self.baselines = baselines
        self.drawn: DrawnReport | None = None
        self.seconds: float | None = None
        self.error: str | None = None

    def draw(self) -> None:
        """Draw the figures (the slow part), timed; a failure is recorded in ``error``."""
        from gagebench.report.html import draw_report  # matplotlib only when needed

        self.commit.publishes(REPORT_FILE)
        t0 = time.perf_counter()
        try:
            # the manifest is written after the report: none to read yet
            self.drawn = draw_report(
                self.sink.url,
                storage_options=self.config.options_for(),
                gages=self.config.gages,
                manifest={},
                report_gages=self.config.report_gages,
                baselines=self.baselines,
            )
        except Exception as exc:
            self._failed(exc)
        finally:
            self.seconds = time.perf_counter() - t0

    def write(self, manifest: dict[str, Any]) -> bool:
        """Write the page showing ``manifest``; True when that failed (the manifest must
        then say so)."""
        if self.drawn is None:
            return False
        try:
            self.drawn.write(manifest)
        except Exception as exc:
            self._failed(exc)
            return True
        return False

    def _failed(self, exc: Exception) -> None:
        from gagebench.batches import is_bug
        from gagebench.storage.retry import error_summary

        self.drawn = None
        self.error = error_summary(exc)
        # a bug in the report shows its traceback; a storage error is one line
        log.warning(
            "the report of %s could not be written (%s); the results and manifest.json "
            "are written without it (make it later with: gagebench report %s)",
            self.sink.url,
            self.error,
            self.sink.url,
            exc_info=is_bug(exc),
        )
        self.commit.discard(REPORT_FILE)


def _timings(planned: _Planned, compute_s: float, t_commit0: float) -> dict[str, Any]:
    """The run's timings, taken once on the run's clock when its outputs are published
    (before the report): ``report.html``, ``manifest.json`` and the summary show the same
    numbers. Drawing the report is timed apart (``report_s``)."""
    now = time.perf_counter()
    total_s = now - planned.t0
    return {
        "started": planned.started.isoformat(),
        "finished": (planned.started + _dt.timedelta(seconds=total_s)).isoformat(),
        "setup_s": round(planned.t_setup - planned.t0, 3),
        "compute_s": round(compute_s, 3),
        "commit_s": round(now - t_commit0, 3),
        "total_s": round(total_s, 3),
        "computed_gages": planned.computed_gages,
        "gages_per_s": (round(planned.computed_gages / compute_s, 4) if compute_s > 0 else None),
    }


def _manifest(
    config: RunConfig,
    sink: RunSink,
    planned: _Planned,
    facts: CommitFacts,
    timings: dict[str, Any],
    report: _Report | None,
    against: list[BaselineOutcome] | None = None,
) -> dict[str, Any]:
    """The run's ``manifest.json`` (as written: masked, through JSON) from the commit's
    facts, the timings, the report's outcome and the published baselines' (``baselines``:
    each one's median differences, or why it failed; no key without baselines)."""
    plan = planned.plan
    outputs = list(facts.outputs)
    failed: dict[str, Any] = {}
    commit_warnings: list[str] = []
    if report is not None:
        if report.error is None:
            outputs.append(REPORT_FILE)
        else:
            failed = {"report": {"status": "failed", "error": report.error}}
            commit_warnings.append(f"the report could not be written: {report.error}")
        if report.seconds is not None:
            timings = {**timings, "report_s": round(report.seconds, 3)}
    baselines: dict[str, Any] = {}
    if against:
        from gagebench.report.against import manifest_entries, warning_lines

        baselines = {"baselines": manifest_entries(against)}
        commit_warnings.extend(warning_lines(against))
    return as_written(
        redact_urls(
            {
                "run_id": config.run_id,
                "status": "complete",
                "gagebench_version": __version__,
                "run_url": sink.url,
                "config": config.to_dict(),
                "inputs": _manifest_inputs(config, plan, planned.uncertainty),
                "batches": {
                    "total": len(plan.batches),
                    "batch_size": plan.batch_size,
                    "reused": len(planned.done),
                    "computed": len(planned.todo),
                },
                "stores": planned.source.manifest_entry(),
                "counts": facts.counts,
                "medians": facts.medians,
                **baselines,
                "outputs": outputs,
                **failed,
                **_warnings(planned.warnings, commit_warnings),
                "timings": timings,
            }
        )
    )


def _warnings(*groups: Sequence[str]) -> dict[str, list[str]]:
    """The manifest's ``warnings``: the stores' (at start), then the commit's; none: no key."""
    found = [str(line) for group in groups for line in group]
    return {"warnings": found} if found else {}


def _manifest_inputs(
    config: RunConfig, plan: Plan, unc_settings: UncertaintySettings | None
) -> dict[str, Any]:
    """The manifest's ``inputs``: gages, stores, suites, mode and the seed used."""
    inputs: dict[str, Any] = {
        "gages": config.gages,
        "n_gages": plan.n_gages,
        "observed": config.observed.url if config.observed else None,
        "models": {name: store.url for name, store in config.models.items()},
        "suites": list(config.suites),
        "mode": config.mode,
    }
    if unc_settings is not None:
        inputs["uncertainty"] = {**dict(config.uncertainty), "seed_used": unc_settings.seed}
    return inputs
