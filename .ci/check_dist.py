#!/usr/bin/env python3
"""Check what a release ships, from the built artifacts (used by .ci/release-check and
the release workflow).

``check_dist.py dist DIR``: DIR holds exactly one wheel and one sdist of the package's
version (``src/gagebench/_version.py``). The wheel holds every module of
``src/gagebench``, the package data (gage list, sample data, map outline, default
config) byte for byte, the ``gagebench`` console script, the runtime dependencies of
pyproject.toml, and nothing else (no tests, benchmarks or docs); the sdist holds the
sources, the package data, pyproject.toml, README.md and the docs. Standard library only.

``check_dist.py chart DIR``: package ``helm/gagebench`` into DIR with the real Helm engine
(helm-python-sdk, as the chart tests use it) with chart version and appVersion set to the
package version, as the release workflow does, and check the archive: its Chart.yaml,
its values schema and templates, and that it lints.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "gagebench"
#: package data the code reads at run time (paths inside the package)
DATA = (
    "data/streamflow_gages_v1_n5390.csv",
    "data/NWM_Benchmark_SampleData.csv",
    "data/conus_outline.json",
    "gagebench.yaml",
)


def version() -> str:
    text = (PACKAGE / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise SystemExit("no __version__ in src/gagebench/_version.py")
    return match.group(1)


def fail(message: str) -> None:
    raise SystemExit(f"check_dist: {message}")


def sources() -> set[str]:
    """Package files (relative to src/) a distribution must hold: modules and data."""
    found = {
        str(p.relative_to(ROOT / "src"))
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    for rel in DATA:
        if f"gagebench/{rel}" not in found:
            fail(f"src/gagebench/{rel} is missing from the source tree")
    return found


def check_wheel(wheel: Path, expected_version: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"gagebench-{expected_version}.dist-info"
        missing = sorted(sources() - names)
        if missing:
            fail(f"{wheel.name} lacks {missing}")
        extra = sorted(n for n in names if not n.startswith(("gagebench/", dist_info + "/")))
        if extra:
            fail(f"{wheel.name} holds files outside the package: {extra[:10]}")
        for rel in DATA:
            shipped = archive.read(f"gagebench/{rel}")
            if shipped != (PACKAGE / rel).read_bytes():
                fail(f"{wheel.name}: gagebench/{rel} differs from src/gagebench/{rel}")
        metadata = email.parser.Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    if metadata["Name"] != "gagebench" or metadata["Version"] != expected_version:
        fail(f"{wheel.name}: metadata says {metadata['Name']} {metadata['Version']}")
    if not re.search(r"^gagebench = gagebench\.cli:main$", entry_points, re.M):
        fail(f"{wheel.name}: no console script gagebench = gagebench.cli:main")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    wanted = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    got = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in requires}
    if wanted != got:
        fail(f"{wheel.name}: runtime dependencies {sorted(got)} != pyproject's {sorted(wanted)}")
    extras = set(metadata.get_all("Provides-Extra") or [])
    if not {"kubernetes", "gateway"} <= extras:
        fail(f"{wheel.name}: extras {sorted(extras)} lack kubernetes/gateway")
    if "# gagebench" not in str(metadata.get_payload()):
        fail(f"{wheel.name}: no long description (README)")
    print(f"wheel ok: {wheel.name} ({len(names)} files, data: {', '.join(DATA)})")


def check_sdist(sdist: Path, expected_version: str) -> None:
    top = f"gagebench-{expected_version}"
    with tarfile.open(sdist) as archive:
        names = {n.removeprefix(top + "/") for n in archive.getnames()}
    wanted = {f"src/{rel}" for rel in sources()} | {"pyproject.toml", "README.md", "PKG-INFO"}
    missing = sorted(wanted - names)
    if missing:
        fail(f"{sdist.name} lacks {missing[:10]}")
    print(f"sdist ok: {sdist.name} ({len(names)} entries)")


def check_dist(folder: Path) -> None:
    expected = version()
    wheels = sorted(folder.glob("*.whl"))
    sdists = sorted(folder.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist in {folder}, got {wheels + sdists}")
    if wheels[0].name != f"gagebench-{expected}-py3-none-any.whl":
        fail(f"wheel {wheels[0].name} is not gagebench-{expected}-py3-none-any.whl")
    if sdists[0].name != f"gagebench-{expected}.tar.gz":
        fail(f"sdist {sdists[0].name} is not gagebench-{expected}.tar.gz")
    check_wheel(wheels[0], expected)
    check_sdist(sdists[0], expected)


def check_chart(folder: Path) -> None:
    import helm_python
    import yaml

    expected = version()
    chart_dir = ROOT / "helm" / "gagebench"
    folder.mkdir(parents=True, exist_ok=True)
    archive_path = Path(
        helm_python.package(chart_dir, destination=folder, version=expected, app_version=expected)
    )
    if archive_path.name != f"gagebench-{expected}.tgz":
        fail(f"the chart packaged as {archive_path.name}, not gagebench-{expected}.tgz")
    with tarfile.open(archive_path) as archive:
        names = set(archive.getnames())
        chart_file = archive.extractfile("gagebench/Chart.yaml")
        assert chart_file is not None
        chart = yaml.safe_load(chart_file.read())
    if chart["version"] != expected or str(chart["appVersion"]) != expected:
        fail(f"packaged chart {chart['version']} / appVersion {chart['appVersion']} != {expected}")
    for rel in ("values.yaml", "values.schema.json", "templates/job.yaml"):
        if f"gagebench/{rel}" not in names:
            fail(f"{archive_path.name} lacks gagebench/{rel}")
    result = helm_python.lint(archive_path, strict=True)
    # helm's severities: 1 info, 2 warning, 3 error
    errors = [*result.get("errors", []), *(m for m in result["messages"] if m["severity"] >= 3)]
    if errors:
        fail(f"helm lint of {archive_path.name}: {errors}")
    print(f"chart ok: {archive_path.name} (version and appVersion {expected}, {len(names)} files)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("dist", "chart"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.what == "dist":
        check_dist(args.folder)
    else:
        check_chart(args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
