"""The real sample gage shipped with gagebench: USGS 01104200, observed, NWM and NHM.

12145 days (1983-10-01..2016-12-31) from HyTEST's NWM benchmark sample data; used by the
demo stores and by tests as real data.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

SAMPLE_SITE = "01104200"
SAMPLE_MODELS = ("nwm", "nhm")


def load_sample() -> pd.DataFrame:
    """The real sample gage, USGS 01104200: observed flows and the NWM and NHM simulations.

    Returns
    -------
    pandas.DataFrame
        12145 days (1983-10-01..2016-12-31) indexed by ``date``, with the columns
        ``obs``, ``nwm`` and ``nhm`` in m³/s, e.g. for ``gagebench.evaluate(frame["obs"],
        {"nwm": frame["nwm"], "nhm": frame["nhm"]}, gages=["01104200"])``.
    """
    ref = resources.files("gagebench") / "data" / "NWM_Benchmark_SampleData.csv"
    with resources.as_file(ref) as path:
        frame = pd.read_csv(path, dtype={"site_no": str}, parse_dates=["date"])
    return frame.set_index("date")[["obs", *SAMPLE_MODELS]]
