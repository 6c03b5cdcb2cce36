"""The metric registry (``gagebench.metrics.registry.METRICS``) derives everything else.

A metric's position in the registry is its results column and its kernel slot; the
registry also gives the one-series public functions, both ``__all__`` lists, the docs'
suite tables and the API page's list of functions. Adding a built-in metric is one
registry entry, its kernel code and its reference (``_reference.py``): the last test does
exactly that on a copy of the package and checks what follows from it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import gagebench.metrics as gm
from gagebench.metrics import functions, kernels, registry
from gagebench.metrics.engine import check_kernel_layout
from gagebench.metrics.registry import METRICS, SUITES, MetricInfo

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "gagebench"
NAMES = [m.name for m in METRICS]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _docs_extension() -> ModuleType:
    _load(ROOT / "docs" / "_ext" / "gagebench_docs.py", "gagebench_docs")  # its table helper
    return _load(ROOT / "docs" / "_ext" / "gagebench_metrics.py", "gagebench_metrics")


def _kernel_slots(source: str) -> dict[str, str]:
    """Constant -> metric name of each ``CONSTANT = slot("name")`` line of kernels.py."""
    found = {}
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "slot"
        ):
            target = node.targets[0]
            assert isinstance(target, ast.Name)
            argument = node.value.args[0]
            assert isinstance(argument, ast.Constant)
            assert isinstance(argument.value, str)
            found[target.id] = argument.value
    return found


def _written(source: str) -> set[str]:
    """The constants the kernels write a value to (``out[CONSTANT] = ...``)."""
    return {
        node.slice.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "out"
        and isinstance(node.slice, ast.Name)
    }


def test_each_metric_has_a_kernel_slot_at_its_registry_position() -> None:
    source = Path(kernels.__file__).read_text()
    slots = _kernel_slots(source)
    # the benchmark suite's slots are filled by benchmark_kernels.py (test_metrics_benchmark)
    in_kernels = [m.name for m in METRICS if m.suite in registry.KERNEL_SUITES]
    assert sorted(slots.values()) == sorted(in_kernels), "a registry metric without kernel code"
    for constant, name in slots.items():
        assert getattr(kernels, constant) == NAMES.index(name) == registry.slot(name)
    assert _written(source) >= set(slots), "a slot the kernels never write"
    # no hand-numbered layout left beside the registry
    assert not hasattr(kernels, "N_METRICS")
    assert not hasattr(kernels, "SLOT_NAMES")


def test_a_slot_for_a_metric_the_registry_lacks_is_refused() -> None:
    with pytest.raises(KeyError, match=r"no metric 'nope' in .*METRICS: add its MetricInfo"):
        registry.slot("nope")


def test_entries_that_would_derive_wrong_columns_are_refused() -> None:
    nse = METRICS[0]
    bad = (
        *METRICS,
        MetricInfo("NSE", "standard", 1.0, 0.0, 1.0, "x", "y"),  # a second NSE column
        MetricInfo("n2", "weekly", 1.0, 0.0, 1.0, "x", "y", function=nse.function, title="t"),
        MetricInfo("n3", "dscore", 1.0, 0.0, 1.0, "x", "y", function="n3"),
    )
    with pytest.raises(ValueError, match=r"name used twice: \['NSE'\]") as caught:
        registry.check_metrics(bad)
    message = str(caught.value)
    assert "function used twice: ['nse']" in message
    assert f"n2: suite 'weekly' is not one of {list(registry.ENGINE_SUITES)}" in message
    assert "n3: a function needs a title" in message
    registry.check_metrics(METRICS)


def test_the_run_files_suites_are_the_registrys() -> None:
    """schema.py (a leaf, without the metrics package) spells the suite names a run file
    accepts: they are the registry's; hytest mode's are the registry's HYTEST_SUITES."""
    from typing import get_args

    from gagebench import schema

    assert list(get_args(schema.Suite)) == list(SUITES)
    assert set(registry.HYTEST_SUITES) <= set(SUITES)
    assert registry.mode_refusal(list(SUITES), "standard") is None
    assert registry.mode_refusal(list(registry.HYTEST_SUITES), "hytest") is None
    others = [s for s in SUITES if s not in registry.HYTEST_SUITES]
    assert others, "every suite is HyTEST's: nothing for hytest mode to refuse"
    why = registry.mode_refusal(list(SUITES), "hytest")
    assert why is not None
    assert str(others) in why
    assert "mode 'standard'" in why


