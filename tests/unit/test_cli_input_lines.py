"""``boot-years`` and ``synth`` refuse bad input with one line and exit 2, through the real
entry point in a subprocess: no traceback, nothing written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

GAGEBENCH = Path(sys.executable).parent / "gagebench"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GAGEBENCH), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ERROR gagebench: ")
    return lines[0]


def _flows(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "flows.csv"
    days = [f"2000-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    body = [f"{day},{1 + i % 7},{2 + i % 5}" for i, day in enumerate(days)]
    path.write_text("\n".join(["date,obs,sim", *rows, *body]) + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2000-13-45,1,2", r"column 'date' row 1 holds '2000-13-45', not a date"),
        ("1999-12-31,abc,2", r"column 'obs' row 1 holds 'abc', not a number"),
        ("1999-12-31,1,2 cfs", r"column 'sim' row 1 holds '2 cfs', not a number"),
    ],
)
def test_boot_years_names_the_bad_value(tmp_path: Path, row: str, expected: str) -> None:
    out = tmp_path / "years.csv"
    line = _one_error_line(
        _cli("boot-years", str(_flows(tmp_path, [row])), "--site", "01030500", "--seed", "1",
             "-o", str(out))
    )  # fmt: skip
    assert re.search(expected, line), line
    assert "flows.csv" in line
    assert not out.exists()


@pytest.mark.parametrize("site", ["abc", "1", "USGS-12", "0103050x"])
def test_boot_years_refuses_a_malformed_site(tmp_path: Path, site: str) -> None:
    out = tmp_path / "years.csv"
    line = _one_error_line(
        _cli("boot-years", str(_flows(tmp_path, [])), "--site", site, "--seed", "1",
             "-o", str(out))
    )  # fmt: skip
    assert f"--site: malformed site number {site!r}" in line
    assert "8 to 15 digits" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--start", "yesterday"), ("--end", "2020-13-45"), ("--start", "1/2/79")]
)
def test_synth_refuses_a_date_it_cannot_read(tmp_path: Path, option: str, value: str) -> None:
    target = tmp_path / "stores"
    line = _one_error_line(_cli("synth", str(target), "--gages", "2", option, value))
    assert f"{option.removeprefix('--')} {value!r} is not a calendar day" in line
    assert "YYYY-MM-DD" in line
    assert f"synth {option}" in line
    assert not target.exists()
