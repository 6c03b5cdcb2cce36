"""User-defined metrics in ``gagebench.evaluate``: ``@gagebench.metric``, pure Python and
numba functions against NumPy references computed here, the vectorized form, and the rows
a failing metric leaves (a status and a note, never a crash)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import gagebench
from gagebench.errors import InputError
from gagebench.metrics import user


@pytest.fixture(autouse=True)
def _registry():
    """Each test registers its own metrics; the registry is left as it was."""
    saved = dict(user.REGISTRY)
    yield
    user.REGISTRY.clear()
    user.REGISTRY.update(saved)


def _flows(n_gages: int = 4, n_days: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 5.0, (n_gages, n_days))
    sim = obs * rng.lognormal(0.0, 0.3, (n_gages, n_days))
    obs[0, rng.choice(n_days, 40, replace=False)] = np.nan
    sim[1, rng.choice(n_days, 25, replace=False)] = np.nan
    sim[2, 3] = np.inf  # an infinite flow is a missing day, as in the engine
    return obs, sim


def _paired(obs: np.ndarray, sim: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(obs[g]) & np.isfinite(sim[g])
    return obs[g][keep], sim[g][keep]


def test_python_and_numba_metrics_match_a_numpy_reference() -> None:
    @gagebench.metric("peak_ratio", higher_is_better=False, optimal=1.0)
    def peak_ratio(obs, sim):
        return float(np.max(sim) / np.max(obs))

    @gagebench.metric("rmse_nb", higher_is_better=False, optimal=0.0)
    @numba.njit
    def rmse_nb(obs, sim):
        total = 0.0
        for i in range(obs.size):
            total += (sim[i] - obs[i]) ** 2
        return np.sqrt(total / obs.size)

    obs, sim = _flows()
    got = gagebench.evaluate(
        obs, sim, suites="standard", metrics=["peak_ratio", "rmse_nb"], min_paired_days=30
    )
    cols = list(got.columns)
    assert cols[cols.index("peak_ratio") - 1] != "site_no"
    assert cols[-7:-5] == ["peak_ratio", "rmse_nb"]  # after the suites, before the row's tail
    for g in range(obs.shape[0]):
        o, s = _paired(obs, sim, g)
        assert got.loc[g, "peak_ratio"] == pytest.approx(s.max() / o.max(), rel=1e-12)
        assert got.loc[g, "rmse_nb"] == pytest.approx(np.sqrt(np.mean((s - o) ** 2)), rel=1e-12)
        assert got.loc[g, "status"] == "ok"
        assert got.loc[g, "n_days"] == o.size


def test_vectorized_metric_gets_the_batch_with_nan_where_unpaired() -> None:
    @gagebench.metric("mean_bias_v", vectorized=True)
    def mean_bias_v(obs, sim):
        assert obs.ndim == 2
        return np.nanmean(sim - obs, axis=1)

    obs, sim = _flows()
    got = gagebench.evaluate(obs, sim, suites="standard", metrics="mean_bias_v", min_paired_days=30)
    for g in range(obs.shape[0]):
        o, s = _paired(obs, sim, g)
        assert got.loc[g, "mean_bias_v"] == pytest.approx(np.mean(s - o), rel=1e-12)


def test_a_metric_that_raises_or_returns_no_number_is_a_row_status_not_a_crash() -> None:
    @gagebench.metric("picky")
    def picky(obs, sim):
        if obs.size < 390:
            raise ValueError("needs 390 days")
        return 1.0

    @gagebench.metric("vector_back")
    def vector_back(obs, sim):
        return sim - obs  # not one number

    @gagebench.metric("nan_back")
    def nan_back(obs, sim):
        return float("nan")

    obs, sim = _flows()
    got = gagebench.evaluate(
        obs, sim, suites="standard", metrics=["picky", "vector_back", "nan_back"],
        min_paired_days=30,
    )  # fmt: skip
    assert (got["status"] == "partial").all()
    assert np.isnan(got["vector_back"]).all()
    assert np.isnan(got["nan_back"]).all()
    # gage 0 lacks 40 days, gage 1 25: picky raised there and named itself
    assert np.isnan(got.loc[0, "picky"])
    assert np.isnan(got.loc[1, "picky"])
    assert "metric 'picky' raised ValueError: needs 390 days" in got.loc[0, "note"]
    assert got.loc[3, "picky"] == 1.0
    assert "picky" not in got.loc[3, "note"]
    assert "metric 'vector_back' returned ndarray, not one number" in got.loc[3, "note"]
    assert "metric 'nan_back' undefined (nan)" in got.loc[3, "note"]
    assert np.isfinite(got["NSE"]).all()  # the built-in metrics stand


def test_unscored_rows_get_nan_user_metrics_without_calling_them() -> None:
    calls = []

    @gagebench.metric("counted")
    def counted(obs, sim):
        calls.append(obs.size)
        return 0.0

    obs, sim = _flows()
    sim[3] = np.nan
    got = gagebench.evaluate(obs, sim, suites="standard", metrics=["counted"], min_paired_days=30)
    assert got.loc[3, "status"] == "no_simulation"
    assert np.isnan(got.loc[3, "counted"])
    assert len(calls) == 3


def test_unknown_or_colliding_names_list_the_registered_metrics() -> None:
    @gagebench.metric("mine")
    def mine(obs, sim):
        return 0.0

    obs, sim = _flows()
    # (other tests' run modules may have registered theirs in this process too)
    with pytest.raises(InputError, match=r"unknown user metric 'theirs'.*registered: \[.*'mine'"):
        gagebench.evaluate(obs, sim, metrics=["theirs"])
    gagebench.metric("KGE")(mine)
    with pytest.raises(InputError, match=r"'KGE' has the name of a built-in column.*'mine'"):
        gagebench.evaluate(obs, sim, metrics=["KGE"])
    with pytest.raises(InputError, match="column name"):
        gagebench.metric("not a name")


def test_import_paths_name_module_functions(tmp_path, monkeypatch) -> None:
    (tmp_path / "um_unit_mod.py").write_text(
        "import numpy as np\ndef spread(obs, sim):\n    return float(np.std(sim) - np.std(obs))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    obs, sim = _flows()
    got = gagebench.evaluate(
        obs, sim, suites="standard", metrics=["um_unit_mod:spread"], min_paired_days=30
    )
    o, s = _paired(obs, sim, 2)
    assert got.loc[2, "spread"] == pytest.approx(np.std(s) - np.std(o), rel=1e-12)
    with pytest.raises(InputError, match=r"cannot import the module 'um_missing_mod'.*PYTHONPATH"):
        gagebench.evaluate(obs, sim, metrics=["um_missing_mod:spread"])


def test_the_run_file_setting_is_validated_and_kept_out_of_default_run_ids() -> None:
    from gagebench.config import load_config, result_settings
    from gagebench.errors import ConfigError

    plain = load_config(output="/tmp/x")
    assert plain.metrics == ()
    assert "metrics" not in result_settings(plain)
    with_metric = load_config(output="/tmp/x", metrics=["pkg.mod:fn"])
    assert with_metric.metrics == ("pkg.mod:fn",)
    assert with_metric.run_id != plain.run_id
    with pytest.raises(ConfigError, match=r"gagebench.metrics.*package.module:function"):
        load_config(output="/tmp/x", metrics=["pkg.mod.fn"])


def test_results_schema_and_csv_hold_user_columns() -> None:
    from gagebench.results.layout import Plan, results_schema

    schema = results_schema(("standard",), ("peak",))
    assert schema.field("peak").type == "double"
    assert schema.names.index("peak") == schema.names.index("n_days") - 1
    plan = Plan("r", (("a",),), ("nwm",), ("standard",), "standard")
    assert "metrics" not in plan.to_json()  # plans of runs without user metrics unchanged
    with_metrics = Plan("r", (("a",),), ("nwm",), ("standard",), "standard", metrics=("peak",))
    assert Plan.from_json(with_metrics.to_json()) == with_metrics
    assert with_metrics.differences(plan) == ["metrics (('peak',) before, () now)"]


def test_compare_ranks_a_user_metric_by_its_direction() -> None:
    @gagebench.metric("abs_err_c", higher_is_better=False, optimal=0.0)
    def abs_err_c(obs, sim):
        return float(np.mean(np.abs(sim - obs)))

    obs, _ = _flows(n_gages=6)
    rng = np.random.default_rng(7)
    close = obs * rng.lognormal(0.0, 0.05, obs.shape)
    far = obs * rng.lognormal(0.0, 0.6, obs.shape)
    far[5] = obs[5]  # gage 5: "far" is perfect there
    results = gagebench.evaluate(
        obs, {"close": close, "far": far}, suites="standard", metrics=["abs_err_c"],
        min_paired_days=30,
    )  # fmt: skip
    got = gagebench.compare(results, metrics=["abs_err_c"])
    row = got.summary.iloc[0]
    a = results[results["model"] == "close"]["abs_err_c"].to_numpy()
    b = results[results["model"] == "far"]["abs_err_c"].to_numpy()
    assert row["share_a_better"] == pytest.approx(np.mean(a < b))  # smaller is better
    assert row["share_a_better"] == pytest.approx(5 / 6)
    assert row["median_diff"] == pytest.approx(np.median(a - b))

    @gagebench.metric("unranked")
    def unranked(obs, sim):
        return 0.0

    ranked = gagebench.evaluate(obs, {"x": close, "y": far}, suites="standard",
                                metrics=["unranked"], min_paired_days=30)  # fmt: skip
    with pytest.raises(InputError, match=r"higher_is_better=True or False"):
        gagebench.compare(ranked, metrics=["unranked"])


def test_run_file_metric_names_may_not_collide() -> None:
    from gagebench.errors import ConfigError
    from gagebench.pipeline import _check_metric_names

    _check_metric_names(["a.b:peak", "c:spread"])
    with pytest.raises(ConfigError, match=r"'a\.b:KGE' would be the column 'KGE'"):
        _check_metric_names(["a.b:KGE"])
    with pytest.raises(ConfigError, match=r"'c:peak' would be the column 'peak'"):
        _check_metric_names(["a.b:peak", "c:peak"])


@pytest.mark.parametrize("by", ["season", "month", "water_year"])
def test_a_user_metric_in_a_breakdown_equals_a_pandas_groupby(by: str) -> None:
    """``by`` with ``metrics``: the user metric over each group's paired days, as a pandas
    groupby of the same days computes it; rows below min_paired_days get no value."""
    import pandas as pd

    @gagebench.metric("mean_abs_err_by")
    def mean_abs_err_by(obs, sim):
        return float(np.mean(np.abs(sim - obs)))

    obs, sim = _flows(n_gages=3, n_days=900)
    time = pd.date_range("2001-08-15", periods=900, freq="D")
    got = gagebench.evaluate(
        obs, sim, time=time, gages=["a", "b", "c"], suites="standard", by=by,
        metrics=["mean_abs_err_by"], min_paired_days=20,
    )  # fmt: skip
    cols = list(got.columns)
    assert cols.index("mean_abs_err_by") == cols.index("n_days") - 1
    keys: dict[str, pd.Series] = {
        "season": pd.Series((time.month % 12) // 3, index=time).map(
            dict(enumerate(("DJF", "MAM", "JJA", "SON")))
        ),
        "month": pd.Series(time.month, index=time),
        "water_year": pd.Series(time.year + (time.month >= 10), index=time),
    }
    key = keys[by]
    for g, site in enumerate("abc"):
        frame = pd.DataFrame({"o": obs[g], "s": sim[g], "k": key.to_numpy()})
        frame = frame[np.isfinite(frame["o"]) & np.isfinite(frame["s"])]
        for label, days in frame.groupby("k"):
            row = got[(got["site_no"] == site) & (got[by] == label)].iloc[0]
            if len(days) < 20:
                assert row["status"] == "too_few_days"
                assert np.isnan(row["mean_abs_err_by"])
                continue
            want = float(np.mean(np.abs(days["s"] - days["o"])))
            assert row["mean_abs_err_by"] == pytest.approx(want, rel=1e-12)
