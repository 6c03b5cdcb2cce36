"""gagebench.metrics' one-series functions: the engine's values, and hand-computed ones."""

import math
import re

import numpy as np
import pytest

import gagebench.metrics as gm
from gagebench.errors import InputError
from gagebench.metrics import METRIC_BY_NAME, METRICS, evaluate_arrays
from gagebench.metrics.registry import mode_refusal

#: Each one-series function and the registry metric it returns (the registry names them;
#: the expected values below come from the engine, which test_metrics_reference.py checks
#: against an independent reference, and from hand computations).
FUNCTIONS = {m.function: m.name for m in METRICS if m.function is not None}


def _series(seed=7, days=3 * 365, dry=True):
    rng = np.random.default_rng(seed)
    obs = np.exp(rng.normal(1.0, 1.2, days))
    sim = obs * np.exp(rng.normal(0.1, 0.5, days))
    obs[rng.integers(0, days, 40)] = np.nan
    sim[rng.integers(0, days, 40)] = np.nan
    if dry:  # a dry spell: floored logs, ties in the ranks (hytest's FLV logs are unfloored)
        obs[:30] = 0.0
    sim[200:210] = 0.05
    time = np.datetime64("1990-10-01") + np.arange(days)
    return obs, sim, time


#: Each function in each mode that computes its suite (hytest mode refuses the suites
#: HyTEST lacks: test_metrics_kge_errors.py).
FUNCTION_MODES = [
    (func, metric, mode)
    for func, metric in FUNCTIONS.items()
    for mode in ("standard", "hytest")
    if mode_refusal((METRIC_BY_NAME[metric].suite,), mode) is None
]


@pytest.mark.parametrize(("func", "metric", "mode"), FUNCTION_MODES)
def test_each_function_gives_the_engines_value(func, metric, mode):
    obs, sim, time = _series(dry=mode == "standard")
    suite = METRIC_BY_NAME[metric].suite
    batch = evaluate_arrays(obs[None, :], sim[None, :], time, suites=(suite,), mode=mode)
    expected = batch.values[0, batch.columns.index(metric)]
    dates = (time,) if METRIC_BY_NAME[metric].dated else ()  # the benchmark suite's
    got = getattr(gm, func)(obs, sim, *dates, mode=mode)
    assert isinstance(got, float)
    assert np.isfinite(expected)
    assert got == expected


@pytest.mark.parametrize("mode", ["standard", "hytest"])
def test_dscore_gives_every_component_of_the_engine(mode):
    obs, sim, time = _series(seed=3)
    batch = evaluate_arrays(obs[None, :], sim[None, :], time, suites=("dscore",), mode=mode)
    got = gm.dscore(obs, sim, time, mode=mode)
    assert list(got) == list(batch.columns)
    assert list(got.values()) == batch.values[0].tolist()
    seasons = got["winter"] + got["spring"] + got["summer"] + got["fall"]
    assert seasons == pytest.approx(got["mse"], rel=1e-12)


def test_nse_and_kge_by_hand():
    obs, sim = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]
    # mean((s - o)^2) = 1/4, var(o) = 1.25
    assert gm.nse(obs, sim) == pytest.approx(1 - 0.25 / 1.25, abs=1e-15)
    # var(s) = 2.1875, cov(o, s) = 1.625, sum s / sum o = 11 / 10
    r = 1.625 / math.sqrt(1.25 * 2.1875)
    alpha = math.sqrt(2.1875 / 1.25)
    kge = 1 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (1.1 - 1) ** 2)
    assert gm.kge(obs, sim) == pytest.approx(kge, abs=1e-14)
    assert gm.pbias(obs, sim) == pytest.approx(10.0, abs=1e-13)


def test_perfect_fit_is_optimal():
    obs, _, time = _series(seed=11)
    for func, metric in FUNCTIONS.items():
        if metric.endswith("_bench"):
            continue  # the benchmark's own score, not the model's
        dates = (time,) if METRIC_BY_NAME[metric].dated else ()
        assert getattr(gm, func)(obs, obs, *dates) == pytest.approx(
            METRIC_BY_NAME[metric].optimal
        ), func


def test_missing_days_are_dropped_pairwise():
    obs = [1.0, np.nan, 3.0, 4.0, 2.0]
    sim = [1.0, 9.0, 3.0, 5.0, np.inf]
    assert gm.nse(obs, sim) == gm.nse([1.0, 3.0, 4.0], [1.0, 3.0, 5.0])


def test_undefined_values_are_nan():
    assert math.isnan(gm.nse([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert math.isnan(gm.kge([1.0, np.nan], [1.0, 2.0]))  # one paired day


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="same days"):
        gm.nse([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="1-D"):
        gm.nse([[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(InputError, match="mode"):
        gm.nse([1.0, 2.0], [1.0, 2.0], mode="nope")


@pytest.mark.parametrize(("func", "metric"), [*FUNCTIONS.items(), ("dscore", "mse")])
def test_docstrings_give_the_registry_reference_doi(func, metric):
    doi = re.search(r"doi:\S+", METRIC_BY_NAME[metric].reference)
    assert doi is not None
    assert doi.group(0) in getattr(gm, func).__doc__


def test_every_registry_metric_has_a_function():
    parts = gm.dscore([1.0, 2.0], [1.0, 2.0], ["2000-01-01", "2000-01-02"])
    covered = set(FUNCTIONS.values()) | set(parts)
    assert covered == set(METRIC_BY_NAME)
    # the hydroeval-style names users call (a rename is an API change)
    assert set(FUNCTIONS) >= {"nse", "kge", "log_nse", "pbias", "rsd", "pearson", "spearman",
                              "pbias_fms", "pbias_flv", "pbias_fhv", "mse", "e_bias",
                              "e_dist", "e_seq"}  # fmt: skip


def test_the_module_examples_run():
    import doctest

    import gagebench.metrics.functions

    result = doctest.testmod(gagebench.metrics.functions)
    assert result.attempted >= 2
    assert result.failed == 0
