"""Reading observed and model series for a batch of gages from zarr stores at any URL.

``stores`` opens stores and reads batches (:class:`~gagebench.sources.stores.SourceSet`);
``zarrio`` reads contiguous gage rows chunk by chunk; ``chunked`` plans chunk-aware work
units; ``crosswalk`` maps gage ids to model features; ``units`` converts flow units.
"""
