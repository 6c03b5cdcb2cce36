"""gagebench: HyTEST streamflow benchmark statistics for thousands of gages on Dask.

The public API is small and imports lazily, so ``import gagebench`` stays light:

- :func:`evaluate` - metrics for arrays / pandas / xarray objects, as a DataFrame;
- :func:`metric` - registers a user-defined metric ``f(obs, sim) -> float``;
- :func:`load_config`, :class:`RunConfig` - the one validated run configuration;
- :func:`write_report`, :func:`compare`, ``plot_*`` - the HTML report, model comparison
  and notebook figures;
- :func:`run`, :class:`RunResult` - the whole job on a Dask cluster, results to a URL;

Importing gagebench registers its retrying S3 filesystem for ``s3://`` URLs
(:mod:`gagebench.storage.objectstore`), so every store, gage list and output gets one retry layer.
"""

from __future__ import annotations

import importlib
from typing import Any

from gagebench._version import __version__
from gagebench.storage.fs import register_s3

register_s3()

_LAZY = {
    "evaluate": "gagebench.evaluation",
    "metric": "gagebench.metrics.user",
    "run": "gagebench.pipeline",
    "RunResult": "gagebench.pipeline",
    "load_config": "gagebench.config",
    "RunConfig": "gagebench.config",
    "ConfigError": "gagebench.errors",
    "GagebenchError": "gagebench.errors",
    "InputError": "gagebench.errors",
    "StorageError": "gagebench.errors",
    "ClusterError": "gagebench.errors",
    "RunError": "gagebench.errors",
    "CommitError": "gagebench.errors",
    "NoSpaceError": "gagebench.errors",
    "RunLockedError": "gagebench.errors",
    "LeaseLostError": "gagebench.errors",
    # report: figures, comparison, HTML report
    "plot_cdf": "gagebench.report.plots",
    "plot_map": "gagebench.report.plots",
    "plot_by_class": "gagebench.report.plots",
    "plot_scorecard": "gagebench.report.plots",
    "plot_comparison": "gagebench.report.plots",
    "compare": "gagebench.report.comparison",
    "write_report": "gagebench.report.html",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gagebench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
