"""A run folder: where its files go (``layout``), how they are written (``writer``), read
back (``reader``, for the report, compare and resume alike), leased (``lock``) and which
settings a finished run was computed with (``settings``).
"""
