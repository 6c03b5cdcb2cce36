"""The uncertainty suite (gumboot ``bootjack()``): reference equality, gumboot's own
expectation, and the properties of the resampling plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _bootjack_reference import bootjack, valid_years

import gagebench
from gagebench import uncertainty_suite as unc
from gagebench.errors import InputError

#: gumboot's sample data, kept in the repository (tests/data/README.md: source, license).
FLOWS = Path(__file__).resolve().parents[1] / "data" / "flows_1030500.csv"


@pytest.fixture(scope="module")
def flows() -> pd.DataFrame:
    """gumboot's sample data: gage 1030500, 1989-10-01..2008-09-30 (6940 days)."""
    frame = pd.read_csv(FLOWS, parse_dates=["date"])
    assert len(frame) == 6940
    assert list(frame.columns) == ["date", "obs", "sim"]
    return frame


def _engine(frame: pd.DataFrame, settings: unc.UncertaintySettings, mode: str) -> pd.DataFrame:
    obs = frame["obs"].to_numpy()[None]
    sim = {"m": frame["sim"].to_numpy()[None]}
    return unc.evaluate_models(obs, sim, frame["date"].to_numpy(), ["1030500"], settings, mode)["m"]


def _synthetic(seed: int, n_years: int = 14, gaps: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1990-01-01", periods=int(365.25 * n_years), freq="D")
    doy = dates.day_of_year.to_numpy()
    q = np.exp(np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.5, dates.size)) * 10
    s = q * rng.uniform(0.6, 1.4) * np.exp(rng.normal(0, 0.4, q.size))
    if gaps:
        q[rng.random(q.size) < 0.05] = np.nan
        q[400:700] = np.nan  # one water year is not valid
        s[rng.random(s.size) < 0.01] = -1.0  # negative sim days are not valid
        q[q < 2.0] = 0.0  # zero flows are valid
    return pd.DataFrame({"date": dates, "obs": q, "sim": s})


def _case(flows: pd.DataFrame, case: str) -> pd.DataFrame:
    if case == "gumboot":
        return flows
    frame = _synthetic(3)
    if case == "large_flows":  # big flows, small spread: the sums must keep their precision
        frame = frame.assign(obs=frame["obs"] + 5e4, sim=frame["sim"] + 5e4)
    if case == "missing_year":  # no row at all for water year 1996: the axis jumps
        wy = frame["date"].dt.year + (frame["date"].dt.month >= 10)
        frame = frame[wy != 1996].reset_index(drop=True)
    return frame


@pytest.mark.parametrize("mode", ["hytest", "standard"])
@pytest.mark.parametrize("case", ["gumboot", "synthetic", "large_flows", "missing_year"])
def test_engine_equals_series_reference(flows: pd.DataFrame, mode: str, case: str) -> None:
    frame = _case(flows, case)
    years = valid_years(frame)
    rng = np.random.default_rng(11)
    n_slots = pd.unique(frame["date"].dt.year + (frame["date"].dt.month >= 10)).size
    table = np.full((n_slots, 200), unc.PAD)
    table[: years.size] = rng.choice(years, size=(years.size, 200))
    expected = bootjack(frame, table, mode)
    got = _engine(frame, unc.UncertaintySettings(n_samples=200, boot_years=table), mode)
    for stat, fields in expected.items():
        for name, value in fields.items():
            assert got[f"{stat}_{name}"].iloc[0] == pytest.approx(value, abs=1e-9, rel=1e-9), (
                stat,
                name,
            )
    assert got["n_years_valid"].iloc[0] == years.size


def test_gumboot_expectation_on_its_sample_data(flows: pd.DataFrame) -> None:
    """gumboot's own test: NSE seJack of gage 1030500 is in [0.0484, 0.0486]."""
    got = _engine(flows, unc.UncertaintySettings(seed=1), "hytest")
    assert 0.0484 <= got["NSE_seJack"].iloc[0] <= 0.0486
    assert got["n_years_valid"].iloc[0] == 19
    assert got["status"].iloc[0] == "ok"


