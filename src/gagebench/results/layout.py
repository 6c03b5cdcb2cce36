"""Where every file of a run folder goes, and the schemas they are written in.

The one place that names a run folder's files: the writer, the reader (report, compare,
resume), the lease and the settings check all use these names. Layout under
``<output>/<run_id>/`` (docs/user-guide/outputs.md)::

    _parts/plan.json              the batch plan (batch -> gage ids), written at start
    _parts/settings.json          the settings that decide the results (refuses a changed rerun)
    _parts/started.json           the command that last started it, to say how to resume it
    _parts/batch-00012.parquet    one file per finished batch, each written atomically
    _lock.json                    the lease of the process running it
    results.parquet               every row (written at commit)
    <model>/standard_suite.csv    HyTEST format, only for suites that ran
    <model>/dscore.csv
    <model>/kge.csv               the kge and errors suites (site_no + columns), when run
    <model>/errors.csv
    <model>/benchmark.csv         KGE_bench, NSE_bench, KGE_skill, NSE_skill
    <model>/uncertainty.csv       gumboot's long shape (site_no, GOF_stat, seJack, ...)
    results_by_<group>.parquet    a breakdown (by: season, month, water_year): every
                                  (site_no, model, <group>) row, when asked for
    <model>/by_<group>.csv        the same rows of one model
    <model>/user_metrics.csv      site_no and the user metrics' columns, when a run has some
    report.html, figures/         the report, when report is on
    manifest.json                 written last: its presence means the run is complete
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from gagebench.columns import group_columns, result_columns
from gagebench.errors import ConfigError
from gagebench.metrics import SUITES
from gagebench.metrics.breakdown import GROUPINGS
from gagebench.redact import redact_text

PARTS = "_parts"
PLAN_FILE = "plan.json"
MANIFEST_FILE = "manifest.json"
RESULTS_FILE = "results.parquet"
REPORT_FILE = "report.html"
SUITE_FILES = {
    "standard": "standard_suite.csv",
    "dscore": "dscore.csv",
    "kge": "kge.csv",
    "errors": "errors.csv",
    "benchmark": "benchmark.csv",
    "uncertainty": "uncertainty.csv",
}
#: Each model's user metrics (``metrics:`` of the run file): ``site_no`` and their columns.
USER_METRICS_FILE = "user_metrics.csv"
LOCK_FILE = "_lock.json"
SETTINGS_FILE = "settings.json"
STARTED_FILE = "started.json"
FIGURES_DIR = "figures"
#: The column of a part file that marks a breakdown's rows with their grouping (null on
#: the results rows); only in the parts of runs with breakdowns.
BREAKDOWN = "breakdown"
_PART_NAME = re.compile(r"batch-(\d{5,})\.parquet$")


def breakdown_file(by: str) -> str:
    """``results_by_<by>.parquet``: a breakdown's rows of every model."""
    return f"results_by_{by}.parquet"


def breakdown_csv(model: str, by: str) -> str:
    """``<model>/by_<by>.csv``: a breakdown's rows of one model."""
    return f"{model}/by_{by}.csv"


def run_path(root: str, *parts: str) -> str:
    """``root/part/...``: the path (or URL) of a file of the run folder ``root``.

    Every output path of a run folder is made here, and none may leave it: each
    ``/``-separated segment of ``parts`` must be a plain name (not empty, not only dots
    such as ``..``, no ``\\`` or control character), so a hostile model name or a tampered
    ``plan.json`` cannot reach a file above or beside the run folder.
    """
    base = root.rstrip("/")
    for part in parts:
        for segment in str(part).split("/"):
            dots = set(segment) <= {"."}  # "", ".", "..", "....": none names a file
            if dots or not segment.isprintable() or "\\" in segment:
                raise ConfigError(
                    f"{'/'.join(map(str, parts))!r} is not a file name inside the run folder "
                    f"{root}: each part must be a plain name (no '.', '..', '/' or '\\'); "
                    "check the model names (gagebench.models)"
                )
    if not base:  # "" or "/": the parts below it as they are
        return root + "/".join(parts)
    path = "/".join([base, *parts])
    # belt and braces: the segments above cannot climb, so this holds by construction
    assert posixpath.normpath(path).startswith(posixpath.normpath(base) + "/"), path
    return path


#: Names the run folder itself uses at its top: a model folder of one of these names
#: would mix its CSVs with the run's own files (compared case-insensitively, as macOS
#: and Windows file systems do).
RESERVED_NAMES = frozenset(
    name.casefold()
    for name in (
        PARTS,
        MANIFEST_FILE,
        RESULTS_FILE,
        REPORT_FILE,
        LOCK_FILE,
        FIGURES_DIR,
        *(breakdown_file(by) for by in GROUPINGS),
    )
)


