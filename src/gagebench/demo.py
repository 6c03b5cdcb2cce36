"""The stores and settings of ``gagebench demo``: synthetic stores cached between demos.

Stores live in ``<stores_dir>/seed-<seed>-gages-<n>/``, keyed by their settings, so a
quick ``--gages 500`` never replaces the full stores; ``demo-stores.json`` marks a folder
complete and holds the config fragment that points a run at it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from gagebench._version import __version__

log = logging.getLogger("gagebench")

#: Suites of ``gagebench demo`` (``--set suites=...`` overrides): the uncertainty suite is
#: included because the 5390-gage demo with it stays under 3 minutes on 2 cores
#: (benchmarks/README.md).
DEMO_SUITES = ("standard", "dscore", "uncertainty")
#: The demo's models, both daily.
DEMO_MODELS = ("nwm", "nhm")
_MARKER = "demo-stores.json"


def demo_stores(stores_dir: Path, n_gages: int, seed: int) -> dict[str, Any]:
    """Synthesize the demo's daily stores, or reuse stores a previous demo left complete.

    A gage's values depend only on the seed and its id, so complete stores of at least
    ``n_gages`` gages (same seed and version) serve any smaller demo: the run reads their
    first ``n_gages`` gages. A half-written folder (no marker) is synthesized again.
    Returns the config fragment (``gages``, ``observed``, ``models``...) of the stores.
    """
    wanted = {"seed": seed, "models": list(DEMO_MODELS), "version": __version__}
    cached = _cached(stores_dir, wanted, n_gages)
    if cached is not None:
        return cached
    return _synthesize(stores_dir / f"seed-{seed}-gages-{n_gages}", wanted, n_gages)


def _cached(stores_dir: Path, wanted: dict[str, Any], n_gages: int) -> dict[str, Any] | None:
    """The config of the smallest complete stores made with ``wanted`` that hold enough gages."""
    best: tuple[int, dict[str, Any], Path] | None = None
    for marker in sorted(stores_dir.glob(f"seed-*-gages-*/{_MARKER}")):
        try:
            saved = json.loads(marker.read_text())
            settings = dict(saved["settings"])
            size = int(settings.pop("n_gages"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if settings == wanted and size >= n_gages and (best is None or size < best[0]):
            best = (size, dict(saved["config"]), marker.parent)
    if best is None:
        return None
    log.info("reusing the demo stores in %s (delete the folder to redo them)", best[2])
    return best[1]


def _synthesize(folder: Path, wanted: dict[str, Any], n_gages: int) -> dict[str, Any]:
    """Write the stores in ``folder``, then the marker that says they are complete."""
    from gagebench.synth import synthesize

    t0 = time.perf_counter()
    log.info("synthesizing daily stores for %d gages (nwm, nhm) in %s", n_gages, folder)
    stores = synthesize(
        str(folder), n_gages=n_gages, models=DEMO_MODELS, frequency="daily", seed=wanted["seed"]
    )
    log.info("stores ready in %.1f s", time.perf_counter() - t0)
    config = dict(stores.to_config_dict())
    (folder / _MARKER).write_text(
        json.dumps({"settings": {**wanted, "n_gages": n_gages}, "config": config}, indent=2)
    )
    return config


def demo_settings(stores_dir: Path, output: Path, n_gages: int, seed: int) -> dict[str, Any]:
    """The demo run's settings: its stores (cached), output, gage count, suites, local cluster.

    ``--set`` overrides are applied on top of these by the caller.
    """
    settings = demo_stores(stores_dir, n_gages, seed)
    settings.update({"output": str(output), "gage_limit": n_gages})
    settings["suites"] = list(DEMO_SUITES)
    settings["cluster.backend"] = "local"
    return settings
