"""Reading observed and model series for a batch of gages from stores at any URL.

``interface`` is the :class:`~gagebench.sources.interface.Store` protocol the rest of
gagebench reads through; ``engines`` finds the engine of a store (``zarr``, ``reference``,
``netcdf``, entry points ``gagebench.stores``); ``arraystore``, ``zarrstore`` and
``netcdf`` implement them; ``daily`` aligns time axes on days; ``cache`` opens each store
once per process; ``sourceset`` reads batches
(:class:`~gagebench.sources.sourceset.SourceSet`); ``zarrio`` reads contiguous gage rows
chunk by chunk; ``chunked`` plans chunk-aware work units; ``crosswalk`` maps gage ids to
model features; ``units`` converts flow units.
"""
