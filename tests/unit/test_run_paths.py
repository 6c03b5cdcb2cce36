"""Nothing of a run is written outside its run folder: model names are validated like run
ids, and every output path is made by ``results.layout.run_path``, which refuses to leave
the folder. Canary files planted above and beside the run folder must stay untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gagebench.config import load_config
from gagebench.errors import ConfigError
from gagebench.evaluation import rows_frame
from gagebench.metrics import evaluate_arrays
from gagebench.results.layout import run_path
from gagebench.results.writer import Plan, RunSink

SUITES = ("standard", "dscore")
DATES = np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]")
HOSTILE = ["..", ".", "....", "../x", "a/b", "a\\b", "/abs", ".hidden", "", "-x", "a\nb"]


def _settings(**extra: object) -> dict[str, object]:
    return {"output": "/tmp/never-written", "observed": {"url": "/tmp/obs.zarr"}, **extra}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_names_are_refused_naming_the_rule(name: str) -> None:
    with pytest.raises(ConfigError, match=r"gagebench\.models: expected model names of"):
        load_config(overrides={"models": {name: {"url": "/tmp/m.zarr"}}, **_settings()})


@pytest.mark.parametrize("name", ["nwm-v3", "NWM_3.0", "a", "nwm-reaches"])
@pytest.mark.parametrize("how", ["mapping", "dotted", "gagebench.dotted"])
def test_model_names_are_kept_as_written(name: str, how: str) -> None:
    """As a mapping (run file, ``--set models={...}``) or a dotted ``--set`` key (where a
    name with a dot cannot be written: the dot separates keys)."""
    if "." in name and how != "mapping":
        name = name.replace(".", "-")
    store = {"url": "/tmp/m.zarr"}
    choices: dict[str, dict[str, object]] = {
        "mapping": {"models": {name: store}},
        "dotted": {f"models.{name}.url": store["url"]},
        "gagebench.dotted": {f"gagebench.models.{name}.url": store["url"]},
    }
    overrides = choices[how]
    cfg = load_config(overrides={**_settings(), **overrides})
    assert list(cfg.models) == [name]


def test_settings_inside_a_hyphenated_model_are_still_normalized() -> None:
    cfg = load_config(
        overrides={**_settings(), "models": {"nwm-v3": {"url": "/tmp/m.zarr"}}},
        **{"models.nwm-v3.storage-options": {"x-amz-request-payer": "requester"}},
    )
    assert dict(cfg.models["nwm-v3"].storage_options) == {"x-amz-request-payer": "requester"}


@pytest.mark.parametrize("part", HOSTILE)
def test_run_path_refuses_to_leave_the_run_folder(part: str) -> None:
    if part in ("-x", ".hidden", "a/b"):  # inside the folder: not model names, but paths
        assert run_path("/out/r1", part) == f"/out/r1/{part}"
        return
    with pytest.raises(ConfigError, match="is not a file name inside the run folder"):
        run_path("/out/r1", part, "standard_suite.csv")


def test_run_path_joins_paths_and_urls() -> None:
    assert run_path("/out/r1/", "_parts", "plan.json") == "/out/r1/_parts/plan.json"
    assert run_path("s3://b/out/r1", "nwm-v3/dscore.csv") == "s3://b/out/r1/nwm-v3/dscore.csv"


def _canaries(tmp_path: Path) -> dict[Path, bytes]:
    planted = {
        tmp_path / "standard_suite.csv": b"canary above\n",
        tmp_path / "dscore.csv": b"canary above\n",
        tmp_path / "out" / "standard_suite.csv": b"canary in the output root\n",
        tmp_path / "out" / "dscore.csv": b"canary in the output root\n",
        tmp_path / "out" / "other-run" / "results.parquet": b"canary beside\n",
    }
    for path, data in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return planted


@pytest.mark.parametrize("model", ["..", ".", "../..", "../other-run", "...."])
def test_a_tampered_plan_cannot_write_outside_the_run_folder(tmp_path: Path, model: str) -> None:
    """A plan whose model names were not validated (e.g. an edited plan.json) is refused
    by the writer's path function, and no canary above or beside the run changes."""
    planted = _canaries(tmp_path)
    sink = RunSink(str(tmp_path / "out" / "r1"))
    ids = ["USGS-01104200", "USGS-01104201"]
    plan = Plan("r1", (tuple(ids),), (model,), SUITES, "standard")
    rng = np.random.default_rng(0)
    obs = rng.gamma(2.0, 5.0, (2, DATES.size))
    frame = rows_frame(evaluate_arrays(obs, obs * 1.1, DATES, suites=SUITES), ids, model, DATES)
    sink.parts.start(plan)
    sink.parts.write(0, frame, SUITES)
    with (
        pytest.raises(ConfigError, match="is not a file name inside the run folder"),
        sink.commit(plan) as commit,
    ):
        commit.finish({"run_id": "r1"})
    for path, data in planted.items():
        assert path.read_bytes() == data, path
    inside = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    outside = [p for p in inside if p.parts[:2] != ("out", "r1") and tmp_path / p not in planted]
    assert outside == [], outside
    assert not (tmp_path / "out" / "r1" / "results.parquet").exists()  # unpublished


def test_results_keep_hyphenated_model_names(tmp_path: Path) -> None:
    sink = RunSink(str(tmp_path / "r1"))
    ids = ["USGS-01104200"]
    plan = Plan("r1", (tuple(ids),), ("nwm-v3",), SUITES, "standard")
    obs = np.random.default_rng(1).gamma(2.0, 5.0, (1, DATES.size))
    sink.parts.start(plan)
    frame = rows_frame(evaluate_arrays(obs, obs * 0.9, DATES, suites=SUITES), ids, "nwm-v3", DATES)
    sink.parts.write(0, frame, SUITES)
    with sink.commit(plan) as commit:
        commit.finish({"run_id": "r1", "outputs": list(commit.facts.outputs)})
    assert (tmp_path / "r1" / "nwm-v3" / "standard_suite.csv").exists()
    assert set(pd.read_parquet(tmp_path / "r1" / "results.parquet")["model"]) == {"nwm-v3"}


def test_a_config_built_by_hand_with_a_hostile_name_is_refused_before_running() -> None:
    from dataclasses import replace

    from gagebench.pipeline import run

    cfg = load_config(overrides={**_settings(), "models": {"nwm": {"url": "/tmp/m.zarr"}}})
    hostile = replace(cfg, models={"..": cfg.models["nwm"]})
    with pytest.raises(ConfigError, match=r"gagebench\.models: expected model names"):
        run(hostile)
    assert not Path("/tmp/never-written").exists()


def test_a_run_folder_apart_from_its_inputs_by_scheme_links_and_slashes(tmp_path: Path) -> None:
    """The run folder is compared with each input as the file systems see them: s3a:// as
    s3://, trailing slashes, file:// and symbolic links of local paths."""
    from gagebench.errors import ConfigError
    from gagebench.results.layout import check_apart

    check_apart("s3://b/runs/r1", {"the observed store": "s3://b/stores/o.zarr"})
    check_apart("s3://b/runs/r1", {"the observed store": "s3://b/runs/r10"})  # a sibling
    with pytest.raises(ConfigError, match="is inside the observed store"):
        check_apart("s3a://b/o.zarr/r1", {"the observed store": "s3://b/o.zarr/"})
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="holds the gage list"):
        check_apart(f"file://{tmp_path}/link", {"the gage list": str(tmp_path / "real/g.csv")})
