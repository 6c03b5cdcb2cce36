"""The run card (``RunResult._repr_html_``) of a run with published baselines: the median
difference against each, a failed baseline's error escaped, nothing added without them."""

from __future__ import annotations

import pandas as pd

from gagebench.pipeline import RunResult

MANIFEST = {
    "run_id": "r",
    "counts": {"mymodel": {"ok": 3}},
    "medians": {"mymodel": {"NSE": 0.1, "KGE": 0.2}},
}


def test_the_card_shows_each_baselines_median_difference_and_escapes_errors() -> None:
    manifest = {
        **MANIFEST,
        "baselines": {
            "nwm": {
                "status": "compared",
                "models": {"mymodel": {"median_KGE_diff": -0.1234, "median_NSE_diff": 0.05}},
            },
            "broken": {"status": "failed", "error": "cannot read <b>x</b>"},
        },
    }
    result = RunResult("/tmp/run", manifest, pd.DataFrame())
    card = result._repr_html_()
    assert "against published baselines" in card
    assert "<td>-0.123</td>" in card
    assert "<td>+0.050</td>" in card
    assert "cannot read &lt;b&gt;x&lt;/b&gt;" in card
    assert "<b>x</b>" not in card
    table = result.baselines()
    assert list(table["baseline"]) == ["nwm", "broken"]


def test_a_card_without_baselines_is_unchanged() -> None:
    card = RunResult("/tmp/run", MANIFEST, pd.DataFrame())._repr_html_()
    assert "baseline" not in card
    assert RunResult("/tmp/run", MANIFEST, pd.DataFrame()).baselines().empty
