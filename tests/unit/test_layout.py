"""The package layout keeps data flowing one way: no import cycles, no backward imports.

Reads every module's imports with :mod:`ast` (no importing), so deferred imports inside
functions are seen too: they are how cycles used to hide (``comparison`` <-> ``plots``,
``sources`` -> ``pipeline``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gagebench

ROOT = Path(gagebench.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the nodes under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            out.update(id(sub) for sub in ast.walk(node))
    return out


def _imports(path: Path, deferred: bool, type_only: bool = True) -> set[str]:
    """gagebench modules imported by ``path`` (``from pkg import sub`` counts as ``pkg.sub``).

    ``deferred``: imports inside functions count too; ``type_only``: so do imports under
    ``if TYPE_CHECKING:``.
    """
    tree = ast.parse(path.read_text())
    skipped = set() if type_only else _type_only(tree)
    nodes = [n for n in (ast.walk(tree) if deferred else tree.body) if id(n) not in skipped]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in MODULES and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            named = subs & MODULES.keys()
            found.update(named or {node.module})
            if named != subs:
                found.add(node.module)
    return found


def _graph(deferred: bool, type_only: bool = True) -> dict[str, set[str]]:
    return {name: _imports(path, deferred, type_only) - {name} for name, path in MODULES.items()}


def _packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for name, deps in graph.items():
        packages.setdefault(_package(name), set()).update(
            _package(d) for d in deps if _package(d) != _package(name)
        )
    packages.pop("gagebench", None)  # the lazy public API sits above everything
    return packages


def _package(name: str) -> str:
    return ".".join(name.split(".")[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_layout_is_the_documented_one() -> None:
    for package in ("storage", "sources", "metrics", "clusters", "results", "report"):
        assert (ROOT / package / "__init__.py").is_file(), package
    for gone in ("sinks", "run_folder", "plots", "comparison", "retry", "runlock"):
        assert not (ROOT / f"{gone}.py").exists(), f"{gone}.py is back at the top level"


def test_no_import_cycle_between_modules_at_import_time() -> None:
    assert _cycle(_graph(deferred=False)) is None


def test_no_import_cycle_between_packages_at_import_time() -> None:
    assert _cycle(_packages(_graph(deferred=False))) is None


def test_no_import_cycle_even_deferred() -> None:
    """Deferred imports hide no cycle either (config <-> sources / uncertainty / storage
    were such); only imports for annotations (``if TYPE_CHECKING:``) may point back."""
    graph = _graph(deferred=True, type_only=False)
    assert _cycle(graph) is None
    assert _cycle(_packages(graph)) is None


def test_the_defaults_module_is_a_leaf() -> None:
    """gagebench.yaml is read by one module that every other one may import."""
    assert _imports(MODULES["gagebench.defaults"], deferred=True) == set()


BACKWARD = [
    ("gagebench.sources", "gagebench.pipeline"),
    ("gagebench.results", "gagebench.report"),
    ("gagebench.results", "gagebench.pipeline"),
    # the run folder sits below the batch runner and the in-memory API: what both need
    # (the results' columns) lives in gagebench.columns, under both
    ("gagebench.results", "gagebench.batches"),
    ("gagebench.results", "gagebench.evaluation"),
    ("gagebench.report.comparison", "gagebench.report.plots"),
    ("gagebench.gages", "gagebench.report"),
    ("gagebench.metrics", "gagebench.sources"),
    ("gagebench.metrics", "gagebench.pipeline"),
    *[
        ("gagebench.storage", upper)
        for upper in (
            "gagebench.sources",
            "gagebench.results",
            "gagebench.report",
            "gagebench.pipeline",
            "gagebench.clusters",
        )
    ],
]


@pytest.mark.parametrize(("lower", "upper"), BACKWARD)
def test_no_backward_import_even_deferred(lower: str, upper: str) -> None:
    graph = _graph(deferred=True)
    offenders = sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if name == lower or name.startswith(lower + ".")
        for dep in deps
        if dep == upper or dep.startswith(upper + ".")
    )
    assert not offenders, offenders


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_readme_names_only_real_modules() -> None:
    """The README's "Project layout" names files and folders of src/gagebench that exist,
    and every package folder is named there."""
    import re

    readme = (ROOT.parents[1] / "README.md").read_text()
    section = readme.split("## Project layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+(?:\.py|/))`", section))
    assert named, "the README has no Project layout section naming modules"
    missing = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists())
    assert not missing, missing
    packages = {f"{p.parent.name}/" for p in ROOT.glob("*/__init__.py")}
    assert packages <= named, sorted(packages - named)
