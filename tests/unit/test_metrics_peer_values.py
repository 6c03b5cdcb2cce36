"""Published expected values from peer libraries' own test suites, recomputed by gagebench.

Each block cites the repository and file the numbers come from. Definitions differ in places
and the tests say how they are mapped:
- hydroeval's ``pbias`` is 100 * sum(o - s) / sum(o), the opposite sign of HyTEST's (and
  hydroGOF's) 100 * sum(s - o) / sum(o) that gagebench uses;
- "KGE" here is Gupta et al. (2009): HydroErr's ``kge_2009``, hydroeval's ``kge`` (not
  ``kgeprime``, the 2012 variant with the coefficient of variation);
- hydroeval's ``kgenp`` (Pool et al. 2018) uses the Spearman rank correlation as its ``r``
  component, which is how its test carries a published Spearman value.
Ratios (alpha = sd_s / sd_o) do not depend on ddof, so libraries using either agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from gagebench.metrics import evaluate_arrays

MODES = ("standard", "hytest")
RTOL = 1e-10  # the published values are printed to 15-16 significant digits


def _metrics(obs: list[float] | np.ndarray, sim: list[float] | np.ndarray, mode: str) -> dict:
    result = evaluate_arrays(
        np.asarray(obs, float)[None, :], np.asarray(sim, float)[None, :], suites=("standard",),
        mode=mode,
    )  # fmt: skip
    row = dict(zip(result.columns, result.values[0], strict=True))
    row["status"] = result.status[0]
    return row


# --- BYU-Hydroinformatics/HydroErr, tests/test_hydroerr.py (class TestHydroErr) ---
HE_SIM = [5, 7, 9, 2, 4.5, 6.7]
HE_OBS = [4.7, 6, 10, 2.5, 4, 6.8]


@pytest.mark.parametrize("mode", MODES)
def test_hydroerr_values(mode: str) -> None:
    got = _metrics(HE_OBS, HE_SIM, mode)
    assert got["NSE"] == pytest.approx(0.923333988598388, rel=RTOL)  # test_nse
    assert got["pearson"] == pytest.approx(0.9615951377405804, rel=RTOL)  # test_pearson_r
    assert got["spearman"] == pytest.approx(0.942857142857143, rel=RTOL)  # test_spearman_r
    # test_kge_2009: (r, alpha, beta, kge) = expected_tuple
    assert got["KGE"] == pytest.approx(0.9181073779138655, rel=RTOL)
    assert got["rSD"] == pytest.approx(0.927910707932087, rel=RTOL)
    assert got["pbias"] == pytest.approx(100 * (1.0058823529411764 - 1), rel=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_hydroerr_values_with_missing_pairs(mode: str) -> None:
    """HydroErr's "bad data" variant: the same six pairs among days with a NaN on one side.

    (HydroErr also drops inf, zero and negative values on request; gagebench keeps zero and
    negative flows as data, so only its NaN days are reused here.)
    """
    sim = [6, np.nan, 100, np.nan, 5, 7, 9, 2, 4.5, 6.7]
    obs = [np.nan, 100, np.nan, 200, 4.7, 6, 10, 2.5, 4, 6.8]
    got = _metrics(obs, sim, mode)
    assert got["NSE"] == pytest.approx(0.923333988598388, rel=RTOL)
    assert got["KGE"] == pytest.approx(0.9181073779138655, rel=RTOL)
    assert got["pearson"] == pytest.approx(0.9615951377405804, rel=RTOL)
    assert got["spearman"] == pytest.approx(0.942857142857143, rel=RTOL)


def test_hydroerr_kge_undefined_cases() -> None:
    """test_kge_2009: observed mean 0 -> KGE NaN; observed sd 0 -> KGE NaN."""
    mean_zero = _metrics([-1, 1, 0, -2, 2], [1, 2, 3, 4, 5], "standard")
    assert np.isnan(mean_zero["KGE"])
    assert mean_zero["status"] == "partial"
    # HyTEST's notebook code divides by sum(o) = 0 with NumPy: beta = inf, KGE = -inf.
    assert _metrics([-1, 1, 0, -2, 2], [1, 2, 3, 4, 5], "hytest")["KGE"] == -np.inf
    sd_zero = _metrics([1, 1, 1, 1, 1], [1, 2, 3, 4, 5], "standard")
    assert np.isnan(sd_zero["KGE"])
    assert sd_zero["status"] == "constant_observations"


# --- ThibHlln/hydroeval, tests/test_objective_functions.py (TestObjectiveFunctions) ---
HV_SIM = [
    4.88322951, 13.00581834, 7.02440554, 3.97091122, 9.97534342,
    10.33979266, 10.66188354, 5.02212142, 10.11439072, 8.74766372,
    2.00477724, 15.77613262, 13.60435174, 11.03978688, 12.48102837,
    15.73067134, 1.5596135, 16.38242713, 12.43641555, 18.51378375,
    15.79254569, 18.23969688, 10.9313429, 19.71969387, 10.93025247,
    14.84931417, 5.46188619, 9.94941719, 1.9727649, 15.94516433,
    10.3383131, 3.59512995, 7.0910027, 13.13433473, 3.67594266,
    17.67672078, 1.86348799, 11.59849535, 10.21208572, 16.95266279,
    14.43738518, 6.30404177, 8.64896434, 9.11393758, 4.1732255,
    9.72432999, 7.34643289, 9.14102392, 14.99222829, 11.27481394,
]  # fmt: skip
HV_OBS = [
    4.12163019, 18.36232758, 8.01263988, 10.77006985, 19.63840808,
    13.38709782, 19.64878261, 1.46967891, 2.94507986, 18.66989149,
    10.94374588, 12.84710497, 2.16565322, 10.52564014, 14.51876746,
    10.47721219, 19.94729036, 2.61103336, 3.26042311, 16.74206836,
    9.13145529, 1.64976642, 14.06612306, 18.83125766, 18.10650122,
    18.73195666, 11.94963858, 10.67992664, 9.41582541, 7.9814575,
    8.95723473, 4.85209156, 2.17512672, 8.16731153, 3.62260147,
    14.70382033, 7.79189021, 8.30683168, 4.06517918, 16.01770834,
    15.10669104, 5.94213565, 14.7101872, 5.4553562, 11.66817334,
    2.93192041, 18.17779718, 2.75021921, 10.7884185, 5.45776009,
]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_hydroeval_values(mode: str) -> None:
    got = _metrics(HV_OBS, HV_SIM, mode)
    assert got["NSE"] == pytest.approx(-0.4147181744134911, rel=RTOL)  # 'nse'
    # 'kge' = [kge, r, alpha, beta]
    assert got["KGE"] == pytest.approx(0.15369876412650862, rel=RTOL)
    assert got["pearson"] == pytest.approx(0.16987016624040058, rel=RTOL)
    assert got["rSD"] == pytest.approx(0.8356487288365464, rel=RTOL)
    # 'pbias' = -0.99448...: hydroeval's sign is the opposite of HyTEST's.
    assert got["pbias"] == pytest.approx(0.9944878592297871, rel=RTOL)
    assert got["pbias"] == pytest.approx(100 * (1.009944878592298 - 1), rel=1e-9)  # beta
    # 'kgenp' = [kgenp, r_spearman, alpha_np, beta]
    assert got["spearman"] == pytest.approx(0.14756302521008402, rel=RTOL)


@pytest.mark.parametrize("mode", MODES)
def test_hydroeval_perfect_fit(mode: str) -> None:
    """The second column of hydroeval's test is sim = obs: nse 1, kge 1, pbias 0."""
    got = _metrics(HV_OBS, HV_OBS, mode)
    assert got["NSE"] == 1.0
    assert got["KGE"] == 1.0
    assert got["pbias"] == 0.0
    assert got["pearson"] == pytest.approx(1.0, rel=1e-15)
    assert got["spearman"] == pytest.approx(1.0, rel=1e-15)


