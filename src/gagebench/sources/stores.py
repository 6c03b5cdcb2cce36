"""The run's sources under their former names; each job now has its own module.

- :mod:`gagebench.sources.interface`: the :class:`Store` protocol and :class:`StoreEngine`;
- :mod:`gagebench.sources.engines`: engines by name (``zarr``, ``reference``, ``netcdf``,
  the ``gagebench.stores`` entry points);
- :mod:`gagebench.sources.arraystore`: what every ``(time, gage)`` store shares (gage
  index, CF decoding, units, daily alignment, manifest facts, warnings);
- :mod:`gagebench.sources.zarrstore`, :mod:`gagebench.sources.netcdf`: the engines;
- :mod:`gagebench.sources.daily`: calendar days and hourly values to daily means;
- :mod:`gagebench.sources.cache`: each store opened once per process;
- :mod:`gagebench.sources.sourceset`: :class:`SourceSet`, a run's observed and model
  stores read a batch at a time;
- :mod:`gagebench.ids`: the one canonical gage id.
"""

from __future__ import annotations

from gagebench.sources.cache import clear_cache, open_store
from gagebench.sources.daily import daily_days, subdaily_to_daily
from gagebench.sources.sourceset import OBSERVED, Batch, SourceSet, overlap_warning

__all__ = [
    "OBSERVED",
    "Batch",
    "SourceSet",
    "clear_cache",
    "daily_days",
    "open_store",
    "overlap_warning",
    "subdaily_to_daily",
]
