"""Shared constants and helpers of the chart suite (imported by its conftest and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="pip install helm-python-sdk (in .[test])")

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "gagebench"
VALUES_FILES = sorted((CHART_DIR / "ci").glob("*.yaml"))
#: name -> values: the defaults ({}) and every example values file under the chart.
VALUE_SETS: dict[str, dict[str, Any]] = {"default": {}} | {
    p.stem: yaml.safe_load(p.read_text()) for p in VALUES_FILES
}
RELEASE = "bench"
NAMESPACE = "hydro"

Manifests = list[dict[str, Any]]


def parse(rendered: dict[str, str]) -> dict[str, Manifests]:
    """Template path -> the Kubernetes objects it rendered (NOTES.txt left out)."""
    out: dict[str, Manifests] = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        out[path] = [doc for doc in yaml.safe_load_all(text) if doc]
    return out


def one(objects: Manifests, kind: str) -> dict[str, Any]:
    """The single object of ``kind`` (fails if there are none or several)."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]
