"""operator/: the pinned dask-kubernetes operator install, consistent with the client in
the image, rendered with our values by the real Helm engine from the chart that ships
inside the dask-kubernetes wheel (the same chart https://helm.dask.org serves)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, ROOT, helm

pytestmark = pytest.mark.chart

OPERATOR = ROOT / "operator"


def pinned_version() -> str:
    match = re.search(r'^OPERATOR_VERSION="([^"]+)"$', (OPERATOR / "install.sh").read_text(), re.M)
    assert match, 'operator/install.sh must set OPERATOR_VERSION="X"'
    return match.group(1)


def wheel_chart() -> Path:
    dk = pytest.importorskip("dask_kubernetes")
    helm_dir = Path(dk.__file__).parent / "operator" / "deployment" / "helm"
    return helm_dir / "dask-kubernetes-operator"


def test_operator_version_is_pinned_consistently() -> None:
    version = pinned_version()
    values = yaml.safe_load((OPERATOR / "values.yaml").read_text())
    constraints = (ROOT / "requirements" / "constraints.txt").read_text()
    chart_meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert values["image"]["tag"] == version
    assert f"\ndask-kubernetes=={version}\n" in constraints
    assert chart_meta["annotations"]["gagebench/operator-chart"].endswith(version)
    assert metadata.version("dask-kubernetes") == version, (
        "the dask-kubernetes client installed here differs from the operator pin in "
        "operator/install.sh: keep client and operator on the same release"
    )
    assert '--version "$OPERATOR_VERSION"' in (OPERATOR / "install.sh").read_text()


@pytest.mark.parametrize("version", ["1.29.0", "1.33.0"])
def test_operator_chart_renders_and_validates_with_our_values(version: str) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    values: dict[str, Any] = yaml.safe_load((OPERATOR / "values.yaml").read_text())
    with helm.Chart.load(wheel_chart()) as chart:
        rendered = chart.render(values, name="dask-kubernetes-operator", namespace="dask-operator")
        crds = chart.crds
    objects = [
        doc
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"]
    for obj in objects:
        kv.validate(obj, version, strict=True)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/dask/dask-kubernetes-operator:{pinned_version()}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"] == "512Mi"
    crd_names = {yaml.safe_load(c["data"])["metadata"]["name"] for c in crds}
    assert {
        "daskclusters.kubernetes.dask.org",
        "daskworkergroups.kubernetes.dask.org",
        "daskautoscalers.kubernetes.dask.org",
    } <= crd_names
