"""``.ci/check_dist.py`` (run by ``.ci/release-check`` and the release workflow) refuses
what a broken release would ship: a wheel without its package data, with stale data, with
files outside the package or without its console script. The wheels here are built by
hand from ``src/`` (no network); ``.ci/release-check`` checks the real ``python -m build``
output the same way.
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / ".ci" / "check_dist.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_dist = _load()
VERSION = check_dist.version()
DIST_INFO = f"gagebench-{VERSION}.dist-info"


def _metadata() -> str:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = ["Metadata-Version: 2.4", "Name: gagebench", f"Version: {VERSION}"]
    lines += [f"Requires-Dist: {dep}" for dep in project["dependencies"]]
    lines += [f"Provides-Extra: {extra}" for extra in project["optional-dependencies"]]
    return "\n".join(lines) + "\n\n# gagebench\n"


def _wheel(folder: Path, edit: Callable[[dict[str, bytes]], None] = lambda files: None) -> Path:
    files = {
        str(p.relative_to(ROOT / "src")): p.read_bytes()
        for p in (ROOT / "src" / "gagebench").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    files[f"{DIST_INFO}/METADATA"] = _metadata().encode()
    files[f"{DIST_INFO}/entry_points.txt"] = b"[console_scripts]\ngagebench = gagebench.cli:main\n"
    edit(files)
    path = folder / f"gagebench-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_a_complete_wheel_passes(tmp_path: Path) -> None:
    check_dist.check_wheel(_wheel(tmp_path), VERSION)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.pop("gagebench/data/streamflow_gages_v1_n5390.csv"), "lacks"),
        (lambda f: f.pop("gagebench/gagebench.yaml"), "lacks"),
        (lambda f: f.pop("gagebench/report/templates/report.html.j2"), "lacks"),
        (lambda f: f.update({"gagebench/data/conus_outline.json": b"{}"}), "differs"),
        (lambda f: f.update({"tests/conftest.py": b""}), "outside the package"),
        (lambda f: f.update({f"{DIST_INFO}/entry_points.txt": b""}), "console script"),
    ],
    ids=[
        "no gage list",
        "no default config",
        "no report template",
        "stale outline",
        "tests shipped",
        "no script",
    ],
)
def test_a_broken_wheel_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, bytes]], None], message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        check_dist.check_wheel(_wheel(tmp_path, edit), VERSION)


def test_the_chart_is_packaged_with_the_package_version(tmp_path: Path) -> None:
    pytest.importorskip("helm_python", reason="pip install helm-python-sdk (in .[test])")
    check_dist.check_chart(tmp_path)
    assert (tmp_path / f"gagebench-{VERSION}.tgz").is_file()
