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

from gagebench.evaluation import evaluate
from gagebench.report.html import write_report
from report_fixtures import synthetic_flows, synthetic_results, write_run

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


# Measures, in the page as laid out, every data table against its section and every
# header cell against its own box; writes the verdict into the DOM (--dump-dom prints it).
MEASURE = """
<script>
window.addEventListener("load", () => {
  const problems = [];
  for (const table of document.querySelectorAll("table.data")) {
    const caption = (table.closest(".table-scroll") || table).previousElementSibling.textContent;
    const section = table.closest("section").getBoundingClientRect();
    const box = table.getBoundingClientRect();
    if (box.right > section.right + 0.5) {
      const past = Math.round(box.right - section.right);
      problems.push(`${caption}: table ends ${past}px past its section`);
    }
    for (const th of table.querySelectorAll("th")) {
      if (th.scrollWidth > th.clientWidth + 0.5) {
        problems.push(`${caption}: header ${th.textContent} clipped`);
      }
    }
    if (caption.startsWith("Paired summary") && table.parentElement.scrollWidth >
        table.parentElement.clientWidth + 0.5) {
      problems.push(`${caption}: needs a scroll bar to be read`);
    }
  }
  const out = document.createElement("pre");
  out.id = "layout-verdict";
  out.textContent = problems.length ? problems.join("\\n") : "ALL-TABLES-FIT";
  document.body.appendChild(out);
});
</script>
"""


@pytest.mark.parametrize("width", [900, 1400])
def test_paired_summary_and_tables_fit_their_section(tmp_path: Path, width: int) -> None:
    """The paired summary's long column names (share_a_better, b_better_beyond_90) wrap
    instead of pushing the table past the page; every table stays inside its section."""
    browser = _chromium()
    # the widest paired summary: with the uncertainty suite's beyond-the-interval counts
    observed, modeled = synthetic_flows(30, models=("nwm", "nhm"), seed=3)
    results = evaluate(
        observed, modeled, suites=("standard", "dscore", "uncertainty"), n_samples=50, seed=1
    )
    run = write_run(tmp_path / "run-tables", results)
    page = Path(write_report(str(run))).read_text()
    assert "b_<wbr>better_<wbr>beyond_<wbr>90" in page
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", MEASURE + "</body>"))
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},2000",
        "--dump-dom",
        probe.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'id="layout-verdict">' in done.stdout, done.stdout[-2000:]
    verdict = done.stdout.split('id="layout-verdict">', 1)[1].split("</pre>", 1)[0]
    assert verdict == "ALL-TABLES-FIT", verdict