def test_kernels_compiled_for_another_layout_are_refused() -> None:
    check_kernel_layout(kernels.compiled_layout(), kernels.LAYOUT)
    with pytest.raises(
        RuntimeError, match=r"compiled for another metric registry.*delete the kernels' cache files"
    ):
        check_kernel_layout(kernels.LAYOUT + 1, kernels.LAYOUT)


def test_public_functions_and_all_lists_follow_the_registry() -> None:
    named = [m for m in METRICS if m.function is not None]
    assert list(functions.FUNCTIONS) == [m.function for m in named]
    assert functions.__all__ == [*functions.FUNCTIONS, "dscore"]
    assert set(functions.__all__) <= set(gm.__all__)
    assert {n for n in gm.__all__ if callable(getattr(gm, n)) and n.islower()} >= set(
        functions.__all__
    )
    for info in named:
        assert info.function is not None
        func = getattr(gm, info.function)
        assert func is getattr(functions, info.function) is functions.FUNCTIONS[info.function]
        assert (func.__name__, func.__qualname__) == (info.function, info.function)
        assert func.__module__ == "gagebench.metrics.functions"
        dated = ["time"] if info.dated else []  # the benchmark suite's need their dates
        assert list(inspect.signature(func).parameters) == [
            "observed", "simulated", *dated, "mode"
        ]  # fmt: skip
        doc = inspect.getdoc(func) or ""
        for part in (info.title, info.name, info.formula, info.reference, info.note):
            assert part in doc, (info.name, part)
        assert "\nParameters\n----------\n" in doc
        assert "\nReturns\n-------\n" in doc
        assert pickle.loads(pickle.dumps(func)) is func  # dask ships it by reference


def test_the_docs_tables_and_api_list_follow_the_registry() -> None:
    ext = _docs_extension()
    for suite in registry.ENGINE_SUITES:
        rows = ext.suite_rows(suite)
        assert [r[0] for r in rows] == list(SUITES[suite])
        table = ext.suite_table(rows)
        assert all(name in table.astext() for name in SUITES[suite])
    block = ext.functions_autosummary("generated")
    assert [line.strip() for line in block.splitlines()[6:]] == functions.__all__
    page = (ROOT / "docs" / "metrics.md").read_text()
    for suite in registry.ENGINE_SUITES:
        assert f"```{{gagebench-metrics}} {suite}\n```" in page
    assert "| `NSE` |" not in page  # no hand-written table left
    api = (ROOT / "docs" / "reference" / "api.md").read_text()
    assert ".. gagebench-metric-functions::" in api
    assert "\n   log_nse\n" not in api


def test_a_registry_entry_derives_its_slot_name_function_and_docs_row(tmp_path: Path) -> None:
    """A copy of registry.py with one more entry, loaded on its own: no kernel needed."""
    source = Path(registry.__file__).read_text()
    entry = (
        '\nMETRICS = (*METRICS, MetricInfo("beta", "standard", 1.0, 0.0, float("inf"), '
        '"sum(s) / sum(o)", _GUPTA, function="beta", title="Ratio of volumes", '
        'definition=r"$\\sum s / \\sum o$"))\n'
    )
    head, _, tail = source.partition("\nMETRIC_BY_NAME")
    copy = tmp_path / "registry_copy.py"
    copy.write_text(head + entry + "\nMETRIC_BY_NAME" + tail)
    new = _load(copy, "registry_copy")
    try:
        assert new.slot("beta") == len(METRICS)
        assert new.SUITES["standard"] == (*SUITES["standard"], "beta")
        assert new.STANDARD_COLUMNS[-1] == "beta"
        info: MetricInfo = new.METRIC_BY_NAME["beta"]
        func = functions.metric_function(info)
        assert func.__name__ == "beta"
        assert "Ratio of volumes (``beta``): ``sum(s) / sum(o)``; optimal 1" in (func.__doc__ or "")
        rows = _docs_extension().suite_rows("standard", new.METRICS)
        assert rows[-1] == ("beta", "$\\sum s / \\sum o$", "1", "Gupta et al. (2009)")
    finally:
        del sys.modules["registry_copy"]


def _package_copy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of src/gagebench (no caches) and the environment that imports it."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "gagebench", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(src), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    return src / "gagebench", env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


