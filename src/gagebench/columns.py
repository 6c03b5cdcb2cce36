"""The columns of a results table: one row per gage and model, the same everywhere.

``site_no, model, <suite columns>, n_days, first_day, last_day, status, note``: the
in-memory API (:mod:`gagebench.evaluation`), the pipeline's rows and the run folder's
schemas (:mod:`gagebench.results.layout`) all take their column order from here, below
both of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from gagebench.metrics import METRICS, SUITES, check_names

#: The columns every row ends with, whatever the suites.
ROW_TAIL = ("n_days", "first_day", "last_day", "status", "note")


def result_columns(suites: str | Sequence[str], metrics: Sequence[str] = ()) -> list[str]:
    """Column order of a results table for the given suites (and user metrics' columns,
    ``metrics``, after the suites' columns).

    The uncertainty suite adds its columns and the paired-comparison columns (NaN on the
    first model's rows and in one-model runs), so a table's schema depends on suites only.
    """
    from gagebench.uncertainty_suite import COLUMNS, PAIRED_COLUMNS

    suites = check_names(suites if isinstance(suites, str) else tuple(suites), "standard")
    extra = (*COLUMNS, *PAIRED_COLUMNS) if "uncertainty" in suites else ()
    body = [m.name for m in METRICS if m.suite in suites]
    return ["site_no", "model", *body, *extra, *metrics, *ROW_TAIL]


def builtin_columns() -> list[str]:
    """Every column a built-in suite, a breakdown or the row itself may have (user metrics
    may not take these names)."""
    from gagebench.metrics.breakdown import GROUPINGS

    return [*result_columns(tuple(SUITES)), *GROUPINGS]


#: The columns a breakdown's rows end with (no first/last day: a group is not one span).
GROUP_TAIL = ("n_days", "status", "note")


def group_columns(by: str, suites: str | Sequence[str], metrics: Sequence[str] = ()) -> list[str]:
    """Column order of a breakdown's long table (``results_by_<by>``): ``site_no, model,
    <by>``, the per-day suites' columns, the user metrics', ``n_days, status, note``."""
    from gagebench.metrics.breakdown import breakdown_suites

    chosen = breakdown_suites(suites if isinstance(suites, str) else tuple(suites), "standard")
    body = [m.name for m in METRICS if m.suite in chosen]
    return ["site_no", "model", by, *body, *metrics, *GROUP_TAIL]
