"""Fixtures of the chart suite: the chart loaded once per session with the real Helm engine
(``helm_python``, Helm's Go SDK through ctypes; no helm binary, no cluster).

Scopes: ``chart`` is session-scoped (one loaded handle reused); ``render`` renders on
demand and returns parsed manifests. Nothing here touches a network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chartkit import CHART_DIR, NAMESPACE, RELEASE, Manifests, helm, parse


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: Any) -> Callable[..., Manifests]:
    """Render values with the real Helm engine and return every object, in template order."""

    def _render(values: dict[str, Any] | None = None, **kw: Any) -> Manifests:
        kw.setdefault("name", RELEASE)
        kw.setdefault("namespace", NAMESPACE)
        kw.setdefault("is_install", True)
        objects: Manifests = []
        for docs in parse(chart.render(values or {}, **kw)).values():
            objects.extend(docs)
        return objects

    return _render
