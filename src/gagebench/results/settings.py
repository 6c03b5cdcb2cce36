"""The settings that decide a run's results, and what changed between two runs of one id.

A run folder holds one set of results. Running an id again with other stores, gages,
suites, mode, batch size, minimum length or uncertainty settings must not quietly print
the old results (a complete run) or mix them (a resumed one): :func:`differences` names
what changed so the run can be refused with a message that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gagebench.config import RESULT_KEYS

if TYPE_CHECKING:
    from gagebench.config import RunConfig


def result_settings(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The result-deciding settings of a config (or of a manifest's ``config``)."""
    plain = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    out: dict[str, Any] = {}
    for key in RESULT_KEYS:
        if key not in plain:
            continue
        value = plain[key]
        if key == "observed":
            value = _store(value)
        elif key == "models":
            value = {str(k): _store(v) for k, v in sorted((value or {}).items())}
        elif key == "suites":
            value = sorted(value or [])
        elif key == "uncertainty":
            if "uncertainty" not in (plain.get("suites") or []):
                continue  # its settings decide nothing when the suite does not run
            value = dict(value or {})
        out[key] = value
    return out


def _store(value: Any) -> Any:
    """How a store is read (URL, variable, units, crosswalk...), without access options.

    The default engine (``zarr``) is left out, so runs recorded before stores had an
    ``engine`` compare equal to the same run now; a list of URLs compares as a list.
    """
    if isinstance(value, Mapping):
        out = {k: v for k, v in value.items() if k != "storage_options"}
        if out.get("engine") == "zarr":
            del out["engine"]
        if isinstance(out.get("url"), tuple):
            out["url"] = list(out["url"])
        return out
    return value


def differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``key (before -> now)`` for each setting that differs (keys absent before: skipped)."""
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
