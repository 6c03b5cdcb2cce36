"""The packaged defaults (``gagebench.yaml``): the one place every default is written.

A leaf module (it imports nothing of gagebench), so config, the cluster backends, the
storage retry layer and the uncertainty settings derive their defaults from it without
importing each other. Importing it registers the file as dask's config defaults, so dask
YAML files (``~/.config/dask/*.yaml``) and ``DASK_GAGEBENCH__...`` variables override it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dask.config
import yaml

#: The packaged defaults file (also dask's config defaults, under ``gagebench:``).
DEFAULTS_FILE = Path(__file__).with_name("gagebench.yaml")


def load_defaults() -> dict[str, Any]:
    """A fresh copy of ``gagebench.yaml`` as written (top-level key ``gagebench``)."""
    with DEFAULTS_FILE.open() as fh:
        return yaml.safe_load(fh)


_FILE = load_defaults()
#: ``gagebench.yaml``'s ``gagebench`` section, read-only (a copy: dask keeps the file's).
PACKAGED_DEFAULTS: Mapping[str, Any] = MappingProxyType(copy.deepcopy(_FILE["gagebench"]))
dask.config.update_defaults(_FILE)
#: The ``uncertainty`` section and its defaults (gumboot bootjack() settings).
UNCERTAINTY_DEFAULTS: Mapping[str, Any] = MappingProxyType(dict(PACKAGED_DEFAULTS["uncertainty"]))


def backend_defaults(name: str) -> Mapping[str, Any]:
    """The settings of cluster backend ``name`` with their defaults (``cluster.<name>``).

    Every accepted key is in the file; a backend without settings (``auto``) has no
    section and gets an empty mapping.
    """
    section = PACKAGED_DEFAULTS["cluster"].get(name, {})
    return MappingProxyType(copy.deepcopy(section))
