"""The end-of-run summary the CLI prints: gages by status, medians per model, and where.

It formats a finished run's :class:`~gagebench.pipeline.RunResult` (its manifest, status
counts and medians), so it sits above the pipeline, beside the CLI that prints it. A model
with no evaluated gage gets a line saying why (its gages by status and their most common
note) instead of empty medians; :func:`nothing_evaluated` is the CLI's reason to exit 1
when no gage of any model was evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gagebench.progress import rate_text

if TYPE_CHECKING:
    import pandas as pd

    from gagebench.pipeline import RunResult

#: Statuses of a gage that was evaluated (its values are in the medians).
EVALUATED = ("ok", "partial")


def beats_benchmark(results: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Per model, the share of gages whose model beats its day-of-year benchmark
    (``KGE_skill > 0``, the benchmark suite) and the number of gages with a skill; empty
    when the suite did not run. Shown by the end-of-run summary and the report.

    Parameters
    ----------
    results
        A results table (``results.parquet``, ``RunResult.results`` or
        :func:`gagebench.evaluate`'s) with the columns ``model`` and ``KGE_skill``.

    Returns
    -------
    dict
        ``{model: (share, n)}``: the share of the ``n`` gages with a ``KGE_skill`` value
        whose skill is above 0 (NaN when ``n`` is 0); gages without a skill are left out.
    """
    import pandas as pd

    if "KGE_skill" not in results.columns:
        return {}
    shares = {}
    for model, part in results.groupby("model", sort=False):
        skill = pd.to_numeric(part["KGE_skill"], errors="coerce").dropna()
        shares[str(model)] = (float((skill > 0).mean()) if len(skill) else float("nan"), len(skill))
    return shares


def format_summary(result: RunResult) -> str:
    """The end-of-run table: gages by status and median NSE/KGE per model, and where."""
    import pandas as pd

    manifest = result.manifest
    lines = []
    if result.already_complete:
        lines.append(f"run {manifest['run_id']} was already complete (use --force to redo it)")
    counts = result.status_counts()
    counts.loc["total"] = counts.sum()
    lines += ["", "gages by status:", counts.to_string(), ""]
    medians = result.medians()
    idle = {model: why for model in medians.index if (why := _not_evaluated(result, model))}
    shown = medians.drop(index=list(idle)).astype(float)
    if not shown.empty:
        with pd.option_context("display.float_format", "{:.3f}".format):
            lines += ["median over evaluated gages:", shown.to_string(na_rep="n/a")]
    lines += [f"{model}: {why}" for model, why in idle.items()]
    if beats := beats_benchmark(result.results):
        lines += ["beats its day-of-year benchmark (KGE_skill > 0):"]
        lines += [
            f"  {model}: {share:.0%} of {n} gages" if n else f"  {model}: no gage with a skill"
            for model, (share, n) in beats.items()
        ]
    lines += _baseline_lines(manifest)
    lines.append("")
    timings = manifest.get("timings", {})
    if timings.get("computed_gages") and timings.get("compute_s"):
        rate = rate_text(timings["computed_gages"] / timings["compute_s"])
        line = (
            f"computed {timings['computed_gages']} gages in {timings['compute_s']:.1f} s "
            f"({rate}); total {timings['total_s']:.1f} s"
        )
        if timings.get("report_s") is not None:
            line += f", then {timings['report_s']:.1f} s drawing the report"
        lines.append(line)
    lines.append(f"results: {result.run_url}/  ({', '.join(manifest.get('outputs', []))})")
    report_url = result.report_url()
    if report_url:
        lines.append(f"report:  {report_url}")
    return "\n".join(lines)


def _baseline_lines(manifest: dict[str, Any]) -> list[str]:
    """One line per published baseline: the median differences, or why it failed."""
    lines = []
    for name, entry in (manifest.get("baselines") or {}).items():
        if entry.get("status") != "compared":
            lines.append(f"baseline {name}: FAILED, not compared: {entry.get('error')}")
            continue
        for model, values in (entry.get("models") or {}).items():
            diffs = ", ".join(
                f"{m} {values[f'median_{m}_diff']:+.3f}"
                for m in ("KGE", "NSE")
                if values.get(f"median_{m}_diff") is not None
            )
            lines.append(
                f"baseline {name}: {model} − {name} median per-gage difference: {diffs or 'n/a'} "
                f"({values.get('n_paired_KGE', values.get('n_paired_NSE', 0))} gages paired, "
                f"{values.get('gages_only_in_run', 0)} only in the run, "
                f"{values.get('gages_only_in_baseline', 0)} only in the baseline)"
            )
    return lines


def _not_evaluated(result: RunResult, model: str) -> str | None:
    """Why no gage of ``model`` was evaluated, or None when some were."""
    counts = {str(k): int(v) for k, v in result.manifest.get("counts", {}).get(model, {}).items()}
    if not counts or any(counts.get(status, 0) for status in EVALUATED):
        return None
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=_biggest))
    note = _common_note(result.results, model)
    return f"no gage evaluated ({by_status})" + (f"; most common note: {note}" if note else "")


def _biggest(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _common_note(results: pd.DataFrame, model: str | None) -> str | None:
    """The most common note among ``model``'s rows (None: every row), with how many."""
    if results.empty or "note" not in results.columns or "model" not in results.columns:
        return None
    rows = results if model is None else results[results["model"].astype(str) == model]
    notes = rows["note"].dropna().astype(str)
    notes = notes[notes != ""]
    if notes.empty:
        return None
    counts = notes.value_counts()
    return f"{counts.index[0]!r} ({int(counts.iloc[0])} of {int(notes.size)} rows)"


def nothing_evaluated(result: RunResult) -> str | None:
    """Why no gage of any model was evaluated (the CLI exits 1), or None when some were:
    the rows by status, their most common note and what the stores' check warned about."""
    counts: dict[str, Any] = result.manifest.get("counts", {})
    if not counts or any(_not_evaluated(result, str(m)) is None for m in counts):
        return None
    total: dict[str, int] = {}
    for by_status in counts.values():
        for status, n in by_status.items():
            total[str(status)] = total.get(str(status), 0) + int(n)
    rows = sum(total.values())
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(total.items(), key=_biggest))
    text = f"{rows} rows of {len(counts)} model(s): {by_status}"
    note = _common_note(result.results, None)
    if note:
        text += f"; most common note: {note}"
    warnings = [str(w) for w in result.manifest.get("warnings", [])][:3]
    return text + "".join(f"; {w}" for w in warnings)
