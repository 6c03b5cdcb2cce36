"""The ``kge`` (KGE2012, KGE2021, KGEnp) and ``errors`` (RMSE, MAE, R2) suites.

Checked against independent implementations installed for the tests only: HydroErr's
``kge_2012`` and hydroeval's ``kgeprime`` and ``kgenp`` (1e-9 relative), on random series
and on the real sample gage (USGS 01104200 against NWM and NHM); KGE2021 and the errors
against NumPy written here (``_reference.py`` holds the same for the synthetic set). Then
their properties, and ``hytest`` mode's refusal through the API, the run file and the CLI.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path

import HydroErr as he
import hydroeval as hv
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

import gagebench
import gagebench.metrics as gm
from gagebench.config import load_config
from gagebench.errors import ConfigError, InputError
from gagebench.metrics import SUITES, evaluate_arrays
from gagebench.metrics.registry import HYTEST_SUITES
from gagebench.results.layout import SUITE_FILES, suite_csv_columns
from gagebench.sample import SAMPLE_MODELS, load_sample

RTOL = 1e-9
KGE = SUITES["kge"]
ERRORS = SUITES["errors"]


def _random_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Log-normal flows (no ties) and models with bias, noise and a lag."""
    rng = np.random.default_rng(23)
    pairs = []
    for n in (30, 365, 5000):
        obs = np.exp(rng.normal(2.0, 1.2, n))
        sim = obs * np.exp(rng.normal(0.15, 0.5, n))
        pairs += [(obs, sim), (obs, np.roll(obs, 3) * 0.8 + 1.0)]
    return pairs


@cache
def _sample_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """The real sample gage's paired days, per model."""
    sample = load_sample()
    out = []
    for model in SAMPLE_MODELS:
        paired = sample[["obs", model]].dropna()
        out.append((paired["obs"].to_numpy(), paired[model].to_numpy()))
    return out


