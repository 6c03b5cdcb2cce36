"""The end-of-run summary the CLI prints: gages by status, medians per model, and where.

It formats a finished run's :class:`~gagebench.pipeline.RunResult` (its manifest, status
counts and medians), so it sits above the pipeline, beside the CLI that prints it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gagebench.progress import rate_text

if TYPE_CHECKING:
    from gagebench.pipeline import RunResult


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
    with pd.option_context("display.float_format", "{:.3f}".format):
        lines += ["median over evaluated gages:", medians.to_string(), ""]
    timings = manifest.get("timings", {})
    if timings.get("computed_gages") and timings.get("compute_s"):
        rate = rate_text(timings["computed_gages"] / timings["compute_s"])
        lines.append(
            f"computed {timings['computed_gages']} gages in {timings['compute_s']:.1f} s "
            f"({rate}); total {timings['total_s']:.1f} s"
        )
    lines.append(f"results: {result.run_url}/  ({', '.join(manifest.get('outputs', []))})")
    report_url = result.report_url()
    if report_url:
        lines.append(f"report:  {report_url}")
    return "\n".join(lines)
