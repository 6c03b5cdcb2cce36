"""Streamflow units of a store: its CF ``units`` attribute (or a per-store override) to m3/s.

The metrics compare observed and modeled flows, so both must be in the same units; the
engine works in m3/s. NHM publishes ``seg_outflow`` in ft3/s: read as m3/s it would be
35x too large (a median NSE of about -3000, with no other symptom). The usual spellings
of both units are recognized; anything else is refused, because guessing a unit silently
gives wrong metrics. A store without a ``units`` attribute is taken as m3/s (HyTEST's
stores and most zarr copies carry one; the caller warns once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gagebench.errors import InputError

#: One cubic foot in cubic metres (0.3048 m per international foot, cubed).
FT3_TO_M3 = 0.3048**3

_M3S = ("m3 s-1", "m3/s", "m^3/s", "m3.s-1", "m3 s^-1", "m^3 s^-1", "m**3 s**-1", "cms")
_FT3S = (
    "ft3 s-1",
    "ft3/s",
    "ft^3/s",
    "ft3.s-1",
    "ft3 s^-1",
    "ft^3 s^-1",
    "ft**3 s**-1",
    "cfs",
    "cubic feet per second",
    "cubic_feet_per_second",
)
_M3S_WORDS = ("cubic meters per second", "cubic metres per second", "cubic_meters_per_second")


def _canon(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


_FACTORS = {
    **{_canon(u): 1.0 for u in (*_M3S, *_M3S_WORDS)},
    **{_canon(u): FT3_TO_M3 for u in _FT3S},
}


@dataclass(frozen=True)
class Units:
    """The units a store's values are in, where they came from, and the factor to m3/s."""

    units: str | None
    source: str  # "attribute", "setting" or "missing"
    factor: float

    def manifest_entry(self) -> dict[str, object]:
        """What the manifest records for a store."""
        return {
            "units": self.units,
            "units_from": self.source,
            "to_m3_per_s": self.factor,
            "converted": self.factor != 1.0,
        }


def resolve_units(attribute: object, setting: str | None, label: str, url: str) -> Units:
    """The store's :class:`Units`: ``setting`` (per-store ``units:``) over the attribute.

    Raises :class:`InputError` for units that are not a recognized spelling of m3/s or
    ft3/s, naming the store and the ``units`` setting that overrides the attribute.
    """
    if setting is not None:
        text, source = str(setting), "setting"
    elif attribute is None or (isinstance(attribute, str) and not attribute.strip()):
        return Units(None, "missing", 1.0)
    else:
        text, source = str(attribute), "attribute"
    factor = _FACTORS.get(_canon(text))
    if factor is None:
        where = "its 'units' setting" if source == "setting" else "its units attribute"
        raise InputError(
            f"the {label} store {url!r}: unknown streamflow units {text!r} ({where}); "
            "gagebench converts m3/s ('m3 s-1', 'm3/s', 'cms') and ft3/s ('ft3 s-1', "
            "'ft3/s', 'cfs'): set the store's 'units' to one of them"
        )
    return Units(text, source, factor)
