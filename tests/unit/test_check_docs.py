"""``.ci/check_docs.py`` (run by ``.ci/run`` after the Sphinx build) refuses a site whose
API pages show raw directives or lack ``gagebench.evaluate``'s rendered signature, and
reference pages that lack a command, option or setting. Checked here on tiny HTML pages
written like Sphinx's; ``.ci/run`` checks the real build the same way.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_docs", ROOT / ".ci" / "check_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_docs = _load()
PARAMS = ["observed", "modeled", "time", "suites"]


def _signature(object_id: str, params: list[str]) -> str:
    """A signature as Sphinx's HTML writer renders it (``<em class="sig-param">``...)."""
    name = object_id.rsplit(".", 1)[-1]
    ems = ", ".join(
        f'<em class="sig-param"><span class="n"><span class="pre">{p}</span></span>'
        f'<span class="o"><span class="pre">=</span></span>'
        f'<span class="default_value"><span class="pre">None</span></span></em>'
        for p in params
    )
    return (
        f'<dl class="py function"><dt class="sig sig-object py" id="{object_id}">'
        f'<span class="sig-name descname"><span class="pre">{name}</span></span>'
        f'<span class="sig-paren">(</span>{ems}<span class="sig-paren">)</span></dt>'
        f"<dd><p>What it does.</p></dd></dl>"
    )


def _page(body: str) -> str:
    return f"<html><head><style>p {{}}</style></head><body><article>{body}</article></body></html>"


def _site(tmp_path: Path, evaluate: str | None = None, **pages: str) -> Path:
    """A built site: the evaluate page (a good one by default) and other pages by path."""
    generated = tmp_path / "reference" / "generated"
    generated.mkdir(parents=True)
    good = _page(_signature("gagebench.evaluate", PARAMS))
    (generated / "gagebench.evaluate.html").write_text(evaluate if evaluate is not None else good)
    (tmp_path / "index.html").write_text(_page("<h1>gagebench</h1>"))
    for rel, html in pages.items():
        path = tmp_path / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)
    return tmp_path


def test_a_site_whose_api_pages_rendered_passes(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        **{
            "reference__generated__gagebench.run.html": _page(_signature("gagebench.run", ["x"])),
            # a directive's name in code (docs about docs) is not a raw directive
            "reference__api.html": _page(
                "<p>Stubs use <code>.. autofunction:: name</code>:</p>"
                "<pre>.. currentmodule:: gagebench</pre>"
            ),
        },
    )
    assert check_docs.problems(site, PARAMS) == []


@pytest.mark.parametrize(
    "raw",
    [".. currentmodule:: gagebench", ".. autofunction:: evaluate", ".. autoclass:: RunResult"],
)
def test_a_raw_directive_in_a_page_is_refused(tmp_path: Path, raw: str) -> None:
    # what an autosummary stub parsed as markdown looks like: the directive as a paragraph
    stub = _page(f"<h1>gagebench.run</h1><p>{raw}</p>")
    found = check_docs.problems(_site(tmp_path, **{"user-guide__x.html": stub}), PARAMS)
    assert len(found) == 1
    assert "user-guide/x.html" in found[0]
    assert raw.split(" ")[1] in found[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("override one setting, e.g. \u2013set batch_size=128", "'\u2013set'"),
        ("threads per worker process (dask-worker \u2013nthreads)", "'\u2013nthreads'"),
        ("see \u2014config", "'\u2014config'"),
    ],
)
def test_an_option_whose_dashes_became_one_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    """docutils' smart dashes turned ``--set`` into ``\u2013set`` on the generated CLI and
    configuration pages; a reader who copies it gets a failing command."""
    site = _site(tmp_path, **{"reference__cli.html": _page(f"<p>{text}</p>")})
    found = check_docs.problems(site, PARAMS)
    assert len(found) == 1, found
    assert found[0].startswith("reference/cli.html: shows ")
    assert expected in found[0]


def test_dashes_between_numbers_words_and_in_code_are_not_options(tmp_path: Path) -> None:
    page = _page(
        "<p>exceedance 0.7\u20131.0, a pause \u2013 then more, A\u2014B</p>"
        "<pre>\u2013set in a code block</pre><p><code>\u2013x</code></p>"
    )
    assert check_docs.problems(_site(tmp_path, **{"user-guide__x.html": page}), PARAMS) == []


def test_an_api_page_without_a_signature_is_refused(tmp_path: Path) -> None:
    page = _page("<h1>gagebench.run</h1><p>Run the job.</p>")
    site = _site(tmp_path, **{"reference__generated__gagebench.run.html": page})
    assert check_docs.problems(site, PARAMS) == [
        "reference/generated/gagebench.run.html: an API page without a rendered signature"
    ]


def test_evaluate_without_its_signature_or_a_parameter_is_refused(tmp_path: Path) -> None:
    bare = _page("<h1>gagebench.evaluate</h1><p>Benchmark statistics.</p>")
    found = check_docs.problems(_site(tmp_path / "bare", evaluate=bare), PARAMS)
    assert any("no rendered signature of gagebench.evaluate" in line for line in found)

    short = _page(_signature("gagebench.evaluate", ["observed", "modeled"]))
    found = check_docs.problems(_site(tmp_path / "short", evaluate=short), PARAMS)
    assert found == [
        "reference/generated/gagebench.evaluate.html: the signature lacks the parameters "
        "['time', 'suites']"
    ]


def test_a_missing_evaluate_page_is_refused(tmp_path: Path) -> None:
    site = _site(tmp_path)
    (site / "reference" / "generated" / "gagebench.evaluate.html").unlink()
    assert "missing" in check_docs.problems(site, PARAMS)[0]


def test_reference_pages_must_hold_every_command_option_and_setting(tmp_path: Path) -> None:
    cli = _page("<h2>synth</h2><p><code>--quiet</code> no bar</p><h2>run</h2>")
    config = _page("<table><tr><td><code>cluster.backend</code></td></tr></table>")
    site = _site(tmp_path, **{"reference__cli.html": cli, "reference__configuration.html": config})
    words = ["run", "synth", "--quiet", "--set"]
    keys = ["cluster", "cluster.backend", "log_format"]
    assert check_docs.problems(site, PARAMS, words, keys) == [
        "reference/cli.html: lacks the commands or options ['--set']",
        "reference/configuration.html: lacks the settings ['cluster', 'log_format']",
    ]


def test_the_real_parser_and_defaults_are_what_the_pages_must_hold() -> None:
    words = check_docs.expected_cli_words()
    assert {"synth", "sample", "run", "--quiet", "--set"} <= set(words)
    keys = check_docs.expected_config_keys()
    assert {"log_format", "cluster.backend", "cluster.kubernetes.adapt", "retries"} <= set(keys)
    assert "cluster.kubernetes.adapt.minimum" not in keys  # a one-line default is one row
    assert check_docs.expected_evaluate_params()[:2] == ["observed", "modeled"]


def test_the_script_exits_1_naming_each_problem(tmp_path: Path) -> None:
    site = _site(tmp_path, evaluate=_page("<p>.. autofunction:: evaluate</p>"))
    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "check_docs.py"), str(site)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "raw directive '.. autofunction::'" in result.stderr
    assert "Traceback" not in result.stderr
