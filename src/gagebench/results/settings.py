"""The settings that decide a run's results, and what changed between two runs of one id.

A run folder holds one set of results. Running an id again with other stores, gages,
suites, mode, batch size, minimum length or uncertainty settings must not quietly print
the old results (a complete run) or mix them (a resumed one): :func:`differences` names
what changed so the run can be refused with a message that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gagebench.config import RESULT_KEYS, result_settings

__all__ = ["differences", "refusal", "result_settings"]

# ``result_settings`` is :func:`gagebench.config.result_settings`: the one definition of
# the settings that decide the results (marked in gagebench.schema), which the default
# run id hashes too. A RunConfig is compared as its manifest records it (secrets masked).


def differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``key (before -> now)`` for each setting that differs (keys absent before: skipped).

    Both sides are put in :func:`result_settings`' canonical form first, so what an older
    version recorded (suites sorted, no store engine) compares equal to the same settings.
    """
    saved, now = result_settings(saved), result_settings(now)
    diffs = []
    for key in RESULT_KEYS:
        if key in saved and key in now and saved[key] != now[key]:
            diffs.append(f"{key} ({_short(saved[key])} before, {_short(now[key])} now)")
    return diffs


def _short(value: Any) -> str:
    if isinstance(value, Mapping) and "url" in value:
        extra = {k: v for k, v in value.items() if k != "url" and v not in (None, "streamflow")}
        return str(value["url"]) + (f" {_short(extra)}" if extra else "")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


def refusal(run_id: str, url: str, diffs: list[str], complete: bool) -> str:
    """The one-line message of a run refused because its settings changed."""
    state = "is complete" if complete else "was started"
    return (
        f"run {run_id} at {url} {state} with other settings: {'; '.join(diffs)}. "
        "Use --force to recompute it with the new settings, or leave run_id unset (or "
        "choose a new one) to keep both"
    )