#: Names Windows keeps for devices, with any extension (``nul.txt`` too).
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{i}" for port in ("com", "lpt") for i in range(1, 10)]
)


def check_model_names(names: Sequence[str]) -> None:
    """ConfigError unless each model name can be a folder of its own in the run folder:
    not a name the run folder uses for its own files (``report.html``, ``figures``,
    ``manifest.json``...), not a Windows device (``CON``, ``nul``), and no two names
    that one folder would hold on a case-insensitive file system (``NWM`` and ``nwm``)
    or on Windows (``nwm.``)."""
    seen: dict[str, str] = {}
    for name in names:
        folded = str(name).casefold().rstrip(".")
        if folded in RESERVED_NAMES or str(name).casefold() in RESERVED_NAMES:
            raise ConfigError(
                f"gagebench.models: the model name {name!r} is the name of a file of the "
                f"run folder ({', '.join(sorted(RESERVED_NAMES))}): rename the model"
            )
        if folded.split(".", 1)[0] in _WINDOWS_DEVICES:
            raise ConfigError(
                f"gagebench.models: the model name {name!r} names a device on Windows "
                "(CON, PRN, AUX, NUL, COM1-9, LPT1-9), not a folder: rename the model"
            )
        if folded in seen:
            raise ConfigError(
                f"gagebench.models: the model names {seen[folded]!r} and {name!r} would "
                "share one folder on case-insensitive file systems (macOS, Windows): "
                "rename one of them"
            )
        seen[folded] = str(name)


def check_apart(run_url: str, inputs: Mapping[str, str]) -> None:
    """ConfigError when the run folder is an input (``inputs``: what -> URL), lies inside
    one, or holds one: the run writes ``_parts``, CSVs and the report there, and
    ``--force`` deletes the whole folder, an input store with it."""
    run = _comparable(run_url)
    for what, url in inputs.items():
        other = _comparable(url)
        if run == other or run.startswith(other + "/") or other.startswith(run + "/"):
            where = "is" if run == other else ("is inside" if len(run) > len(other) else "holds")
            raise ConfigError(
                f"the run folder {run_url} {where} {what} {url}: the run writes there (and "
                "--force deletes it): choose another gagebench.output or run_id"
            )


def _comparable(url: str) -> str:
    """A URL as a comparable string: local paths absolute with links resolved (also
    ``file://``), others ``scheme://path`` without a trailing ``/``; a chained URL by
    its last part."""
    import os

    url = url.rpartition("::")[2]
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "file", url
    scheme = {"s3a": "s3", "local": "file", "gcs": "gs", "abfs": "az"}.get(scheme.lower(), scheme)
    if scheme == "file":
        return "file://" + os.path.realpath(os.path.expanduser(rest))
    return f"{scheme}://{rest.rstrip('/')}"


def part_name(index: int) -> str:
    """The file name of batch ``index``'s part (under :data:`PARTS`)."""
    return f"batch-{index:05d}.parquet"


def part_index(name: str) -> int | None:
    """The batch index of a part file name, or None when it is not a part."""
    match = _PART_NAME.search(name)
    return int(match.group(1)) if match else None


def suite_csv_columns(suite: str) -> list[str]:
    """HyTEST's column names and order of one suite's CSV (``site_no`` first); a suite
    HyTEST lacks (``kge``, ``errors``) in the same shape, its registry columns.

    ``uncertainty.csv`` is gumboot's long shape (one row per gage and statistic).
    """
    if suite == "uncertainty":
        from gagebench.uncertainty_suite import LONG_COLUMNS

        return list(LONG_COLUMNS)
    cols = SUITES[suite]
    return ["site_no", *[c for c in cols if c != "site_no"]]


def results_schema(suites: Sequence[str], metrics: Sequence[str] = ()) -> pa.Schema:
    """The fixed Arrow schema of results (every part and results.parquet share it);
    ``metrics``: the user metrics' columns (float64, after the suites' columns)."""
    fields = []
    for name in result_columns(suites, metrics):
        if name in ("site_no", "model", "status", "note"):
            fields.append(pa.field(name, pa.string()))
        elif name == "n_days":
            fields.append(pa.field(name, pa.int64()))
        elif name in ("first_day", "last_day"):
            fields.append(pa.field(name, pa.timestamp("ns")))
        else:
            fields.append(pa.field(name, pa.float64()))
    return pa.schema(fields)


def group_schema(by: str, suites: Sequence[str], metrics: Sequence[str] = ()) -> pa.Schema:
    """The Arrow schema of a breakdown's rows (``results_by_<by>.parquet``): the group a
    string (season) or an integer (month, water year); ``metrics``: the user metrics'."""
    fields = []
    for name in group_columns(by, suites, metrics):
        if name in ("site_no", "model", "status", "note") or name == by == "season":
            fields.append(pa.field(name, pa.string()))
        elif name in ("n_days", by):
            fields.append(pa.field(name, pa.int64()))
        else:
            fields.append(pa.field(name, pa.float64()))
    return pa.schema(fields)


