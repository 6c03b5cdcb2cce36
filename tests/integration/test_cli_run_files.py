"""Run files through the real ``gagebench`` entry point in a subprocess: hostile or broken
files are refused in one line (exit 2, no traceback) and quickly, before anything is
created; relative paths are read against the run file's folder; model names stay as
written (folders, columns, ``compare``); nothing is written outside the run folder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def gagebench(*args: str, cwd: Path | None = None, timeout: float = 120) -> Any:
    return subprocess.run(
        [*GAGEBENCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def one_clean_error(result: Any, code: int, text: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]
    return errors[0]


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "gagebench:\n" + "\n".join("  " + line for line in lines) + "\n  output: out\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_alias_bomb(), "its aliases expand to more than 100000 values"),
        (b"gagebench:\n  output: caf\xe9\n", "is not UTF-8 text (byte 24 is b'\\xe9')"),
        (b"gagebench:\n", "its gagebench: section is empty"),
        (b"gagebench: 5\n", "its gagebench: section is not a mapping (int)"),
        ("a: &a [1, *a]\n", "an alias refers to the value that contains it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "config file"),
        ("# padding\n" * 40_000, "is larger than 256 KiB"),
    ],
    ids=["alias-bomb", "not-utf8", "empty-section", "scalar-section", "self-alias", "deep", "big"],
)
def test_hostile_or_broken_run_files_are_refused_at_once(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    run_file = tmp_path / "run.yaml"
    if isinstance(content, str):
        content = content.encode()
    run_file.write_bytes(content)
    t0 = time.perf_counter()
    result = gagebench("run", "--config", str(run_file), "--set", f"output={tmp_path / 'out'}")
    elapsed = time.perf_counter() - t0
    line = one_clean_error(result, 2, message)
    assert str(run_file) in line
    # the interpreter and imports take most of it; the file itself well under a second
    assert elapsed < 20, elapsed
    assert not (tmp_path / "out").exists()


def test_the_alias_check_is_fast_in_process(tmp_path: Path) -> None:
    from gagebench.config import read_config_file
    from gagebench.errors import ConfigError

    run_file = tmp_path / "bomb.yaml"
    run_file.write_text(_alias_bomb(levels=12, width=10))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="alias bomb"):
        read_config_file(run_file)
    assert time.perf_counter() - t0 < 0.5


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("project")
    synthesize(
        str(root / "stores"),
        n_gages=6,
        start="2001-01-01",
        end="2003-12-31",
        models=("nwm-v3", "nhm"),
        seed=3,
    )
    return root


def _run_file(folder: Path, **settings: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    base = {
        "gage_limit": 6,
        "report": False,
        "batch_size": 3,
        "run_id": "r1",
        "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    }
    path.write_text(yaml.safe_dump({"gagebench": {**base, **settings}}))
    return path


def test_relative_paths_follow_the_run_file_and_names_stay_as_written(stores: Path) -> None:
    """Run from another folder: the run file's relative stores and output are found
    beside it; ``nwm-v3`` keeps its hyphen in the folder, the rows and ``compare``."""
    run_file = _run_file(
        stores / "runs",
        observed="../stores/observed.zarr",
        models={"nwm-v3": {"url": "../stores/nwm-v3.zarr"}, "nhm": "../stores/nhm.zarr"},
        output="out",
    )
    elsewhere = stores / "elsewhere"
    elsewhere.mkdir()
    done = gagebench("run", "-c", str(run_file), "-q", cwd=elsewhere, timeout=300)
    assert done.returncode == 0, done.stderr
    run_dir = stores / "runs" / "out" / "r1"
    assert (run_dir / "manifest.json").exists(), list(stores.rglob("*"))
    assert (run_dir / "nwm-v3" / "standard_suite.csv").exists()
    assert not (run_dir / "nwm_v3").exists()
    assert list(elsewhere.iterdir()) == []
    results = pd.read_parquet(run_dir / "results.parquet")
    assert set(results["model"]) == {"nwm-v3", "nhm"}
    compared = gagebench("compare", str(run_dir), "--models", "nwm-v3", "nhm")
    assert compared.returncode == 0, compared.stderr
    assert "nwm-v3" in compared.stdout


def test_set_values_stay_relative_to_the_current_folder(stores: Path, tmp_path: Path) -> None:
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(stores / "stores" / "observed.zarr"),
        models={"nhm": str(stores / "stores" / "nhm.zarr")},
        output="in-cfg",
        gages="no-such-list.csv",
    )
    # the run file's gage list is read beside it (and is missing there)
    refused = gagebench("run", "-c", str(run_file), cwd=tmp_path)
    one_clean_error(refused, 2, str(tmp_path / "cfg" / "no-such-list.csv"))
    # a --set value is relative to the current folder
    refused = gagebench("run", "-c", str(run_file), "--set", "gages=mine.csv", cwd=tmp_path)
    one_clean_error(refused, 2, "mine.csv")
    assert str(tmp_path / "cfg" / "mine.csv") not in refused.stderr
    assert not (tmp_path / "cfg" / "in-cfg").exists()


def _plant(root: Path) -> dict[Path, bytes]:
    planted = {
        root / "standard_suite.csv": b"canary above the output\n",
        root / "out" / "standard_suite.csv": b"canary in the output root\n",
        root / "out" / "dscore.csv": b"canary in the output root\n",
        root / "out" / "other" / "results.parquet": b"canary beside the run\n",
    }
    for path, data in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return planted


@pytest.mark.parametrize("model", ["..", ".", "....", "../other", ".hidden"])
def test_hostile_model_names_are_refused_and_nothing_is_written(
    stores: Path, tmp_path: Path, model: str
) -> None:
    planted = _plant(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(stores / "stores" / "observed.zarr"),
        models={model: str(stores / "stores" / "nhm.zarr")},
        output=str(tmp_path / "out"),
    )
    refused = gagebench("run", "-c", str(run_file))
    line = one_clean_error(refused, 2, "gagebench.models: expected model names of letters")
    assert repr(model) in line
    for path, data in planted.items():
        assert path.read_bytes() == data
    assert sorted(tmp_path.rglob("*")) == sorted([*before, run_file.parent, run_file])


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["report.html"], "is the name of a file of the run folder"),
        (["figures"], "is the name of a file of the run folder"),
        (["Manifest.JSON"], "is the name of a file of the run folder"),
        (["results.parquet"], "is the name of a file of the run folder"),
        (["nwm", "NWM"], "would share one folder on case-insensitive file systems"),
        (["nwm", "nwm."], "would share one folder on case-insensitive file systems"),
        (["CON"], "names a device on Windows"),
        (["nul.v2"], "names a device on Windows"),
    ],
    ids=["report", "figures", "manifest", "results", "case", "trailing-dot", "con", "nul"],
)
def test_model_names_that_collide_in_the_run_folder_are_refused(
    stores: Path, tmp_path: Path, models: list[str], message: str
) -> None:
    """A model named ``report.html`` or ``results.parquet`` made a folder where the run
    writes its own file (the commit then wrote into it and the run failed after the
    compute); ``NWM`` and ``nwm`` are one folder on macOS and Windows."""
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(stores / "stores" / "observed.zarr"),
        models={name: str(stores / "stores" / "nhm.zarr") for name in models},
        output=str(tmp_path / "out"),
    )
    refused = gagebench("run", "-c", str(run_file))
    line = one_clean_error(refused, 2, message)
    assert repr(models[-1]) in line
    assert not (tmp_path / "out").exists(), list((tmp_path / "out").rglob("*"))


def test_a_refused_gage_list_leaves_no_run_folder(stores: Path, tmp_path: Path) -> None:
    gages = tmp_path / "gages.csv"
    gages.write_text("site_no\n01104200\n01104200\n")
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(stores / "stores" / "observed.zarr"),
        models={"nhm": str(stores / "stores" / "nhm.zarr")},
        output=str(tmp_path / "out"),
        gages=str(gages),
    )
    refused = gagebench("run", "-c", str(run_file))
    one_clean_error(refused, 2, "duplicate site numbers")
    assert not (tmp_path / "out").exists(), list((tmp_path / "out").rglob("*"))


@pytest.mark.parametrize(
    ("models", "name"),
    [("observed", "observed"), ("nwm,Observed", "Observed"), ("nwm,NWM", "NWM"), ("a,a.", "a.")],
    ids=["observed", "observed-case", "case", "trailing-dot"],
)
def test_synth_refuses_model_names_that_share_a_store(
    tmp_path: Path, models: str, name: str
) -> None:
    """``synth --models observed`` wrote the model store over observed.zarr (a model then
    scored against itself); ``nwm,NWM`` are one store on macOS and Windows."""
    refused = gagebench(
        "synth", "--gages", "2", "--start", "2001-01-01", "--end", "2001-03-01",
        "--models", models, str(tmp_path / "stores"),
    )  # fmt: skip
    line = one_clean_error(refused, 2, "would be the same as that of")
    assert repr(name) in line
    assert not (tmp_path / "stores").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("gagebench: [unclosed\n", "is malformed"),
        ("gagebench:\n  storage_options:\n    x: " + "[" * 5000 + "]" * 5000 + "\n", "malformed"),
        (_alias_bomb().replace("  output: out\n", "  storage_options: {x: *a8}\n"), "alias bomb"),
    ],
    ids=["broken", "deep", "alias-bomb"],
)
def test_a_hostile_or_broken_dask_config_file_is_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    """dask reads the YAML files of $DASK_CONFIG when it is imported: a broken one was a
    ``ValueError`` traceback before any command ran, an alias bomb grew memory without
    bound."""
    import os

    folder = tmp_path / "dask"
    folder.mkdir()
    (folder / "gagebench.yaml").write_text(content)
    t0 = time.perf_counter()
    result = subprocess.run(
        [*GAGEBENCH, "run", "--set", f"output={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DASK_CONFIG": str(folder)},
    )
    line = one_clean_error(result, 2, message)
    assert str(folder) in line or "dask config" in line, line
    assert time.perf_counter() - t0 < 20
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("output", "run_id", "where"),
    [
        ("data", "nhm.zarr", "is the model 'nhm' store"),
        (".", "data", "holds the observed store"),
        ("data/nhm.zarr", "r1", "is inside the model 'nhm' store"),
    ],
    ids=["is-a-store", "holds-the-stores", "inside-a-store"],
)
def test_a_run_folder_that_is_or_holds_an_input_store_is_refused(
    stores: Path, tmp_path: Path, output: str, run_id: str, where: str
) -> None:
    """``--force`` deletes the run folder before computing again: with ``output: data``
    and ``run_id: nhm.zarr`` it deleted the model store itself (and a run folder
    holding the stores deleted them all). Refused before anything is touched."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(stores / "stores" / "observed.zarr", data / "observed.zarr")
    shutil.copytree(stores / "stores" / "nhm.zarr", data / "nhm.zarr")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(data / "observed.zarr"),
        models={"nhm": str(data / "nhm.zarr")},
        output=str(tmp_path / output),
        run_id=run_id,
    )
    refused = gagebench("run", "-c", str(run_file), "--force")
    one_clean_error(refused, 2, where)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != run_file}
    assert after == before


@pytest.mark.parametrize("force", [False, True])
def test_a_run_folder_that_is_not_a_run_is_left_alone(
    stores: Path, tmp_path: Path, force: bool
) -> None:
    """``--set output=$HOME --set run_id=Documents --force`` deleted everything in
    ~/Documents (``--force`` clears the run folder); without ``--force`` the run wrote
    its files among them. A folder without ``_parts``, ``_lock.json`` or
    ``manifest.json`` is refused before anything is touched."""
    documents = tmp_path / "home" / "Documents"
    documents.mkdir(parents=True)
    (documents / "thesis.txt").write_text("precious")
    run_file = _run_file(
        tmp_path / "cfg",
        observed=str(stores / "stores" / "observed.zarr"),
        models={"nhm": str(stores / "stores" / "nhm.zarr")},
        output=str(tmp_path / "home"),
        run_id="Documents",
    )
    refused = gagebench("run", "-c", str(run_file), *(["--force"] if force else []))
    one_clean_error(refused, 2, "exists and is not a gagebench run folder (it holds 'thesis.txt')")
    assert [p.name for p in documents.iterdir()] == ["thesis.txt"]
    assert (documents / "thesis.txt").read_text() == "precious"