def _untied(obs: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The series with their ties broken by a tiny distinct offset per day (hydroeval ranks
    tied flows in an arbitrary order, where gagebench averages their ranks)."""
    bump = np.arange(obs.size) * 1e-9
    return obs + bump, sim + bump[::-1]


def _hydroerr_kge_2012(obs: np.ndarray, sim: np.ndarray) -> float:
    """HydroErr's KGE' (``return_all=False``: the score alone)."""
    value = he.kge_2012(sim, obs)
    assert not isinstance(value, tuple)
    return float(value)


def _close(got: float, want: float) -> None:
    assert np.isclose(got, want, rtol=RTOL, atol=0), (got, want)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = [(f"random-{i}", o, s) for i, (o, s) in enumerate(_random_pairs())]
    for model, (o, s) in zip(SAMPLE_MODELS, _sample_pairs(), strict=True):
        cases.append((f"sample-{model}-untied", *_untied(o, s)))
    return cases


@pytest.mark.parametrize(("case", "obs", "sim"), _cases(), ids=[c[0] for c in _cases()])
def test_kge2012_and_kgenp_agree_with_hydroerr_and_hydroeval(
    case: str, obs: np.ndarray, sim: np.ndarray
) -> None:
    kge_2012 = gm.kge_2012(obs, sim)
    _close(kge_2012, _hydroerr_kge_2012(obs, sim))
    _close(kge_2012, float(hv.kgeprime(sim, obs)[0, 0]))
    _close(gm.kge_np(obs, sim), float(hv.kgenp(sim, obs)[0, 0]))


@pytest.mark.parametrize("model", SAMPLE_MODELS)
def test_kge_on_the_real_sample_gage_with_its_ties(model: str) -> None:
    """The sample's observed flows repeat (1757 values over 12145 days): KGE2012 agrees
    with HydroErr and hydroeval as it is; KGEnp agrees with hydroeval's flow-duration and
    volume terms, with Spearman's r of average ranks (scipy) for the ranking term."""
    obs, sim = _sample_pairs()[SAMPLE_MODELS.index(model)]
    assert np.unique(obs).size < obs.size / 2  # ties: the case this test is about
    _close(gm.kge_2012(obs, sim), _hydroerr_kge_2012(obs, sim))
    _close(gm.kge_2012(obs, sim), float(hv.kgeprime(sim, obs)[0, 0]))
    _, _, alpha_np, beta = hv.kgenp(sim, obs)[:, 0]
    r_s = stats.spearmanr(obs, sim)[0]
    want = 1 - np.sqrt((r_s - 1) ** 2 + (alpha_np - 1) ** 2 + (beta - 1) ** 2)
    _close(gm.kge_np(obs, sim), float(want))


@pytest.mark.parametrize(("case", "obs", "sim"), _cases(), ids=[c[0] for c in _cases()])
def test_kge2021_and_errors_agree_with_numpy(case: str, obs: np.ndarray, sim: np.ndarray) -> None:
    mu_o, mu_s, sd_o, sd_s = obs.mean(), sim.mean(), obs.std(), sim.std()
    r = np.corrcoef(obs, sim)[0, 1]
    kge_2021 = 1 - np.sqrt((r - 1) ** 2 + (sd_s / sd_o - 1) ** 2 + ((mu_s - mu_o) / sd_o) ** 2)
    _close(gm.kge_2021(obs, sim), kge_2021)
    _close(gm.rmse(obs, sim), np.sqrt(np.mean((sim - obs) ** 2)))
    _close(gm.mae(obs, sim), np.mean(np.abs(sim - obs)))
    _close(gm.r2(obs, sim), r**2)


def test_the_suites_alone_equal_the_suites_beside_standard() -> None:
    """kge computes its own ranks when standard does not run (else reuses standard's)."""
    obs = np.stack([o[:4000] for o, _ in _sample_pairs()])
    sim = np.stack([s[:4000] for _, s in _sample_pairs()])
    both = evaluate_arrays(obs, sim, suites=("standard", "kge", "errors"))
    for suite in ("kge", "errors"):
        alone = evaluate_arrays(obs, sim, suites=(suite,))
        assert alone.columns == SUITES[suite]
        at = [both.columns.index(c) for c in SUITES[suite]]
        np.testing.assert_array_equal(alone.values, both.values[:, at])


# -- properties ------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
positive = st.floats(1e-3, 1e4)


@PROPERTY_SETTINGS
@given(hnp.arrays(np.float64, st.integers(2, 120), elements=positive))
def test_a_perfect_model_scores_one_and_zero(obs: np.ndarray) -> None:
    result = evaluate_arrays(obs[None, :], obs[None, :].copy(), suites=("kge", "errors"))
    if np.all(obs == obs[0]):
        assert result.status == ["constant_observations"]
        return
    assert result.status == ["ok"]
    got = dict(zip(result.columns, result.values[0], strict=True))
    for name in (*KGE, "R2"):
        assert abs(got[name] - 1.0) <= 1e-12, (name, got[name])
    assert got["RMSE"] == 0.0
    assert got["MAE"] == 0.0


@PROPERTY_SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(3, 80), elements=positive),
    st.data(),
)
def test_days_missing_in_either_series_are_dropped_pairwise(obs: np.ndarray, data) -> None:
    """NaN days in either series: the values of the paired days alone (as the reference)."""
    from _reference import _errors, _kge

    n = obs.size
    sim = data.draw(hnp.arrays(np.float64, n, elements=positive))
    gaps_o = data.draw(hnp.arrays(np.bool_, n))
    gaps_s = data.draw(hnp.arrays(np.bool_, n))
    o = np.where(gaps_o, np.nan, obs)
    s = np.where(gaps_s, np.nan, sim)
    keep = ~gaps_o & ~gaps_s
    result = evaluate_arrays(o[None, :], s[None, :], suites=("kge", "errors"))
    if keep.sum() < 2:
        assert result.status[0] in ("too_few_days", "no_observations", "no_simulation")
        assert np.isnan(result.values).all()
        return
    got = dict(zip(result.columns, result.values[0], strict=True))
    if np.all(obs[keep] == obs[keep][0]):
        # only RMSE and MAE are defined for constant observations
        assert result.status[0] == "constant_observations"
        assert np.isnan([got[name] for name in (*KGE, "R2")]).all()
        error = sim[keep] - obs[keep]
        _close(got["RMSE"], float(np.sqrt(np.mean(error**2))))
        _close(got["MAE"], float(np.mean(np.abs(error))))
        return
    assert result.n_days[0] == keep.sum()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning (a constant sim)
        want = _kge(obs[keep], sim[keep]) | _errors(obs[keep], sim[keep])
    for name, value in want.items():
        assert np.isclose(got[name], value, rtol=RTOL, atol=1e-12, equal_nan=True), name


