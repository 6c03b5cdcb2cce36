"""The one canonical form of a gage id, used by gage lists, stores, crosswalks and results.

A gage id is ``USGS-<site number>``: bytes are decoded and stripped (space or NUL padded,
as the raw NWM store holds them), a bare site number ``01011000`` gets the ``USGS-``
prefix, integers (which cannot hold leading zeros) and numbers of fewer than 8 digits
(an integer written back as text: ``1011000``; USGS site numbers have 8 to 15) are
zero-padded to 8 digits first, and other text (``gage_a``, ``USGS-01011000``) is kept as
it is. Matching is on the exact string, so leading zeros matter. A blank entry has no id
(None).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The prefix of a USGS gage id: ``USGS-`` + site number.
ID_PREFIX = "USGS-"
#: The fewest digits of a USGS site number: shorter numbers lost their leading zeros.
SITE_DIGITS = 8


def canonical_id(value: Any) -> str | None:
    """The canonical gage id of a store, list, crosswalk or results entry; None when blank."""
    if isinstance(value, bytes | np.bytes_):
        text = bytes(value).decode("utf-8", errors="replace").strip().strip("\x00")
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        text = str(int(value))
    else:
        text = str(value).strip()
    if not text:
        return None
    return ID_PREFIX + text.zfill(SITE_DIGITS) if text.isdigit() else text


def canonical_ids(values: Any) -> list[str | None]:
    """:func:`canonical_id` of each entry; fast on millions of mostly blank byte strings."""
    array = np.asarray(values)
    if array.dtype.kind == "S":
        stripped = np.char.strip(array)
        out: list[str | None] = [None] * len(array)
        for pos in np.flatnonzero(stripped != b""):
            out[int(pos)] = canonical_id(stripped[pos])
        return out
    return [canonical_id(v) for v in array.tolist()]


def site_no(gage_id: Any) -> str:
    """The site number of a gage id (``USGS-01011000`` -> ``01011000``), stripped; other
    text is returned stripped as it is."""
    return str(gage_id).strip().removeprefix(ID_PREFIX)
