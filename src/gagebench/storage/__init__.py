"""Object storage: fsspec URLs and options, one retry layer for S3, chunk integrity checks.

``fs`` resolves per-URL storage options; ``retry`` classifies storage failures and retries
them under a time budget; ``objectstore`` is s3fs with that retry layer; ``integrity``
checks fetched chunks before they are decoded; ``errors`` turns a storage failure into one
:class:`~gagebench.errors.StorageError` line (URL, cause, fix). Every reader and writer goes
through here.
"""
