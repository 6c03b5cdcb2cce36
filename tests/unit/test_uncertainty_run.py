"""The uncertainty suite in config, the batch evaluator and a whole run (in-process Dask)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gagebench.config import load_config
from gagebench.errors import ConfigError
from gagebench.pipeline import evaluate_batch
from gagebench.results.settings import differences, result_settings
from gagebench.sources.stores import SourceSet
from gagebench.synth import synthesize
from gagebench.uncertainty_suite import COLUMNS, LONG_COLUMNS, PAIRED_COLUMNS, evaluate_models

STORE = "memory://gagebench-uncertainty-unit"


@pytest.fixture(scope="module")
def stores() -> dict:
    made = synthesize(STORE, n_gages=6, seed=5, start="1995-10-01", end="2009-09-30")
    return made.to_config_dict()


def _config(stores: dict, tmp: Path, **kw):
    over = {**stores, "output": str(tmp), "report": False, "progress": False}
    over.update(kw)
    return load_config(overrides=over)


def test_config_defaults_and_validation(stores: dict, tmp_path: Path) -> None:
    cfg = _config(stores, tmp_path)
    assert dict(cfg.uncertainty) == {
        "n_samples": 1000,
        "seed": None,
        "water_year_month": 10,
        "min_days": 100,
        "min_years": 10,
    }
    assert cfg.suites == ("standard", "dscore")
    for key, value in (
        ("uncertainty.n_samples", 1),
        ("uncertainty.water_year_month", 14),
        ("uncertainty.seed", -3),
        ("uncertainty.min_years", "ten"),
        ("uncertainty.nsamples", 10),
    ):
        with pytest.raises(ConfigError, match=r"gagebench\.uncertainty"):
            _config(stores, tmp_path, **{key: value})
    with pytest.raises(ConfigError, match="suites"):
        _config(stores, tmp_path, suites=["uncertain"])


def test_uncertainty_settings_decide_the_run_id_only_when_the_suite_runs(
    stores: dict, tmp_path: Path
) -> None:
    plain = _config(stores, tmp_path)
    plain_other = _config(stores, tmp_path, **{"uncertainty.n_samples": 50})
    assert plain.run_id == plain_other.run_id
    assert not differences(result_settings(plain), result_settings(plain_other))
    suites = ["standard", "uncertainty"]
    with_suite = _config(stores, tmp_path, suites=suites)
    other = _config(stores, tmp_path, suites=suites, **{"uncertainty.n_samples": 50})
    assert with_suite.run_id != other.run_id != plain.run_id
    diffs = differences(result_settings(with_suite), result_settings(other))
    assert diffs
    assert diffs[0].startswith("uncertainty")
    # a null seed is derived from the run id: the same run draws the same years
    assert with_suite.uncertainty_settings().seed == with_suite.uncertainty_settings().seed
    seeded = _config(stores, tmp_path, suites=suites, **{"uncertainty.seed": 9})
    assert seeded.uncertainty_settings().seed == 9


def test_evaluate_batch_matches_the_suite_on_the_batch(stores: dict, tmp_path: Path) -> None:
    cfg = _config(stores, tmp_path, suites=["standard", "uncertainty"])
    source = SourceSet.from_config(cfg)
    ids = source.observed_ids()[:4]
    settings = cfg.uncertainty_settings()
    suites = ("standard", "uncertainty")
    frame = evaluate_batch(source, ids, ("nwm", "nhm"), suites, "standard", 365, settings)
    assert {*COLUMNS, *PAIRED_COLUMNS} <= set(frame.columns)
    batch = source.read_batch(ids)
    direct = evaluate_models(batch.observed, batch.modeled, batch.dates, ids, settings, "standard")
    for model in ("nwm", "nhm"):
        got = frame[frame.model == model].reset_index(drop=True)
        np.testing.assert_array_equal(got["KGE_p05"], direct[model]["KGE_p05"])
    # one gage at a time: the same values (draws depend on seed and gage only)
    single = evaluate_batch(source, ids[2:3], ("nwm", "nhm"), suites, "standard", 365, settings)
    both = frame.set_index(["model", "site_no"]).loc[single.set_index(["model", "site_no"]).index]
    np.testing.assert_array_equal(both["NSE_seBoot"], single["NSE_seBoot"])
    np.testing.assert_array_equal(both["dKGE_p50"], single["dKGE_p50"])


def test_run_writes_uncertainty_csv(stores: dict, tmp_path: Path) -> None:
    from distributed import Client

    from gagebench.pipeline import run

    cfg = _config(
        stores,
        tmp_path,
        run_id="unc",
        suites=["standard", "uncertainty"],
        batch_size=4,
        **{"uncertainty.n_samples": 100, "uncertainty.seed": 3},
    )
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        result = run(cfg, client=c)
        run_dir = tmp_path / "unc"
        for model in ("nwm", "nhm"):
            long = pd.read_csv(run_dir / model / "uncertainty.csv", dtype={"site_no": str})
            assert list(long.columns) == list(LONG_COLUMNS)
            assert len(long) == 2 * 6
            assert long["GOF_stat"].tolist()[:2] == ["NSE", "KGE"]
            assert long["seJack"].notna().any()
        results = result.results
        assert {*COLUMNS, *PAIRED_COLUMNS} <= set(results.columns)
        nhm = results[results.model == "nhm"]
        assert nhm["dKGE_p50"].notna().any()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["inputs"]["uncertainty"]["seed_used"] == 3
        assert manifest["config"]["uncertainty"]["n_samples"] == 100
        # the report draws the suite's figures and the paired table
        from gagebench.report.comparison import compare
        from gagebench.report.html import write_report

        page = Path(write_report(str(run_dir), output=str(tmp_path / "report.html")))
        text = page.read_text()
        assert "Sampling uncertainty of KGE" in text
        assert "better beyond the 90 % interval" in text
        assert "cannot be drawn" not in text.split('id="uncertainty"')[1].split("</section>")[0]
        comparison = compare(results, models=["nwm", "nhm"])
        per_gage = comparison.per_gage.set_index("site_no")
        stored = nhm.set_index("site_no")
        # A = nwm (the run's first model), B = nhm: A - B = -(nhm - nwm)
        np.testing.assert_array_equal(
            per_gage["KGE_diff_p05"], -stored.loc[per_gage.index, "dKGE_p95"]
        )
        row = comparison.summary.set_index("metric").loc["KGE"]
        beyond = per_gage["KGE_beyond"]
        assert row["a_better_beyond_90"] == (beyond == "nwm").sum()
        assert row["b_better_beyond_90"] == (beyond == "nhm").sum()
        swapped = compare(results, models=["nhm", "nwm"]).per_gage.set_index("site_no")
        np.testing.assert_array_equal(swapped["KGE_diff_p50"], -per_gage["KGE_diff_p50"])
        # the same run id with another uncertainty setting is refused
        changed = _config(
            stores,
            tmp_path,
            run_id="unc",
            suites=["standard", "uncertainty"],
            batch_size=4,
            **{"uncertainty.n_samples": 200, "uncertainty.seed": 3},
        )
        with pytest.raises(ConfigError, match="uncertainty"):
            run(changed, client=c)


def test_a_started_run_refuses_to_resume_with_other_uncertainty_settings(
    stores: dict, tmp_path: Path
) -> None:
    from gagebench.pipeline import _check_started
    from gagebench.results.writer import RunSink

    suites = ["standard", "uncertainty"]
    first = _config(stores, tmp_path, run_id="r1", suites=suites, **{"uncertainty.seed": 1})
    sink = RunSink(first.run_url, first.options_for())
    _check_started(first, sink)  # records the settings of the parts to come
    _check_started(first, sink)  # the same settings resume
    other = _config(stores, tmp_path, run_id="r1", suites=suites, **{"uncertainty.seed": 2})
    with pytest.raises(ConfigError, match=r"was started with other settings: uncertainty"):
        _check_started(other, sink)