def test_score_is_the_engine_kge_on_the_same_days(flows: pd.DataFrame) -> None:
    """KGE is the same formula in both suites; standard NSE is the textbook NSE."""
    got = _engine(flows, unc.UncertaintySettings(seed=1), "standard")
    std = gagebench.evaluate(
        flows.set_index("date")["obs"], flows.set_index("date")["sim"], suites="standard"
    )
    assert got["KGE_score"].iloc[0] == pytest.approx(std["KGE"].iloc[0], rel=1e-12)
    assert got["NSE_score"].iloc[0] == pytest.approx(std["NSE"].iloc[0], rel=1e-12)


def test_perfect_model_has_zero_spread(flows: pd.DataFrame) -> None:
    frame = flows.assign(sim=flows["obs"])
    for mode in ("hytest", "standard"):
        got = _engine(frame, unc.UncertaintySettings(seed=5, n_samples=300), mode)
        for stat in ("NSE", "KGE"):
            assert got[f"{stat}_score"].iloc[0] == pytest.approx(1.0, abs=1e-12)
            for name in ("seJack", "seBoot", "biasJack", "biasBoot", "seJab"):
                assert got[f"{stat}_{name}"].iloc[0] == pytest.approx(0.0, abs=1e-9)
            for name in ("p05", "p50", "p95"):
                assert got[f"{stat}_{name}"].iloc[0] == pytest.approx(1.0, abs=1e-12)


def test_same_seed_same_results_other_seed_other_draws(flows: pd.DataFrame) -> None:
    a = _engine(flows, unc.UncertaintySettings(seed=7, n_samples=300), "hytest")
    b = _engine(flows, unc.UncertaintySettings(seed=7, n_samples=300), "hytest")
    c = _engine(flows, unc.UncertaintySettings(seed=8, n_samples=300), "hytest")
    pd.testing.assert_frame_equal(a, b)
    assert a["KGE_seBoot"].iloc[0] != c["KGE_seBoot"].iloc[0]
    # jackknife and score do not depend on the draws
    assert a["NSE_seJack"].iloc[0] == c["NSE_seJack"].iloc[0]


def test_results_do_not_depend_on_batching() -> None:
    frames = [_synthetic(s) for s in range(6)]
    obs = np.stack([f["obs"].to_numpy() for f in frames])
    sim = np.stack([f["sim"].to_numpy() for f in frames])
    dates = frames[0]["date"].to_numpy()
    ids = [f"0100{i}000" for i in range(6)]
    settings = unc.UncertaintySettings(seed=3, n_samples=150)
    whole = unc.evaluate_models(obs, {"m": sim}, dates, ids, settings, "standard")["m"]
    parts = [
        unc.evaluate_models(obs[sl], {"m": sim[sl]}, dates, ids[sl], settings, "standard")["m"]
        for sl in (slice(0, 1), slice(1, 4), slice(4, 6))
    ]
    pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))
    reversed_ = unc.evaluate_models(
        obs[::-1], {"m": sim[::-1]}, dates, ids[::-1], settings, "standard"
    )
    pd.testing.assert_frame_equal(whole, reversed_["m"].iloc[::-1].reset_index(drop=True))


