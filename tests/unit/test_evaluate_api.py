"""The public ``gagebench.evaluate`` door: input kinds, ids, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gagebench
from gagebench.errors import InputError


def test_real_sample_gage_runs_both_models() -> None:
    from gagebench.sample import load_sample

    frame = load_sample()
    table = gagebench.evaluate(
        frame["obs"], {"nwm": frame["nwm"], "nhm": frame["nhm"]}, gages=["USGS-01104200"]
    )
    assert list(table["model"]) == ["nwm", "nhm"]
    assert (table["status"] == "ok").all()
    assert table["n_days"].tolist() == [12145, 12145]
    # the sum identities of the D-score hold on real data
    for _, row in table.iterrows():
        assert row["e_bias"] + row["e_dist"] + row["e_seq"] == pytest.approx(row["mse"])
        seasons = row["winter"] + row["spring"] + row["summer"] + row["fall"]
        assert seasons == pytest.approx(row["mse"])


def test_dataframe_columns_are_gages() -> None:
    idx = pd.date_range("2000-01-01", periods=50, freq="D")
    rng = np.random.default_rng(1)
    obs = pd.DataFrame(rng.gamma(2, 3, (50, 3)), index=idx, columns=["a", "b", "c"])
    sim = obs * 1.1
    table = gagebench.evaluate(obs, sim, min_paired_days=30)
    assert table["site_no"].tolist() == ["a", "b", "c"]
    assert table["pbias"].to_numpy() == pytest.approx([10.0, 10.0, 10.0])


def test_unknown_suite_and_mode() -> None:
    o = np.arange(1.0, 5.0)
    with pytest.raises(InputError, match=r"unknown suite\(s\) \['nse'\]: choose among"):
        gagebench.evaluate(o, o, suites=("nse",))
    with pytest.raises(InputError, match=r"unknown suite\(s\) \['nse'\]"):
        gagebench.evaluate(o, o, suites="nse")
    with pytest.raises(InputError, match="unknown mode 'fast': choose one of"):
        gagebench.evaluate(o, o, mode="fast", suites=("standard",))


def test_one_suite_as_a_string() -> None:
    o = np.arange(1.0, 401.0)
    table = gagebench.evaluate(o, o * 1.1, suites="standard")
    assert "NSE" in table
    assert "mse" not in table
    assert table["pbias"].iloc[0] == pytest.approx(10.0)


def test_short_series_are_too_few_days_not_scored() -> None:
    """Two paired days once gave NSE -1448 counted in medians: now no values, a status."""
    idx = pd.date_range("2000-01-01", periods=400, freq="D")
    obs = pd.DataFrame({"long": np.linspace(1, 5, 400), "short": np.nan}, index=idx)
    obs.iloc[:2, 1] = [1.0, 2.0]
    sim = obs * 1.2
    table = gagebench.evaluate(obs, sim).set_index("site_no")
    assert table.loc["long", "status"] == "ok"
    assert table.loc["short", "status"] == "too_few_days"
    assert np.isnan(table.loc["short", "NSE"])
    assert np.isnan(table.loc["short", "mse"])
    assert table.loc["short", "n_days"] == 2
    assert "fewer than min_paired_days=365" in table.loc["short", "note"]
    lower = gagebench.evaluate(obs, sim, min_paired_days=2).set_index("site_no")
    assert lower.loc["short", "status"] in ("ok", "partial")
    with pytest.raises(InputError, match="min_days"):
        gagebench.evaluate(obs, sim, min_paired_days=1)


def test_negative_and_infinite_flows_get_a_note() -> None:
    idx = pd.date_range("2000-01-01", periods=400, freq="D")
    base = np.linspace(1, 5, 400)
    obs = pd.DataFrame({"neg": base, "inf": base, "clean": base}, index=idx)
    sim = obs * 1.1
    obs.iloc[5, 0] = -0.5
    sim.iloc[7, 1] = np.inf
    table = gagebench.evaluate(obs, sim).set_index("site_no")
    assert "negative observed flows (kept as data)" in table.loc["neg", "note"]
    assert "infinite modeled flows (treated as missing)" in table.loc["inf", "note"]
    assert table.loc["inf", "n_days"] == 399  # the infinite day is dropped
    assert np.isfinite(table.loc["inf", ["NSE", "KGE", "mse"]].astype(float)).all()
    assert table.loc["clean", "note"] == ""


def test_bad_inputs_name_the_argument() -> None:
    o = np.arange(1.0, 5.0)
    with pytest.raises(InputError, match="modeled"):
        gagebench.evaluate(o, o[:3], suites=("standard",))
    with pytest.raises(InputError, match="observed"):
        gagebench.evaluate(np.array(["a", "b"], dtype=object), o[:2], suites=("standard",))
    with pytest.raises(InputError, match="observed is empty"):
        gagebench.evaluate(np.empty((1, 0)), np.empty((1, 0)), suites=("standard",))
    with pytest.raises(InputError, match="time="):
        gagebench.evaluate(o, o)


def test_evaluate_stays_the_function_after_submodule_imports() -> None:
    import subprocess
    import sys

    code = (
        "import gagebench.pipeline, gagebench.results.writer, gagebench, sys;"
        "sys.exit(0 if callable(gagebench.evaluate) else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
