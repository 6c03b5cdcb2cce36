"""Stores that cannot be read say why, through the real ``gagebench`` entry point.

Each case is a run-level error: one ERROR line naming the store and the fix, exit 2
(bad input, docs/errors.md), no traceback, nothing written. The inputs are real: a
NetCDF file, an ``s3://`` URL without a bucket, an http port nobody listens on, the
``gs://``/``az://`` protocols without their packages, a store whose consolidated
metadata was cut short.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    synthesize(str(root), n_gages=4, start="2001-01-01", end="2002-12-31", seed=2)
    return {"observed": str(root / "observed.zarr"), "model": str(root / "nwm.zarr")}


def run_cli(tmp_path: Path, observed: str, model: str, *settings: str) -> Any:
    """``gagebench run`` in ``tmp_path`` (its cwd), output under it unless set."""
    args = [
        "run",
        "--set",
        f"output={tmp_path / 'out'}",
        "--set",
        f"observed.url={observed}",
        "--set",
        f"models.nwm.url={model}",
        "--set",
        "report=false",
        "--set",
        "cluster.local.n_workers=1",
        *(part for item in settings for part in ("--set", item)),
    ]
    return subprocess.run(
        [*GAGEBENCH, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )


def one_error(result: Any, *fragments: str) -> str:
    """Exit 2, no traceback, one ERROR line holding every fragment; returns it."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def nothing_written(tmp_path: Path) -> None:
    """No file under the run's folder (empty folders are another item of the issue)."""
    assert [p.name for p in tmp_path.iterdir()] in ([], ["out"]), list(tmp_path.iterdir())
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], list(tmp_path.rglob("*"))


def test_a_netcdf_file_is_not_a_zarr_store(stores: dict[str, str], tmp_path: Path) -> None:
    nc = tmp_path.parent / f"{tmp_path.name}-obs.nc"
    xr.Dataset({"streamflow": (("time", "gage_id"), np.zeros((3, 2)))}).to_netcdf(
        nc, engine="h5netcdf"
    )
    line = one_error(run_cli(tmp_path, str(nc), stores["model"]), str(nc), "as zarr")
    assert "NetCDF-4 / HDF5 file" in line, line
    assert "set engine: netcdf" in line, line
    assert "check the URL, the credentials" not in line, line
    nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("setting", "url"),
    [("observed", "s3:///x.zarr"), ("output", "s3://")],
)
def test_an_s3_url_without_a_bucket_says_the_bucket_is_missing(
    stores: dict[str, str], tmp_path: Path, setting: str, url: str
) -> None:
    observed = url if setting == "observed" else stores["observed"]
    extra = [f"output={url}"] if setting == "output" else []
    line = one_error(run_cli(tmp_path, observed, stores["model"], *extra), f"gagebench.{setting}")
    assert "names no bucket: write s3://<bucket>/" in line, line
    assert "credentials" not in line, line
    nothing_written(tmp_path)  # s3:// once wrote a local folder "s3:" here


def test_connection_refused_on_http_is_unreachable_not_missing(
    stores: dict[str, str], tmp_path: Path, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}/observed.zarr"
    line = one_error(run_cli(tmp_path, url, stores["model"]), url, "cannot be reached")
    assert "nothing there" not in line, line
    nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("url", "package"),
    [("gs://bucket/observed.zarr", "gcsfs"), ("az://container/observed.zarr", "adlfs")],
)
def test_a_protocol_without_its_package_names_what_to_install(
    stores: dict[str, str], tmp_path: Path, url: str, package: str
) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here: the protocol works")
    one_error(run_cli(tmp_path, url, stores["model"]), url, f"pip install {package}")
    nothing_written(tmp_path)


def test_consolidated_metadata_cut_short_names_the_store_and_the_key(
    stores: dict[str, str], tmp_path: Path
) -> None:
    import shutil

    store = tmp_path.parent / f"{tmp_path.name}-cut.zarr"
    shutil.copytree(stores["observed"], store)
    meta = store / ".zmetadata"
    meta.write_bytes(meta.read_bytes()[: len(meta.read_bytes()) // 2])
    result = run_cli(tmp_path, str(store), stores["model"], "retries.max_wait_s=0.5")
    line = one_error(result, str(store), ".zmetadata", "not whole JSON")
    assert "JSONDecodeError" not in result.stderr, result.stderr
    assert "damaged object" in line, line
    nothing_written(tmp_path)


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_url_password_beside_an_authorization_header_is_one_clear_line(
    stores: dict[str, str], tmp_path: Path, closed_port: int, command: str
) -> None:
    """aiohttp refuses ``user:pass@`` in the URL with an ``Authorization`` header (a
    ``ValueError``): it was a traceback; now one line naming the conflict, no secret."""
    url = f"http://alice:pw-94d1e2@127.0.0.1:{closed_port}/observed.zarr"
    header = "storage_options.headers={Authorization: Bearer hdr-7c01aa9f}"
    if command == "run":
        result = run_cli(tmp_path, url, stores["model"], header)
    else:
        result = subprocess.run(
            [*GAGEBENCH, "report", url.removesuffix("/observed.zarr"),
             "--storage-option", header.removeprefix("storage_options.")],
            capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path,
        )  # fmt: skip
    line = one_error(result, "give either user:pass@ in the URL or an Authorization header")
    assert "pw-94d1e2" not in result.stderr + result.stdout
    assert "hdr-7c01aa9f" not in result.stderr + result.stdout
    assert "http://***@127.0.0.1" in line, line
    nothing_written(tmp_path)
