"""The report rendered by a real browser: headless Chromium (Debian package ``chromium``).

Chromium runs with networking features off and a throw-away profile, loads the report
from a ``file://`` URL and writes a screenshot; the screenshot must be full size, show the
page's header colour and many distinct colours (figures drawn, not a blank page).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from gagebench.report.html import write_report
from report_fixtures import synthetic_results, write_run

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 4000
HEADER_RGB = (0x16, 0x42, 0x5B)  # the header background (report/templates/report.css)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine: `apt-get install -y chromium` (.ci/run does)")


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    run = write_run(tmp_path / "run-browser", synthetic_results(60, models=("nwm", "nhm")))
    report = Path(write_report(str(run)))
    shot = tmp_path / "shot.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        report.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists(), done.stderr[-2000:]
    # A resource the page failed to load would be logged as a console error.
    assert "ERR_FILE_NOT_FOUND" not in done.stderr
    assert "Failed to load resource" not in done.stderr
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = np.round(pixels * 255).astype(int)
    header = rgb[20, WIDTH // 2]
    assert np.abs(header - np.array(HEADER_RGB)).max() <= 2, header
    colors = np.unique(rgb.reshape(-1, 3), axis=0)
    assert len(colors) > 500, f"only {len(colors)} colours: figures did not render"
    not_background = np.any(rgb < 240, axis=-1).mean()
    assert not_background > 0.05