def test_constant_observations_give_the_documented_status() -> None:
    obs = np.full((1, 50), 3.0)
    sim = np.linspace(1.0, 5.0, 50)[None, :]
    result = evaluate_arrays(obs, sim, suites=("kge", "errors"))
    assert result.status == ["constant_observations"]
    assert "observed flow is constant" in result.note[0]
    got = dict(zip(result.columns, result.values[0], strict=True))
    assert np.isnan([got[name] for name in (*KGE, "R2")]).all()
    assert np.isnan(gm.kge_2012(obs[0], sim[0]))


def test_rmse_and_mae_of_constant_observations_are_scored() -> None:
    """An ephemeral gage's all-zero observed flows (or a dry group of a breakdown): the
    variance-based metrics are undefined, as the note says, but RMSE and MAE are not."""
    obs = np.zeros((1, 50))
    sim = np.linspace(0.0, 2.0, 50)[None, :]
    result = evaluate_arrays(obs, sim, suites=("kge", "errors"))
    assert result.status == ["constant_observations"]
    assert result.note == ["observed flow is constant: variance-based metrics undefined"]
    got = dict(zip(result.columns, result.values[0], strict=True))
    _close(got["RMSE"], float(np.sqrt(np.mean(sim**2))))
    _close(got["MAE"], float(np.mean(sim)))
    assert np.isnan([got[name] for name in (*KGE, "R2")]).all()
    assert gm.rmse(obs[0], sim[0]) == got["RMSE"]
    assert gm.mae(obs[0], sim[0]) == got["MAE"]
    # under min_days nothing is scored, constant or not
    short = evaluate_arrays(obs, sim, suites=("errors",), min_days=51)
    assert np.isnan(short.values).all()
    assert short.note == [
        "observed flow is constant: variance-based metrics undefined; 50 paired days, fewer "
        "than min_paired_days=51"
    ]
    # a dry season of a breakdown: RMSE and MAE of its days, as a pandas groupby gives
    days = pd.date_range("2001-01-01", "2002-12-31")
    flows = np.where(days.month.isin([6, 7, 8]), 0.0, 1.0 + np.arange(days.size) % 7)
    model = flows + 0.5 + np.arange(days.size) % 3
    table = gagebench.evaluate(
        flows, model, time=days, suites=("errors",), by="season", min_paired_days=2
    )
    dry = table.set_index("season").loc["JJA"]
    assert dry["status"] == "constant_observations"
    summer = days.month.isin([6, 7, 8])
    _close(dry["RMSE"], float(np.sqrt(np.mean((model - flows)[summer] ** 2))))
    _close(dry["MAE"], float(np.mean(np.abs(model - flows)[summer])))


# -- the API and the run folder's names -----------------------------------------------------


