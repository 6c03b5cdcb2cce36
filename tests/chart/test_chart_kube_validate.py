"""Every rendered manifest is a valid Kubernetes object for Kubernetes 1.29-1.33
(``kubernetes-validate --strict``: the OpenAPI schemas of each release, unknown fields
rejected)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chartkit import VALUE_SETS

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

pytestmark = pytest.mark.chart

KUBE_VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]


def test_validator_ships_the_versions() -> None:
    shipped = {kv.utils.major_minor(v) for v in kv.utils.all_versions()}
    assert {kv.utils.major_minor(v) for v in KUBE_VERSIONS} <= shipped


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_manifests_validate_strict(render: Any, name: str, version: str) -> None:
    objects = render(VALUE_SETS[name])
    assert objects
    for obj in objects:
        validated = kv.validate(obj, version, strict=True)
        assert validated == kv.utils.major_minor(version), (obj["kind"], validated)


def test_strict_validation_catches_a_misplaced_field(render: Any) -> None:
    """The gate can fail: a field at the wrong level of the Job is rejected."""
    job = copy.deepcopy(next(o for o in render({}) if o["kind"] == "Job"))
    job["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(job, KUBE_VERSIONS[0], strict=True)
