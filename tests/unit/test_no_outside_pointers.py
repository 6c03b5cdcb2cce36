"""The project stands alone: nothing in it points to files outside the repository.

Users get the repository (or the wheel/sdist), never the folders it was developed beside,
so no source, test, doc, chart or CI file may read or cite a sibling ``shared`` folder or
a design file that is not in the repository; test data lives in ``tests/data``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What may not appear (split so that this file does not match itself).
FORBIDDEN = (
    "../" + "shared",
    "/work/" + "shared",
    "/work/" + "main",
    "DESIGN" + ".md",
)
#: Generated, cached or vendored folders: not the project's own text.
SKIP_PARTS = {
    ".git",
    ".venv",
    "__pycache__",
    "_build",
    "generated",
    "jupyter_execute",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "node_modules",
    "build",
    "dist",
    "demo-output",
    "gagebench-output",
    "runs",
    "reports",
    "scratch",
}
SKIP_SUFFIXES = {".png", ".jpg", ".gif", ".ico", ".parquet", ".zarr", ".pyc", ".nbc", ".nbi"}


def _project_files() -> list[Path]:
    """The project's files: git's tracked and new (not ignored) files, else a walk that
    leaves out generated, cached and output folders (an unpacked sdist has no .git)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0 and listed.stdout:
        candidates = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    else:
        candidates = [p for p in ROOT.rglob("*") if not set(p.relative_to(ROOT).parts) & SKIP_PARTS]
    return [
        path
        for path in candidates
        if path.is_file()
        and path.suffix not in SKIP_SUFFIXES
        and path.stat().st_size < 5_000_000
        and not set(path.relative_to(ROOT).parts) & SKIP_PARTS
    ]


def test_the_scan_sees_the_project() -> None:
    """The scan below covers source, tests, docs, chart and CI files (not an empty list)."""
    seen = {p.relative_to(ROOT).as_posix() for p in _project_files()}
    for expected in (
        "src/gagebench/pipeline.py",
        "tests/unit/test_uncertainty.py",
        "docs/architecture.md",
        "README.md",
        ".ci/run",
        "helm/gagebench/Chart.yaml",
        "tests/data/README.md",
    ):
        assert expected in seen, expected


@pytest.mark.parametrize("needle", FORBIDDEN)
def test_nothing_points_outside_the_project(needle: str) -> None:
    hits = []
    for path in _project_files():
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), 1):
            if needle in line:
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, f"{needle!r} points outside the project:\n" + "\n".join(hits)


def test_the_test_data_is_in_the_repository() -> None:
    """gumboot's sample gage is read from tests/data, with its source and license recorded."""
    readme = (ROOT / "tests" / "data" / "README.md").read_text(encoding="utf-8")
    data = ROOT / "tests" / "data"
    files = [p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()]
    for name in (f for f in files if f != "README.md" and "__pycache__" not in f):
        assert f"`{name}`" in readme, f"tests/data/{name} has no source/license row"
    assert "GPL-3" in readme
    assert "gumboot" in readme
