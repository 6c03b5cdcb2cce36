"""A run against the published baselines of its run file (``baselines:``).

Compared once the run's results are committed: a baseline decides nothing of the results,
and one that cannot be read (a wrong URL, a table in another layout) is an outcome with its
one-line error, never a lost run. Each baseline is read once and compared with each of the
run's models (or the one its ``model:`` names) by :func:`gagebench.report.comparison.compare`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gagebench.baselines import read_baseline
from gagebench.redact import redact_text
from gagebench.report.comparison import ComparisonResult, compare

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineOutcome:
    """One baseline of a run: its comparisons (one per run model), or why it failed."""

    name: str
    comparisons: tuple[ComparisonResult, ...] = ()
    error: str | None = None

    def manifest_entry(self) -> dict[str, Any]:
        """What ``manifest.json`` records (and the run card shows): per model, the paired
        gages, the median differences, the gages of one side only; or the error."""
        if self.error is not None:
            return {"status": "failed", "error": self.error}
        models: dict[str, Any] = {}
        for comp in self.comparisons:
            entry: dict[str, Any] = {}
            for row in comp.summary.to_dict("records"):
                entry[f"n_paired_{row['metric']}"] = int(row["n_paired"])
                entry[f"median_{row['metric']}_diff"] = _number(row["median_diff"])
            entry["gages_only_in_run"] = len(comp.only_a)
            entry["gages_only_in_baseline"] = len(comp.only_b)
            models[comp.model_a] = entry
        return {"status": "compared", "models": models}


def _number(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def compare_with_baselines(
    results: pd.DataFrame, baselines: Mapping[str, Mapping[str, Any]]
) -> list[BaselineOutcome]:
    """Each baseline of a run file against the run's results (one outcome per baseline).

    Parameters
    ----------
    results
        The run's results table (as committed).
    baselines
        The run file's ``baselines:``: ``{NAME: {url, storage_options, uncertainty, model}}``.

    Returns
    -------
    list[BaselineOutcome]
        In the order given; a baseline that cannot be read or compared has ``error`` (one
        line, secrets masked), logged once as a warning (with the traceback when it is a bug).
    """
    from gagebench.batches import is_bug
    from gagebench.storage.retry import error_summary

    models = list(dict.fromkeys(results["model"].astype(str)))
    out = []
    for name, spec in baselines.items():
        try:
            url = spec["url"]
            sources = list(url) if isinstance(url, list | tuple) else url
            base = read_baseline(
                str(name),
                sources,
                storage_options=dict(spec.get("storage_options") or {}),
                uncertainty=spec.get("uncertainty"),
            )
            chosen = [spec["model"]] if spec.get("model") else models
            comps = tuple(compare(results, baseline=base, models=[m]) for m in chosen)
        except Exception as exc:
            error = redact_text(error_summary(exc))
            log.warning(
                "the baseline %r could not be compared (%s); the run's results are committed "
                "without it",
                name,
                error,
                exc_info=is_bug(exc),
            )
            out.append(BaselineOutcome(str(name), error=error))
            continue
        out.append(BaselineOutcome(str(name), comps))
    return out


def manifest_entries(outcomes: list[BaselineOutcome]) -> dict[str, Any]:
    """The manifest's ``baselines`` (none: an empty mapping, recorded as no key)."""
    return {o.name: o.manifest_entry() for o in outcomes}


def warning_lines(outcomes: list[BaselineOutcome]) -> list[str]:
    """The manifest's warning of each baseline that failed."""
    return [
        f"the baseline {o.name!r} could not be compared: {o.error}"
        for o in outcomes
        if o.error is not None
    ]