def part_schema(
    suites: Sequence[str], by: Sequence[str] = (), metrics: Sequence[str] = ()
) -> pa.Schema:
    """The schema of a part file: the results schema; with breakdowns, the column
    :data:`BREAKDOWN` and each grouping's column appended (their rows in the same file, so
    a batch's part holds all of its rows or none, and resume carries the breakdowns)."""
    schema = results_schema(suites, metrics)
    if not by:
        return schema
    extra = [pa.field(BREAKDOWN, pa.string())]
    extra += [group_schema(g, suites, metrics).field(g) for g in by]
    return pa.schema([*schema, *extra])


def with_groups(frame: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """A batch's results rows followed by its breakdown rows (``tables``: grouping ->
    rows), each marked in :data:`BREAKDOWN` (null on the results rows)."""
    marked = [frame.assign(**{BREAKDOWN: None})]
    marked += [rows.assign(**{BREAKDOWN: by}) for by, rows in tables.items()]
    return pd.concat(marked, ignore_index=True)


def split_groups(
    table: pa.Table, suites: Sequence[str], by: Sequence[str], metrics: Sequence[str] = ()
) -> tuple[pa.Table, dict[str, pd.DataFrame]]:
    """A part's table as its results rows (the results schema) and each grouping's rows
    (in :func:`group_schema`'s columns and types)."""
    if not by:
        return table, {}
    import pyarrow.compute as pc

    marker = table.column(BREAKDOWN)
    main = table.filter(pc.is_null(marker)).select(results_schema(suites, metrics).names)
    groups = {}
    for g in by:
        schema = group_schema(g, suites, metrics)
        rows = table.filter(pc.equal(marker, g)).select(schema.names).cast(schema)
        groups[g] = rows.to_pandas()
    return main, groups


def _masked_note(note: Any) -> Any:
    return redact_text(note) if isinstance(note, str) else note


def to_table(
    frame: pd.DataFrame, suites: Sequence[str], by: Sequence[str] = (), metrics: Sequence[str] = ()
) -> pa.Table:
    """Rows as an Arrow table of :func:`results_schema` (column order and types fixed);
    with breakdowns (``by``), of :func:`part_schema`."""
    schema = part_schema(suites, by, metrics)
    frame = frame[schema.names]
    if frame["note"].notna().any():  # notes quote errors: mask any secret in them
        frame = frame.assign(note=frame["note"].map(_masked_note))
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


@dataclass(frozen=True)
class Plan:
    """The batches of a run and what their parts contain (so resume cannot mix runs)."""

    run_id: str
    batches: tuple[tuple[str, ...], ...]
    models: tuple[str, ...]
    suites: tuple[str, ...]
    mode: str
    by: tuple[str, ...] = ()
    #: The user metrics' columns (``metrics`` of the run file: each function's name).
    metrics: tuple[str, ...] = ()

    @property
    def n_gages(self) -> int:
        """Number of gages over all batches."""
        return sum(len(b) for b in self.batches)

    @property
    def batch_size(self) -> int:
        """Gages in the largest batch."""
        return max((len(b) for b in self.batches), default=0)

    def to_json(self) -> dict[str, Any]:
        """The plan as saved in ``_parts/plan.json``."""
        return {
            "run_id": self.run_id,
            "batch_size": self.batch_size,
            "n_gages": self.n_gages,
            "models": list(self.models),
            "suites": list(self.suites),
            "mode": self.mode,
            **({"by": list(self.by)} if self.by else {}),  # plans without it stay the same
            "batches": [list(b) for b in self.batches],
            **({"metrics": list(self.metrics)} if self.metrics else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Read a plan saved by :meth:`to_json`."""
        return cls(
            run_id=str(data["run_id"]),
            batches=tuple(tuple(b) for b in data["batches"]),
            models=tuple(data["models"]),
            suites=tuple(data["suites"]),
            mode=str(data["mode"]),
            by=tuple(data.get("by", ())),
            metrics=tuple(data.get("metrics", ())),
        )

    def differences(self, other: Plan) -> list[str]:
        """What differs between this saved plan and a new one (empty: same plan)."""
        diffs = []
        if self.batches != other.batches:
            if [g for b in self.batches for g in b] != [g for b in other.batches for g in b]:
                diffs.append(f"the gage list ({self.n_gages} gages before, {other.n_gages} now)")
            else:
                diffs.append(f"batch_size ({self.batch_size} before, {other.batch_size} now)")
        for name in ("models", "suites", "mode", "by", "metrics"):
            if getattr(self, name) != getattr(other, name):
                diffs.append(f"{name} ({getattr(self, name)} before, {getattr(other, name)} now)")
        return diffs
