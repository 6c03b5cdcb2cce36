"""Realistic results for report tests: synthetic flows at real gage locations -> evaluate.

Flows are scaled by drainage area with a seasonal cycle, storm events, some intermittent
(zero-flow) gages and NaN gaps; each model adds its own per-gage bias, noise and timing
error, so NSE/KGE spread across gages roughly as in HyTEST's published results. The
metrics are computed by the real engine (``gagebench.evaluate``), and the run folder is
written in the layout of docs/user-guide/outputs.md (results.parquet, HyTEST CSVs,
manifest.json).
``check_report`` parses a written report and checks that it is self-contained.
"""

from __future__ import annotations

import base64
import json
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

import gagebench
from gagebench.evaluation import evaluate
from gagebench.metrics import DSCORE_COLUMNS, STANDARD_COLUMNS

GAGE_CSV = Path(gagebench.__file__).parent / "data" / "streamflow_gages_v1_n5390.csv"
MODEL_ERRORS = {  # model: (bias sigma, noise sigma range, max lag in days)
    "nwm": (0.25, (0.15, 0.7), 1),
    "nhm": (0.3, (0.15, 0.65), 2),
    "lstm": (0.12, (0.05, 0.35), 1),
}


def synthetic_flows(
    n_gages: int = 300, n_days: int = 1096, models: tuple[str, ...] = ("nwm", "nhm"), seed: int = 7
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Observed and modeled daily flows (time x gage DataFrames) at real gage ids."""
    rng = np.random.default_rng(seed)
    gages = pd.read_csv(GAGE_CSV, dtype={"site_no": str})
    picked = gages.sample(n_gages, random_state=seed).reset_index(drop=True)
    dates = pd.date_range("2001-01-01", periods=n_days, freq="D")
    doy = dates.day_of_year.to_numpy()
    area = picked["drain_sqkm"].fillna(500.0).to_numpy()
    phase = rng.uniform(0, 365, n_gages)[:, None]
    seasonal = 1.0 + 0.7 * np.sin(2 * np.pi * (doy[None, :] - phase) / 365.25)
    impulses = rng.exponential(1.0, (n_gages, n_days)) * (rng.random((n_gages, n_days)) < 0.08)
    kernel = np.exp(-np.arange(30) / rng.uniform(2, 8))
    storms = np.array([np.convolve(row, kernel)[:n_days] for row in impulses])
    obs = 0.01 * area[:, None] * (0.4 * seasonal + 2.0 * storms)
    intermittent = rng.random(n_gages) < 0.05
    if intermittent.any():  # zero flow below each such gage's own 30 % quantile
        low = np.quantile(obs[intermittent], 0.3, axis=1, keepdims=True)
        obs[intermittent] = np.where(obs[intermittent] < low, 0.0, obs[intermittent])
    gaps = (rng.random(n_gages) < 0.3)[:, None] & (rng.random((n_gages, n_days)) < 0.05)
    obs = np.where(gaps, np.nan, obs)
    ids = ("USGS-" + picked["site_no"]).tolist()
    observed = pd.DataFrame(obs.T, index=dates, columns=ids)
    modeled = {}
    for model in models:
        bias_sigma, (lo, hi), max_lag = MODEL_ERRORS[model]
        bias = rng.lognormal(0.0, bias_sigma, n_gages)[:, None]
        noise = rng.uniform(lo, hi, n_gages)[:, None]
        lag = rng.integers(0, max_lag + 1, n_gages)
        filled = np.nan_to_num(obs, nan=float(np.nanmean(obs)))
        shifted = np.array([np.roll(row, k) for row, k in zip(filled, lag, strict=True)])
        sim = shifted * bias * rng.lognormal(0.0, 1.0, (n_gages, n_days)) ** noise
        modeled[model] = pd.DataFrame(sim.T, index=dates, columns=ids)
    return observed, modeled


def synthetic_results(
    n_gages: int = 300, models: tuple[str, ...] = ("nwm", "nhm"), seed: int = 7
) -> pd.DataFrame:
    """The results table of the synthetic flows, computed by ``gagebench.evaluate``."""
    observed, modeled = synthetic_flows(n_gages, models=models, seed=seed)
    return evaluate(observed, modeled)


def write_run(folder: Path, results: pd.DataFrame, manifest: dict | None = None) -> Path:
    """Write ``results`` as a run folder (docs/user-guide/outputs.md) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    results.to_parquet(folder / "results.parquet", index=False)
    for model, part in results.groupby("model", sort=False):
        (folder / str(model)).mkdir(exist_ok=True)
        for name, columns in (
            ("standard_suite.csv", STANDARD_COLUMNS),
            ("dscore.csv", DSCORE_COLUMNS),
        ):
            present = [c for c in columns if c in part.columns]
            if present:
                part[["site_no", *present]].to_csv(folder / str(model) / name, index=False)
    if manifest is None:
        manifest = {
            "run_id": folder.name,
            "version": gagebench.__version__,
            "config": {
                "output": "s3://bench/runs",
                "mode": "standard",
                "storage_options": {"key": "***", "secret": "***"},
                "models": {m: {"url": f"s3://bench/{m}.zarr"} for m in results["model"].unique()},
            },
            "inputs": {"observed": "s3://bench/obs.zarr", "gages": "builtin"},
            "counts": results["status"].value_counts().to_dict(),
            "timings": {"total_s": 12.5, "evaluate_s": 9.1},
        }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return folder


class Page(HTMLParser):
    """Collects tags, attributes, figure names, notes (and the section of each) and the
    text of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.notes: list[str] = []
        self.section_notes: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._in_note = False
        self._section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        self._in_note = tag == "p" and values.get("class") == "note"
        if tag == "section":
            self._section = values.get("id") or ""

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_note:
            self.notes.append(data)
            self.section_notes.setdefault(self._section, []).append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_note = False

    def figures(self) -> dict[str, str]:
        """{figure name: 'img' (embedded) or 'note' (could not be drawn)}."""
        out = {}
        for tag, attrs in self.tags:
            name = attrs.get("data-figure")
            if name:
                out[name] = "img" if tag == "figure" else "note"
        return out

    def images(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "img"]


def parse_page(text: str) -> Page:
    """A report page parsed (character references decoded)."""
    page = Page()
    page.feed(text)
    page.close()
    return page


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_self_contained(text: str, page: Page) -> None:
    """No script, stylesheet link, frame or remote URL: the page makes no request."""
    banned = {"script", "link", "iframe", "object", "embed", "video", "audio", "source"}
    assert not banned & {tag for tag, _ in page.tags}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in {"src", "href", "srcset", "data", "poster", "action"} and value:
                assert value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]!r}>"
    assert "url(" not in text.lower()
    assert "@import" not in text
    lowered = text.lower()
    assert 'src="http' not in lowered
    assert 'href="http' not in lowered


def check_report(path: str, expect: set[str], figure_files: bool = True) -> Page:
    """The report parses, embeds every drawable figure as a PNG identical to its file
    (``figure_files``: in ``figures/`` beside it; else the page is the only copy and no
    ``figures/`` folder is written)."""
    text = Path(path).read_text(encoding="utf-8")
    page = parse_page(text)
    assert_self_contained(text, page)
    figures = page.figures()
    assert set(figures) >= expect
    folder = Path(path).parent / "figures"
    embedded = {name for name, kind in figures.items() if kind == "img"}
    if not figure_files:
        assert not folder.exists(), f"{folder} written beside a self-contained page"
        for attrs in page.images():
            data = base64.b64decode((attrs["src"] or "").split(",", 1)[1])
            assert len(data) > 5000, f"{attrs.get('alt')} looks empty"
        return page
    assert {p.stem for p in folder.glob("*.png")} >= embedded
    images = page.images()
    assert len(images) == len(embedded)
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert png_size(data) == (int(attrs["width"] or 0), int(attrs["height"] or 0))
    for name in embedded:
        data = (folder / f"{name}.png").read_bytes()
        assert len(data) > 5000, f"{name}.png looks empty"
        assert base64.b64encode(data).decode() in text
    return page
