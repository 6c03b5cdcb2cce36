"""Every code block of the documentation (``docs/**/*.md`` and ``README.md``) runs or is
checked here.

- ``{code-cell}`` blocks are executed by myst-nb when the site is built
  (``python -m sphinx -W -b html docs <dir>`` in ``.ci/run``); here we check that each page
  holding them is a MyST notebook (else myst-nb would not execute it);
- ``bash`` blocks: every ``gagebench`` command is parsed by the CLI's own parser (its
  subcommands and options exist), ``pip install`` names this package and its extras,
  ``helm install`` the chart the release workflow publishes, and scripts exist;
- ``yaml`` blocks are run files: validated by :func:`gagebench.load_config`;
- ``python`` blocks that cannot run here (a Kubernetes cluster, a bucket) compile, and
  every module they import is importable with the test extra installed.

The tutorials' own cells are executed by the docs build; the CLI demo itself runs in
``.ci/release-check`` from the built wheel.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from gagebench.cli import build_parser
from gagebench.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# The README is the first page people read: its blocks are checked like the docs' pages.
README = ROOT / "README.md"
DOC_PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
PAGES = [*DOC_PAGES, README]
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
# commands of other tools that the pages show as they are (not ours to run here)
OTHER_COMMANDS = {"kubectl", "python3", "python", "docker"}


def _blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for match in FENCE.finditer(page.read_text()):
            if match["lang"].strip() == lang:
                body = "\n".join(
                    line.removeprefix(match["indent"]) for line in match["body"].splitlines()
                )
                found.append((str(page.relative_to(ROOT)), body))
    return found


def _commands(body: str) -> list[list[str]]:
    """Each command of a bash block as argv: continuations joined, ``&&`` split, comments
    and leading ``VAR=value`` assignments dropped."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            argv, words = words[:cut], words[cut + 1 :]
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                argv = argv[1:]
            if argv:
                commands.append(argv)
    return commands


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def test_the_docs_have_code_blocks_of_every_kind() -> None:
    assert len(PAGES) >= 15
    for lang in ("bash", "yaml", "python"):
        assert _blocks(lang), f"no {lang} block found: is the fence pattern broken?"
        pages = {page for page, _ in _blocks(lang)}
        assert "README.md" in pages, f"the README's {lang} blocks are not checked"


def test_pages_with_code_cells_are_executed_notebooks() -> None:
    executed = 0
    for page in DOC_PAGES:
        text = page.read_text()
        if "```{code-cell}" in text:
            executed += 1
            assert text.startswith("---\nfile_format: mystnb\n"), (
                f"{page}: code cells only run in a page with the MyST notebook header"
            )
    assert executed >= 10


@pytest.mark.parametrize(("page", "body"), _blocks("bash"))
def test_bash_blocks_are_real_commands(page: str, body: str) -> None:
    parser = build_parser()
    chart = yaml.safe_load((ROOT / "helm/gagebench/Chart.yaml").read_text())
    for argv in _commands(body):
        tool = Path(argv[0]).name
        if tool == "gagebench":
            try:
                parser.parse_args(argv[1:])
            except SystemExit as exc:
                pytest.fail(f"{page}: `{shlex.join(argv)}` is refused by the CLI ({exc})")
        elif tool == "pip" or argv[:3] == [".venv/bin/pip", "install", "-e"]:
            assert argv[1] == "install", f"{page}: {argv}"
            for spec in argv[2:]:
                if spec.startswith("-") or spec == ".":
                    continue
                name, _, extras = spec.partition("[")
                assert name == "gagebench", f"{page}: installs {spec!r}"
                for extra in filter(None, extras.rstrip("]").split(",")):
                    assert extra in _extras(), f"{page}: no extra {extra!r} in pyproject.toml"
        elif tool == "helm":
            assert argv[1] in {"install", "test"}, f"{page}: {argv}"
            if argv[1] == "install":
                source = argv[3]
                assert source in (
                    "./helm/gagebench",
                    f"oci://ghcr.io/gagebench/charts/{chart['name']}",
                ), f"{page}: installs the chart from {source!r}"
        elif "/" in argv[0]:
            assert (ROOT / argv[0]).is_file(), f"{page}: no script {argv[0]}"
        elif tool == "bash":
            assert (ROOT / argv[1]).is_file(), f"{page}: no script {argv[1]}"
        else:
            assert tool in OTHER_COMMANDS, f"{page}: unchecked command {shlex.join(argv)!r}"


@pytest.mark.parametrize(("page", "body"), _blocks("yaml"))
def test_yaml_blocks_are_valid_run_files(page: str, body: str, tmp_path: Path) -> None:
    """A run file (one key, ``gagebench``) or a part of one (its keys are settings, as a
    run file may be written without the top key): either way load_config accepts it."""
    document = yaml.safe_load(body)
    assert isinstance(document, dict), f"{page}: a yaml block is a run file or a part of one"
    if set(document) != {"gagebench"}:
        assert "gagebench" not in document, f"{page}: gagebench beside other top-level keys"
    path = tmp_path / "run.yaml"
    path.write_text(body)
    load_config(path)


@pytest.mark.parametrize(("page", "body"), _blocks("python"))
def test_python_blocks_compile_and_their_imports_exist(page: str, body: str) -> None:
    tree = ast.parse(body, filename=page)
    modules = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert modules, f"{page}: a python block without imports should be a code cell"
    for module in modules:
        assert module is not None
        assert importlib.util.find_spec(module) is not None, f"{page}: cannot import {module}"


def test_optional_guide_pages_are_listed_only_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    conf = runpy.run_path(str(DOCS / "conf.py"))
    monkeypatch.setitem(conf["optional_pages"].__globals__, "HERE", tmp_path)
    (tmp_path / "user-guide").mkdir()
    assert conf["optional_pages"]() == []
    (tmp_path / "uncertainty.md").write_text("# Uncertainty\n")
    (tmp_path / "user-guide" / "crosswalks.md").write_text("# Crosswalks\n")
    assert conf["optional_pages"]() == ["/uncertainty", "/user-guide/crosswalks"]
    source = [(DOCS / "user-guide" / "index.md").read_text()]
    conf["_insert_optional_pages"](None, "user-guide/index", source)
    assert "/uncertainty\n/user-guide/crosswalks\n```" in source[0]