def test_models_share_draws_and_paired_columns(flows: pd.DataFrame) -> None:
    obs = flows["obs"].to_numpy()[None]
    sims = {"a": flows["sim"].to_numpy()[None], "b": (flows["sim"].to_numpy() * 0.8)[None]}
    settings = unc.UncertaintySettings(seed=2, n_samples=400)
    dates = flows["date"].to_numpy()
    table = unc.evaluate_models(obs, sims, dates, ["1030500"], settings, "hytest")
    # the same draws: the paired difference equals the difference of the model runs' samples
    first = unc.evaluate_model(obs, sims["a"], dates, ["1030500"], settings, "hytest")
    second = unc.evaluate_model(obs, sims["b"], dates, ["1030500"], settings, "hytest")
    assert first.samples[0] is not None
    assert second.samples[0] is not None
    diff = np.sort(second.samples[0][1] - first.samples[0][1])
    row = table["b"].iloc[0]
    assert row["dKGE_p05"] == diff[20]
    assert row["dKGE_p95"] == diff[380]
    assert row["KGE_first_wins"] == pytest.approx(np.mean(diff < 0))
    assert np.isnan(table["a"]["dKGE_p50"].iloc[0])
    # a model compared with itself: zero differences
    same = unc.evaluate_models(
        obs, {"a": sims["a"], "c": sims["a"]}, dates, ["1"], settings, "hytest"
    )
    assert same["c"]["dNSE_p05"].iloc[0] == 0.0
    assert same["c"]["dNSE_p95"].iloc[0] == 0.0


def test_too_few_valid_years_is_nan_with_status(flows: pd.DataFrame) -> None:
    short = flows[flows["date"] < "1998-10-01"]  # 9 water years
    got = _engine(short, unc.UncertaintySettings(seed=1), "hytest")
    assert got["status"].iloc[0] == unc.TOO_FEW_YEARS
    assert "9 valid water years" in got["note"].iloc[0]
    assert got[[c for c in unc.COLUMNS if c != "n_years_valid"]].isna().all(axis=None)
    assert got["n_years_valid"].iloc[0] == 9
    ok = _engine(short, unc.UncertaintySettings(seed=1, min_years=9), "hytest")
    assert ok["status"].iloc[0] == "ok"
    assert np.isfinite(ok["KGE_seJab"].iloc[0])


def test_boot_years_file_round_trip(flows: pd.DataFrame, tmp_path: Path) -> None:
    settings = unc.UncertaintySettings(seed=4, n_samples=50)
    table = unc.boot_year_table(flows["obs"], flows["sim"], flows["date"], "1030500", settings)
    assert table.shape == (19, 50)
    path = tmp_path / "boot.csv"
    unc.write_boot_years(path, table)
    assert path.read_text().splitlines()[0].count(",") == 49  # no header, no index
    read = unc.read_boot_years(path)
    np.testing.assert_array_equal(read, table)
    drawn = _engine(flows, settings, "hytest")
    given = _engine(flows, unc.UncertaintySettings(n_samples=50, boot_years=read), "hytest")
    pd.testing.assert_frame_equal(drawn, given)


def test_settings_are_validated() -> None:
    with pytest.raises(InputError, match="n_samples"):
        unc.UncertaintySettings(n_samples=1)
    with pytest.raises(InputError, match="water_year_month"):
        unc.UncertaintySettings(water_year_month=0)
    with pytest.raises(InputError, match="seed"):
        unc.UncertaintySettings(seed=-1)
    with pytest.raises(InputError, match="boot_years"):
        unc.read_boot_years(np.zeros(3))


def test_long_table_shape(flows: pd.DataFrame) -> None:
    got = _engine(flows, unc.UncertaintySettings(seed=1, n_samples=100), "hytest")
    got.insert(0, "site_no", "USGS-01030500")
    long = unc.long_table(got)
    assert list(long.columns) == list(unc.LONG_COLUMNS)
    assert long["GOF_stat"].tolist() == ["NSE", "KGE"]
    assert long["seJack"].iloc[0] == got["NSE_seJack"].iloc[0]


