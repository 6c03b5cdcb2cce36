"""Property tests (hypothesis) of the metrics engine: identities that hold for any input.

Inputs mix ordinary flows with the values that break naive code: NaN, exact zeros, flows
below the 0.01 log floor, negative flows, large flows and many ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gagebench.metrics import METRICS, SUITES, evaluate_arrays

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
DSCORE = SUITES["dscore"]
STANDARD = SUITES["standard"]
ALL = tuple(m.name for m in METRICS)

# Flows are 0 or at least 1e-6 in magnitude (float32 stores cannot hold a 1e-300 m3/s flow,
# and its square would underflow to 0: a "non-constant" series with zero variance).
flow = st.one_of(
    st.floats(1e-6, 1e4),
    st.sampled_from([0.0, -0.0, 0.005, 0.01, 0.1, 1.0, 2.5, np.nan]),
    st.floats(1e-6, 50.0).map(lambda x: -x),
)


@st.composite
def batches(draw: st.DrawFn, max_gages: int = 5, max_days: int = 80) -> tuple:
    """(obs, sim, dates): float64 (gage, day) arrays and dates spread over all seasons."""
    gages = draw(st.integers(1, max_gages))
    days = draw(st.integers(2, max_days))
    obs = draw(hnp.arrays(np.float64, (gages, days), elements=flow))
    sim = draw(hnp.arrays(np.float64, (gages, days), elements=flow))
    start = draw(st.dates(min_value=pd.Timestamp("1980-01-01").date(),
                          max_value=pd.Timestamp("2020-01-01").date()))  # fmt: skip
    step = draw(st.integers(1, 12))
    dates = pd.date_range(start, periods=days, freq=f"{step}D").values
    return obs, sim, dates


def _evaluate(obs: np.ndarray, sim: np.ndarray, dates: np.ndarray, mode: str = "standard"):
    return evaluate_arrays(obs, sim, dates, mode=mode)


def _col(result, name: str) -> np.ndarray:
    return result.values[:, result.columns.index(name)]


def _evaluated(result) -> np.ndarray:
    return np.isin(result.status, ["ok", "partial"])


@PROPERTY_SETTINGS
@given(batches(), st.sampled_from(["standard", "hytest"]))
def test_perfect_fit(batch: tuple, mode: str) -> None:
    """sim == obs: NSE = KGE = 1, no bias, unit ratios, every error component 0."""
    obs, _, dates = batch
    result = _evaluate(obs, obs.copy(), dates, mode)
    ok = _evaluated(result)
    # beta = sum(s)/sum(o) and pbias are 0/0 (undefined, NaN) where the flows sum to 0
    balanced = np.nansum(obs, axis=1)[ok] == 0.0
    for name, value in (("NSE", 1.0), ("KGE", 1.0), ("rSD", 1.0), ("pearson", 1.0),
                        ("spearman", 1.0), ("pbias", 0.0)):  # fmt: skip
        got = _col(result, name)[ok]
        defined = ~balanced if name in ("KGE", "pbias") else np.ones_like(balanced)
        assert np.isfinite(got[defined]).all(), name
        assert np.isnan(got[~defined]).all(), name
        np.testing.assert_allclose(got[defined], value, rtol=0, atol=1e-12, err_msg=name)
    for name in ("pBiasFMS", "pBiasFLV", "pBiasFHV", *DSCORE):
        got = _col(result, name)[ok]
        # 0/0 FDC segments are undefined (NaN, or NumPy's NaN in hytest mode); none is non-zero.
        assert np.all((got == 0.0) | np.isnan(got)), (name, got)
    lognse = _col(result, "logNSE")[ok]
    assert np.all((np.abs(lognse - 1.0) < 1e-12) | np.isnan(lognse) | (mode == "hytest"))


@PROPERTY_SETTINGS
@given(batches())
def test_bias_distribution_sequence_sum_to_mse(batch: tuple) -> None:
    result = _evaluate(*batch)
    ok = _evaluated(result)
    mse = _col(result, "mse")[ok]
    total = sum(_col(result, name)[ok] for name in ("e_bias", "e_dist", "e_seq"))
    np.testing.assert_allclose(total, mse, rtol=1e-9, atol=1e-12)


@PROPERTY_SETTINGS
@given(batches())
def test_seasonal_and_quantile_components_sum_to_mse(batch: tuple) -> None:
    result = _evaluate(*batch)
    ok = _evaluated(result)
    mse = _col(result, "mse")[ok]
    seasons = sum(_col(result, name)[ok] for name in ("winter", "spring", "summer", "fall"))
    quantiles = sum(_col(result, name)[ok] for name in ("low", "below_avg", "above_avg", "high"))
    np.testing.assert_allclose(seasons, mse, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(quantiles, mse, rtol=1e-9, atol=1e-12)
    for name in DSCORE:
        if name != "e_seq":  # e_seq = var(e) - e_dist may be slightly negative
            assert np.all(_col(result, name)[ok] >= 0.0), name


@PROPERTY_SETTINGS
@given(batches(max_gages=8), st.randoms(use_true_random=False),
       st.sampled_from(["standard", "hytest"]))  # fmt: skip
def test_gage_order_does_not_matter(batch: tuple, random, mode: str) -> None:
    """Each gage's row depends on that gage alone: permuting the batch permutes the rows."""
    obs, sim, dates = batch
    perm = list(range(obs.shape[0]))
    random.shuffle(perm)
    base = _evaluate(obs, sim, dates, mode)
    shuffled = _evaluate(obs[perm], sim[perm], dates, mode)
    np.testing.assert_array_equal(shuffled.values, base.values[perm])
    assert shuffled.status == [base.status[p] for p in perm]
    assert shuffled.note == [base.note[p] for p in perm]
    np.testing.assert_array_equal(shuffled.n_days, base.n_days[perm])
    np.testing.assert_array_equal(shuffled.first, base.first[perm])
    # and a gage evaluated alone gives its row of the batch
    alone = _evaluate(obs[:1], sim[:1], dates, mode)
    np.testing.assert_array_equal(alone.values[0], base.values[0])


