"""gagebench.demo: the demo run's settings over cached synthetic stores."""

from __future__ import annotations

import json
from pathlib import Path

from gagebench._version import __version__
from gagebench.config import load_config
from gagebench.demo import DEMO_SUITES, demo_settings


def test_demo_settings_reuse_complete_stores_and_run_every_suite_locally(tmp_path: Path) -> None:
    folder = tmp_path / "stores" / "seed-0-gages-10"
    folder.mkdir(parents=True)
    stores = {
        "gages": "builtin",
        "gage_limit": 10,
        "observed": {"url": str(folder / "observed.zarr"), "variable": "streamflow"},
        "models": {
            name: {"url": str(folder / f"{name}.zarr"), "variable": "streamflow"}
            for name in ("nwm", "nhm")
        },
    }
    wanted = {"seed": 0, "models": ["nwm", "nhm"], "version": __version__, "n_gages": 10}
    (folder / "demo-stores.json").write_text(json.dumps({"settings": wanted, "config": stores}))
    settings = demo_settings(tmp_path / "stores", tmp_path / "out", 4, seed=0)
    assert settings["observed"] == stores["observed"]  # served by the 10-gage stores
    assert settings["gage_limit"] == 4
    assert settings["output"] == str(tmp_path / "out")
    config = load_config(overrides=settings)
    assert tuple(config.suites) == DEMO_SUITES
    assert config.cluster.backend == "local"
    assert sorted(config.models) == ["nhm", "nwm"]
