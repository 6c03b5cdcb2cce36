"""The batch evaluator on real zarr stores (memory://), without a cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gagebench.config import load_config
from gagebench.errors import InputError
from gagebench.evaluation import evaluate
from gagebench.gages import plan_batches
from gagebench.pipeline import ERROR, _evaluate_rows, evaluate_batch
from gagebench.sources.stores import SourceSet
from gagebench.synth import synthesize


@pytest.fixture(scope="module")
def source() -> SourceSet:
    stores = synthesize(
        "memory://gagebench-pipeline-unit",
        n_gages=10,
        seed=7,
        missing_fraction=0.25,
        start="2010-01-01",
        end="2012-12-31",
    )
    cfg = load_config(overrides={**stores.to_config_dict(), "output": "memory://out"})
    return SourceSet.from_config(cfg)


def test_plan_batches() -> None:
    assert plan_batches(["a", "b", "c"], 2) == (("a", "b"), ("c",))
    with pytest.raises(InputError, match="repeats"):
        plan_batches(["a", "b", "a"], 2)


def test_evaluate_batch_rows_and_missing_gages(source: SourceSet) -> None:
    ids = [*source.observed_ids()[:6], "USGS-00000000"]
    frame = evaluate_batch(source, ids, ("nwm", "nhm"), ("standard", "dscore"), "standard")
    assert list(frame["model"]) == ["nwm"] * 7 + ["nhm"] * 7
    assert list(frame["site_no"]) == ids * 2
    batch = source.read_batch(ids)
    for model in ("nwm", "nhm"):
        rows = frame[frame.model == model].set_index("site_no")
        assert rows.loc["USGS-00000000", "status"] == "not_in_observed"
        absent = set(batch.missing_model[model]) - set(batch.missing_observed)
        assert set(rows.index[rows.status == "not_in_model"]) == absent
        keep = [
            i
            for i, g in enumerate(ids)
            if g not in batch.missing_observed and g not in batch.missing_model[model]
        ]
        ref = evaluate(
            batch.observed[keep],
            batch.modeled[model][keep],
            time=batch.dates,
            gages=[ids[i] for i in keep],
        ).set_index("site_no")
        got = rows.loc[ref.index, ["NSE", "KGE", "mse", "n_days"]]
        np.testing.assert_array_equal(got.to_numpy(float), ref[got.columns].to_numpy(float))


def test_engine_failure_is_a_row_not_a_crash() -> None:
    dates = np.arange("2000-01-01", "2000-02-01", dtype="datetime64[D]")
    obs = np.ones((2, dates.size))
    sim = np.ones((2, dates.size - 1))  # wrong length: the engine raises InputError
    frame = _evaluate_rows(obs, sim, dates, ["USGS-1", "USGS-2"], "m", ("standard",), "standard")
    assert list(frame.status) == [ERROR, ERROR]
    assert frame.note.str.contains("InputError").all()
    assert isinstance(frame, pd.DataFrame)
