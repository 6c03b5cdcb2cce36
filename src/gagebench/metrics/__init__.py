"""Pure NumPy/numba metric kernels for batches of gages held as (gage, day) arrays.

No dask, fsspec or xarray I/O here: the engine takes arrays and returns arrays. One function
per metric (``nse``, ``kge``, ... and ``dscore``) scores a single pair of series with the
same kernels (:mod:`gagebench.metrics.functions`).
"""

from typing import TYPE_CHECKING

from gagebench.metrics.engine import (
    NOT_IN_MODEL,
    NOT_IN_OBSERVED,
    PARTIAL,
    STATUS_NAMES,
    BatchResult,
    check_names,
    evaluate_arrays,
    season_index,
)
from gagebench.metrics.functions import FUNCTIONS, MetricFunction, dscore
from gagebench.metrics.registry import (
    DSCORE_COLUMNS,
    ENGINE_SUITES,
    METRIC_BY_NAME,
    METRICS,
    MODES,
    STANDARD_COLUMNS,
    SUITES,
    UNCERTAINTY_COLUMNS,
    MetricInfo,
)

# The one-series functions (made from the registry at import) are this package's too.
globals().update(FUNCTIONS)

__all__ = [
    "DSCORE_COLUMNS",
    "ENGINE_SUITES",
    "METRICS",
    "METRIC_BY_NAME",
    "MODES",
    "NOT_IN_MODEL",
    "NOT_IN_OBSERVED",
    "PARTIAL",
    "STANDARD_COLUMNS",
    "STATUS_NAMES",
    "SUITES",
    "UNCERTAINTY_COLUMNS",
    "BatchResult",
    "MetricInfo",
    "check_names",
    "evaluate_arrays",
    "season_index",
    *FUNCTIONS,
    "dscore",
]

if TYPE_CHECKING:
    # As in gagebench.metrics.functions: the generated names are typed as metric functions.
    def __getattr__(name: str) -> MetricFunction: ...

    from gagebench.metrics.functions import kge_bench as kge_bench
    from gagebench.metrics.functions import kge_skill as kge_skill
    from gagebench.metrics.functions import nse_bench as nse_bench
    from gagebench.metrics.functions import nse_skill as nse_skill