# --- NOAA-OWP/hydrotools, python/metrics/tests/test_metrics.py ---
HT_TRUE = [1.0, 2.0, 3.0, 4.0]
HT_PRED = [4.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize("mode", MODES)
def test_hydrotools_nse(mode: str) -> None:
    """test_nash_sutcliffe_efficiency: NSE = -3, and -3 for the log NSE of exp(values)."""
    assert _metrics(HT_TRUE, HT_PRED, mode)["NSE"] == pytest.approx(-3.0, rel=1e-15)
    # exp(1..4) are all above both log floors (0.01 and HyTEST's 0.1 for sim).
    got = _metrics(np.exp(HT_TRUE), np.exp(HT_PRED), mode)
    assert got["logNSE"] == pytest.approx(-3.0, rel=1e-14)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("sim", "expected"),
    [
        (HT_PRED, -1.0),  # "Default (inverse case)"
        (np.array(HT_TRUE) * 0.5, 1.0 - np.sqrt(0.5)),  # "Half-scale"
        (np.array(HT_TRUE) * 2.0, 1.0 - np.sqrt(2.0)),  # "Double-scale"
        (np.array(HT_TRUE) * 1.0, 1.0),  # "Identity"
    ],
)
def test_hydrotools_kge(sim: list[float], expected: float, mode: str) -> None:
    """test_kling_gupta_efficiency (default scales r = alpha = beta = 1)."""
    assert _metrics(HT_TRUE, sim, mode)["KGE"] == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_hydrotools_zero_series_nse_is_nan() -> None:
    """test_zero_nash_sutcliffe_efficiency: all-zero observations give NaN, not an error."""
    got = _metrics([0.0] * 4, [0.0] * 4, "standard")
    assert np.isnan(got["NSE"])
    assert got["status"] == "constant_observations"