@PROPERTY_SETTINGS
@given(batches())
def test_standard_mode_never_emits_infinity(batch: tuple) -> None:
    result = _evaluate(*batch)
    assert not np.isinf(result.values).any()
    # a row is "ok" only if every metric is finite; "partial" names what is not
    for g, status in enumerate(result.status):
        bad = [c for c, v in zip(result.columns, result.values[g], strict=True)
               if not np.isfinite(v)]  # fmt: skip
        if status == "ok":
            assert not bad
        elif status == "partial":
            assert bad
            assert result.note[g].split("; ")[0] == "undefined: " + ", ".join(bad)
        else:
            assert len(bad) == len(result.columns)  # not evaluated: all NaN


@PROPERTY_SETTINGS
@given(batches(), st.sampled_from(["standard", "hytest"]))
def test_float32_input_equals_its_float64_widening(batch: tuple, mode: str) -> None:
    """The engine computes in float64: float32 data gives bit-identical results to the same
    values passed as float64 (what must hold; float32 vs the unrounded float64 series need
    not agree beyond float32's ~1e-7 precision)."""
    obs, sim, dates = batch
    obs32, sim32 = obs.astype(np.float32), sim.astype(np.float32)
    narrow = _evaluate(obs32, sim32, dates, mode)
    wide = _evaluate(obs32.astype(np.float64), sim32.astype(np.float64), dates, mode)
    np.testing.assert_array_equal(narrow.values, wide.values)
    assert narrow.status == wide.status


@pytest.mark.parametrize("mode", ["standard", "hytest"])
def test_float32_sample_close_to_float64(mode: str) -> None:
    """On the real sample gage, float32 storage (as in HyTEST's stores) moves no metric by
    more than float32 rounding can: 1e-5 relative (values carry ~6e-8 relative error)."""
    from gagebench.sample import load_sample

    sample = load_sample()
    obs = sample["obs"].to_numpy()[None, :]
    sim = sample["nwm"].to_numpy()[None, :]
    wide = evaluate_arrays(obs, sim, sample.index.values, mode=mode)
    narrow = evaluate_arrays(obs.astype(np.float32), sim.astype(np.float32),
                             sample.index.values, mode=mode)  # fmt: skip
    np.testing.assert_allclose(narrow.values, wide.values, rtol=1e-5, atol=1e-7)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(allow_nan=False)))
def test_floored_logs_within_one_ulp_of_numpy(values: np.ndarray) -> None:
    """The engine's vectorized ln(max(x, 0.01)) (fdlibm's algorithm) is libm's to 1 ulp,
    for any double: negative, zero, subnormal, huge, +/-inf."""
    from gagebench.metrics.kernels import floored_logs

    n = values.size
    bits = np.empty(n, np.uint64)
    out = np.empty(n)
    floored_logs(np.ascontiguousarray(values), n, bits, bits.view(np.float64), np.empty(n), out)
    want = np.log(np.maximum(values, 0.01))
    finite = np.isfinite(want)
    assert np.array_equal(out[~finite], want[~finite])
    assert np.all(np.abs(out[finite] - want[finite]) <= np.spacing(np.abs(want[finite])))


# Long runs of a few values (ties crossing the rank kernel's 256-value blocks), signed
# zeros, negatives, infinities and arbitrary float32 values.
float32_flow = st.one_of(
    st.sampled_from([0.0, -0.0, 0.01, 1.0, 2.5, -3.0, np.inf, -np.inf]),
    st.floats(allow_nan=False, width=32),
)


_RNG = np.random.default_rng(7)
# Tie groups of 1-700 values (a run of zeros longer than two rank blocks), shuffled.
_LONG_TIES = _RNG.permutation(
    np.concatenate([np.zeros(700), np.full(300, 2.5), _RNG.random(400), [-0.0, 1.0, 1.0]])
).astype(np.float32)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(np.float32, st.integers(1, 1500), elements=float32_flow))
@example(_LONG_TIES)
@example(np.sort(_LONG_TIES))
def test_float32_argsort_and_average_ranks_match_numpy_and_scipy(values: np.ndarray) -> None:
    """The float32 radix argsort is numpy's stable argsort (ties in order of appearance,
    -0.0 equal to 0.0), decodes the sorted values exactly, and the tie-averaged ranks are
    scipy's rankdata, for any finite-or-infinite float32 series."""
    from scipy.stats import rankdata

    from gagebench.metrics import kernels

    n = values.size
    wide = values.astype(np.float64)
    packed, scratch = np.empty(n, np.uint64), np.empty(n, np.uint64)
    key_floats = np.empty(n, np.float32)
    counts = np.empty((3, 1 << kernels._RADIX_BITS), np.int64)
    order, sorted_values, ranks = np.empty(n, np.int64), np.empty(n, np.float32), np.empty(n)
    low, high = kernels._pack_keys32(wide, n, key_floats, packed)
    kernels._radix_passes32(
        packed, scratch, counts, low, high, n, order, sorted_values.view(np.uint32)
    )
    want = np.argsort(wide + 0.0, kind="stable")
    assert np.array_equal(order, want)
    assert np.array_equal(sorted_values, values[want])  # -0.0 == 0.0
    kernels._average_ranks(sorted_values, order, ranks)
    assert np.array_equal(ranks, rankdata(wide, method="average"))