def test_evaluate_gives_the_new_columns_after_the_standard_ones() -> None:
    sample = load_sample()
    table = gagebench.evaluate(
        sample["obs"], {"nwm": sample["nwm"]}, suites=("errors", "standard", "kge"),
        gages=["USGS-01104200"],
    )  # fmt: skip
    columns = list(table.columns)
    assert columns[2 : 2 + len(SUITES["standard"])] == list(SUITES["standard"])
    after = 2 + len(SUITES["standard"])
    assert columns[after : after + 6] == ["KGE2012", "KGE2021", "KGEnp", "RMSE", "MAE", "R2"]
    assert table["status"].tolist() == ["ok"]
    assert table[list(KGE + ERRORS)].notna().all(axis=None)
    np.testing.assert_allclose(table["R2"], table["pearson"] ** 2, rtol=1e-12)


def test_each_new_suite_has_its_csv_in_hytests_shape() -> None:
    assert SUITE_FILES["kge"] == "kge.csv"
    assert SUITE_FILES["errors"] == "errors.csv"
    assert suite_csv_columns("kge") == ["site_no", "KGE2012", "KGE2021", "KGEnp"]
    assert suite_csv_columns("errors") == ["site_no", "RMSE", "MAE", "R2"]


# -- hytest mode refuses what HyTEST does not define ----------------------------------------

NOT_HYTEST = [s for s in SUITES if s not in HYTEST_SUITES]


@pytest.mark.parametrize("suite", NOT_HYTEST)
def test_hytest_mode_refuses_the_suites_hytest_lacks_in_the_api(suite: str) -> None:
    o = np.arange(1.0, 401.0)
    pattern = rf"HyTEST, which defines none of the suites \['{suite}'\].*mode 'standard'"
    with pytest.raises(InputError, match=pattern):
        gagebench.evaluate(o, o * 1.1, suites=("standard", suite), mode="hytest")
    with pytest.raises(InputError, match=pattern):
        evaluate_arrays(o[None, :], o[None, :], suites=(suite,), mode="hytest")
    info = next(m for m in gm.METRICS if m.suite == suite and m.function)
    dated = (np.datetime64("2001-01-01") + np.arange(o.size),) if info.dated else ()
    with pytest.raises(InputError, match=pattern):
        getattr(gm, str(info.function))(o, o, *dated, mode="hytest")
    # HyTEST's own suites still run in hytest mode
    table = gagebench.evaluate(o, o * 1.1, suites=("standard",), mode="hytest")
    assert table["status"].tolist() == ["ok"]


def test_hytest_mode_refuses_them_in_a_run_file(tmp_path: Path) -> None:
    run_file = tmp_path / "run.yaml"
    settings = {
        "output": str(tmp_path / "out"),
        "observed": "/s/o.zarr",
        "models": {"m": "/s/m.zarr"},
        "mode": "hytest",
        "suites": ["standard", "kge"],
    }
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    with pytest.raises(ConfigError, match=r"^gagebench\.suites: mode 'hytest' .*\['kge'\]"):
        load_config(run_file)
    assert load_config(run_file, overrides={"mode": "standard"}).suites == ("standard", "kge")
    assert load_config(run_file, overrides={"suites": ["standard", "uncertainty"]}).mode == (
        "hytest"
    )


_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def test_hytest_mode_refuses_them_through_the_cli(tmp_path: Path) -> None:
    """``gagebench run`` with such a run file: exit 2, one line naming the setting and the
    fix, no traceback, nothing written."""
    run_file = tmp_path / "run.yaml"
    settings = {"output": str(tmp_path / "out"), "observed": str(tmp_path / "o.zarr"),
                "models": {"m": str(tmp_path / "m.zarr")}, "mode": "hytest",
                "suites": ["standard", "errors"]}  # fmt: skip
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    done = subprocess.run(
        [*GAGEBENCH, "run", "-c", str(run_file)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert "gagebench.suites: mode 'hytest'" in errors[0]
    assert "['errors']" in errors[0]
    assert "use mode 'standard'" in errors[0]
    assert not (tmp_path / "out").exists()
    assert pd.Index(sorted(p.name for p in tmp_path.iterdir())).tolist() == ["run.yaml"]
