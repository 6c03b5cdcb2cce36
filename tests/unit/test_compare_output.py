"""``gagebench compare --output x.html`` writes one self-contained page and nothing else:
no ``figures/`` folder in the current directory (the page's folder for a bare file
name), its figure embedded; the report still writes its ``figures/`` in the run folder.
Through the real entry point, in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from report_fixtures import synthetic_results, write_run

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def _gagebench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAGEBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_compare_to_an_html_file_writes_only_that_file(tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs" / "r1", synthetic_results(20, models=("nwm", "nhm"), seed=3))
    work = tmp_path / "work"
    work.mkdir()
    result = _gagebench(work, "compare", str(run), "--models", "nwm", "nhm", "--output", "x.html")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["x.html"]  # no figures/ beside it
    page = (work / "x.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page
    assert "figures/" not in page  # no caption pointing to a folder that is not there

    args = ("compare", str(run), "--models", "nwm", "nhm", "--output", "out/c.html")
    nested = _gagebench(work, *args)
    assert nested.returncode == 0, nested.stderr
    assert sorted(p.name for p in (work / "out").iterdir()) == ["c.html"]


def test_the_report_still_writes_its_figures_in_the_run_folder(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r1", synthetic_results(20, models=("nwm", "nhm"), seed=3))
    result = _gagebench(tmp_path, "report", str(run))
    assert result.returncode == 0, result.stderr
    assert (run / "report.html").exists()
    assert any((run / "figures").glob("*.png"))
    assert "figures/" in (run / "report.html").read_text(encoding="utf-8")