def test_a_registry_edited_under_cached_kernels_is_refused(tmp_path: Path) -> None:
    """numba's cache keys on the text of kernels.py only: slot constants cached for the old
    registry would fill the wrong columns, so the engine refuses them at import, naming the fix."""
    package, env = _package_copy(tmp_path)
    code = "import gagebench.metrics.engine"
    first = _python(code, env)
    assert first.returncode == 0, first.stderr
    path = package / "metrics" / "registry.py"
    source = path.read_text()
    # NSE and KGE swapped: cached kernels would write each into the other's column
    swap = "\nMETRICS = (METRICS[1], METRICS[0], *METRICS[2:])\nMETRIC_BY_NAME"
    path.write_text(source.replace("\nMETRIC_BY_NAME", swap, 1))
    stale = _python(code, env)
    assert stale.returncode == 1
    assert "RuntimeError: numba's cache of gagebench.metrics.kernels was compiled for " in (
        stale.stderr
    )
    # the fix the message names: delete the kernels' cache files (numba then recompiles)
    cached = list((tmp_path / "numba").rglob("kernels.*.nb[ic]"))
    assert cached
    for path in cached:
        path.unlink()
    fixed = _python(code, env)
    assert fixed.returncode == 0, fixed.stderr


ADDED = """
    MetricInfo(
        "beta", "standard", 1.0, 0.0, _INF, "sum(s) / sum(o)", _GUPTA,
        function="beta", title="Ratio of volumes", definition=r"$\\sum s / \\sum o$",
    ),
"""

PROBE = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import gagebench.metrics as gm
import gagebench_metrics
data = np.load(sys.argv[2])
obs, sim, time = data["obs"], data["sim"], data["time"]
result = gm.evaluate_arrays(obs, sim, time)
np.save(sys.argv[3], result.values)
print(json.dumps({
    "columns": list(result.columns),
    "beta": [gm.beta(o, s) for o, s in zip(obs, sim)],
    "all": "beta" in gm.__all__ and "beta" in gm.functions.__all__,
    "doc": gm.beta.__doc__.splitlines()[0],
    "docs": [r[0] for r in gagebench_metrics.suite_rows("standard")],
}))
"""


@pytest.mark.slow
def test_adding_a_metric_is_a_registry_entry_and_its_kernel_code(tmp_path: Path) -> None:
    """On a copy of the package: one MetricInfo (inserted after the standard suite, so every
    D-score slot moves) and two kernel lines. The new column, function, ``__all__`` entry
    and docs row follow; every other column keeps its values exactly."""
    package, env = _package_copy(tmp_path)
    path = package / "metrics" / "registry.py"
    source = path.read_text()
    at = source.rindex("    MetricInfo(", 0, source.index('"mse", "dscore"'))
    path.write_text(source[:at] + ADDED.lstrip("\n") + source[at:])
    path = package / "metrics" / "kernels.py"
    source = path.read_text()
    for anchor, line in (
        ('Q_HIGH = slot("high")\n', 'BETA = slot("beta")\n'),
        ("    out[PBIAS] = 100.0 * _div(diff, sum_o, safe)\n", "    out[BETA] = beta\n"),
    ):
        assert source.count(anchor) == 1, anchor
        source = source.replace(anchor, anchor + line)
    path.write_text(source)

    rng = np.random.default_rng(5)
    obs = np.exp(rng.normal(1.0, 1.0, (4, 800)))
    sim = obs * np.exp(rng.normal(0.1, 0.4, (4, 800)))
    obs[0, :50] = np.nan
    time = np.datetime64("2001-10-01") + np.arange(800)
    np.savez(tmp_path / "data.npz", obs=obs, sim=sim, time=time)
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "docs" / "_ext"), str(tmp_path / "data.npz"),
         str(tmp_path / "values.npy")],
        env={**env, "NUMBA_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    values = np.load(tmp_path / "values.npy")

    before = gm.evaluate_arrays(obs, sim, time)
    # inserted before the D-score's first entry: after every standard metric, built-in
    # ones added after HyTEST's pBiasFHV included (docs/architecture.md, "Adding a metric")
    at = list(before.columns).index(SUITES["dscore"][0])
    assert got["columns"] == [*before.columns[:at], "beta", *before.columns[at:]]
    others = np.delete(values, at, axis=1)
    assert others.tobytes() == before.values.tobytes()  # every other column, bit for bit
    # the new column against numpy's sum over the paired days (an independent reference)
    paired = ~np.isnan(obs) & ~np.isnan(sim)
    want = np.where(paired, sim, 0).sum(axis=1) / np.where(paired, obs, 0).sum(axis=1)
    np.testing.assert_allclose(values[:, at], want, rtol=1e-12)
    np.testing.assert_allclose(got["beta"], want, rtol=1e-12)
    assert got["all"]
    assert got["doc"].startswith("Ratio of volumes (``beta``): ``sum(s) / sum(o)``")
    assert got["docs"] == [*SUITES["standard"], "beta"]
