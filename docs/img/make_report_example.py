"""Regenerate docs/img/report-example.png (the README's report figure).

Synthetic flows at 1000 real gage locations, metrics by the real engine, then the KGE
CDF (both models) and the KGE map of one model, as in the report, composed side by side.
Run from the repository root:
``.venv/bin/python docs/img/make_report_example.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from gagebench.report.plots import plot_cdf, plot_map  # noqa: E402
from report_fixtures import synthetic_results  # noqa: E402


def main() -> None:
    results = synthetic_results(1000, models=("nwm", "nhm"), seed=5)
    fig = Figure(figsize=(13.0, 4.8), dpi=80, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.0, 1.5])
    plot_cdf(results, "KGE", figure=left)
    plot_map(results, "KGE", models=["nwm"], figure=right)
    fig.savefig(ROOT / "docs" / "img" / "report-example.png", dpi=80, facecolor="white")


if __name__ == "__main__":
    main()