def test_evaluate_api_with_two_models(flows: pd.DataFrame) -> None:
    obs = flows.set_index("date")["obs"]
    sims = {"a": flows.set_index("date")["sim"], "b": flows.set_index("date")["sim"] * 1.3}
    table = gagebench.evaluate(
        obs, sims, suites=("standard", "uncertainty"), mode="hytest", n_samples=200, seed=3
    )
    assert list(table["model"]) == ["a", "b"]
    assert {"NSE", "KGE_p05", "dKGE_p95", "n_years_valid"} <= set(table.columns)
    again = gagebench.evaluate(
        obs, sims, suites="uncertainty", mode="hytest", n_samples=200, seed=3
    )
    assert table["KGE_p05"].tolist() == again["KGE_p05"].tolist()
    assert table["dKGE_p50"].notna().tolist() == [False, True]
    short = gagebench.evaluate(
        obs[:3000], sims["a"][:3000], suites=("standard", "uncertainty"), seed=1
    )
    assert short["status"].iloc[0] == "partial"
    assert "min_years" in short["note"].iloc[0]
    assert np.isfinite(short["NSE"].iloc[0])
    alone = gagebench.evaluate(obs[:3000], sims["a"][:3000], suites="uncertainty", seed=1)
    assert alone["status"].iloc[0] == unc.TOO_FEW_YEARS
    with pytest.raises(InputError, match="dates"):
        gagebench.evaluate(obs.to_numpy(), sims["a"].to_numpy(), suites="uncertainty")
    with pytest.raises(InputError, match="unknown uncertainty option"):
        gagebench.evaluate(obs, sims["a"], suites="uncertainty", uncertainty={"minyears": 3})


def test_cli_boot_years_writes_gumboots_layout(
    flows: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gagebench.cli import main

    out = tmp_path / "years.csv"
    code = main(
        ["boot-years", str(FLOWS), "--site", "01030500", "--seed", "4", "--n-samples", "30",
         "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out)
    table = unc.read_boot_years(out)
    assert table.shape == (19, 30)
    assert set(np.unique(table)) <= set(valid_years(flows))
    # the same years as the suite draws for this gage and seed ("1030500" is the same gage)
    settings = unc.UncertaintySettings(seed=4, n_samples=30)
    np.testing.assert_array_equal(
        table, unc.boot_year_table(flows["obs"], flows["sim"], flows["date"], "1030500", settings)
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("date,q\n2000-01-01,1\n")
    assert main(["boot-years", str(bad), "--site", "01030500", "--seed", "1", "-o", str(out)]) == 2


def test_cli_sample_runs_the_uncertainty_suite(capsys: pytest.CaptureFixture[str]) -> None:
    from gagebench.cli import main

    assert main(["sample", "--suites", "standard,uncertainty", "--seed", "2"]) == 0
    text = capsys.readouterr().out
    assert "KGE_seBoot" in text
    assert "dKGE_p50" in text


def test_hytest_treats_scores_below_minus_9998_as_gumboots_missing_code(
    flows: pd.DataFrame,
) -> None:
    awful = flows.assign(sim=flows["sim"] * 400.0)  # NSE far below -9998
    hy = _engine(awful, unc.UncertaintySettings(seed=1, n_samples=50), "hytest")
    assert hy["status"].iloc[0] == "undefined"
    assert hy["NSE_seJack"].isna().all()
    std = _engine(awful, unc.UncertaintySettings(seed=1, n_samples=50), "standard")
    assert std["status"].iloc[0] == "ok"
    assert std["NSE_score"].iloc[0] < -9998


def test_kernels_need_no_scipy(tmp_path: Path) -> None:
    """scipy is an optional extra: the compiled kernels must not use numba's BLAS path
    (np.dot), which needs it. Compiled afresh (empty cache) with scipy unimportable."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['scipy'] = None\n"
        "import numpy as np, pandas as pd\n"
        "from gagebench.uncertainty_suite import UncertaintySettings, evaluate_models\n"
        "d = pd.date_range('1990-10-01', periods=365 * 12, freq='D').to_numpy()\n"
        "o = np.random.default_rng(0).gamma(2.0, 5.0, (1, d.size))\n"
        "r = evaluate_models(o, {'a': o * 1.1, 'b': o}, d, ['1'], UncertaintySettings(seed=1,"
        " n_samples=50), 'hytest')\n"
        "assert r['b']['status'].iloc[0] == 'ok', r\n"
        "print(r['a']['KGE_seBoot'].iloc[0])\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) > 0
