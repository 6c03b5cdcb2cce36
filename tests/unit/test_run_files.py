"""Reading run files: relative paths against the file's folder (never URLs, ``~`` or
``builtin``), bounded YAML alias expansion (also in ``--set`` values), UTF-8 only."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from gagebench.config import load_config, parse_override, read_config_file
from gagebench.errors import ConfigError


def _write(path: Path, settings: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


def test_relative_paths_are_read_against_the_run_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "project" / "cfg"
    run_file = _write(
        folder / "run.yaml",
        {
            "output": "../out",
            "gages": "lists/gages.csv",
            "observed": "data/obs.zarr",
            "models": {
                "observed": {"url": "./m.zarr"},  # a model may be named like a section
                "nwm-v3": {
                    "url": "s3://bucket/nwm.zarr",
                    "crosswalk": {"url": "cw.parquet", "gage": "g", "feature": "f"},
                },
                "home": "~/m.zarr",
                "abs": {"url": "/data/m.zarr"},
                "file": {"url": "file:///data/f.zarr"},
            },
        },
    )
    read = read_config_file(run_file)
    assert read["output"] == str(tmp_path / "project" / "out")
    assert read["gages"] == str(folder / "lists" / "gages.csv")
    assert read["observed"] == str(folder / "data" / "obs.zarr")
    models = read["models"]
    assert models["observed"]["url"] == str(folder / "m.zarr")
    assert models["nwm-v3"]["url"] == "s3://bucket/nwm.zarr"
    assert models["nwm-v3"]["crosswalk"]["url"] == str(folder / "cw.parquet")
    assert models["home"] == "~/m.zarr"
    assert models["abs"]["url"] == "/data/m.zarr"
    assert models["file"]["url"] == "file:///data/f.zarr"


def test_builtin_gages_and_set_values_are_left_alone(tmp_path: Path) -> None:
    run_file = _write(
        tmp_path / "cfg" / "run.yaml",
        {"output": "out", "gages": "builtin", "observed": "o.zarr", "models": {"m": "m.zarr"}},
    )
    cfg = load_config(run_file, overrides={"models.m.url": "rel/m.zarr"})
    assert cfg.gages == "builtin"
    assert cfg.models["m"].url == "rel/m.zarr"  # --set: relative to the current folder
    assert cfg.observed is not None
    assert cfg.observed.url == str(tmp_path / "cfg" / "o.zarr")


def test_an_alias_bomb_in_a_set_value_is_refused_at_once() -> None:
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    value = "[" + ", ".join(levels) + "]"
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="alias bomb"):
        parse_override(f"storage_options={value}")
    assert time.perf_counter() - t0 < 0.5


def test_few_aliases_are_fine(tmp_path: Path) -> None:
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "gagebench:\n"
        "  storage_options: &opts {endpoint_url: 'https://s3.example.org'}\n"
        "  observed: {url: s3://b/o.zarr, storage_options: *opts}\n"
        "  models: {nwm: {url: s3://b/n.zarr, storage_options: *opts}}\n"
        "  output: s3://b/out\n"
    )
    cfg = load_config(run_file)
    assert dict(cfg.models["nwm"].storage_options) == {"endpoint_url": "https://s3.example.org"}


def _bomb_text() -> str:
    """Nine levels of ten aliases each: 10**9 values once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_a_dask_config_file_is_refused_at_once(tmp_path: Path) -> None:
    """dask reads its YAML files itself (aliases kept shared); walking the gagebench
    section of one built from an alias bomb grew memory without bound."""
    import dask.config

    bomb = yaml.safe_load(_bomb_text() + "gagebench: {storage_options: {x: *a8}}\n")
    t0 = time.perf_counter()
    with (
        dask.config.set({"gagebench": bomb["gagebench"]}),
        pytest.raises(ConfigError, match=r"dask config.*alias bomb"),
    ):
        load_config()
    assert time.perf_counter() - t0 < 0.5


def test_a_self_referring_value_from_python_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ConfigError, match=r"keyword settings.*refers to the value"):
        load_config(storage_options={"x": loop})


def test_relative_file_urls_and_chained_urls_follow_the_run_file(tmp_path: Path) -> None:
    """``file://o.zarr``, ``file:./m.zarr``, ``local://`` and the last part of a chained
    URL (``zip::data/m.zip``) are relative paths to fsspec too: they were read against
    the current folder (or, chained, made into a path that names nothing)."""
    import fsspec.core

    folder = tmp_path / "cfg"
    folder.mkdir()
    run_file = folder / "run.yaml"
    run_file.write_text(
        "gagebench:\n"
        "  output: file://out\n"
        "  observed: file://o.zarr\n"
        "  models:\n"
        "    a: file:./a.zarr\n"
        "    b: local://b.zarr\n"
        "    c: zip::data/c.zip\n"
        "    d: simplecache::file://d.zarr\n"
        "    e: file:///abs/e.zarr\n"
        "    f: simplecache::s3://bucket/f.zarr\n"
    )
    cfg = load_config(run_file)
    assert cfg.observed is not None
    for url, name in [
        (cfg.output, "out"),
        (cfg.observed.url, "o.zarr"),
        (cfg.models["a"].url, "a.zarr"),
        (cfg.models["b"].url, "b.zarr"),
        (cfg.models["d"].url, "d.zarr"),
    ]:
        assert fsspec.core.url_to_fs(url)[1] == str(folder / name), url
    assert cfg.models["c"].url == f"zip::{folder / 'data' / 'c.zip'}"
    assert cfg.models["e"].url == "file:///abs/e.zarr"
    assert cfg.models["f"].url == "simplecache::s3://bucket/f.zarr"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_run_file_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    """YAML allows UTF-16/32 with a byte-order mark, and Windows PowerShell 5 writes
    UTF-16 with ``>``: such a run file was refused as "not UTF-8 text"."""
    import codecs

    text = "gagebench:\n  output: out\n  batch_size: 7\n  models: {nwm-v3: m.zarr}\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    run_file = tmp_path / "run.yaml"
    run_file.write_bytes(data)
    cfg = load_config(run_file)
    assert cfg.batch_size == 7
    assert cfg.models["nwm-v3"].url == str(tmp_path / "m.zarr")
    run_file.write_bytes(codecs.BOM_UTF16_LE + b"g\x00\x00\xd8")  # a lone surrogate
    with pytest.raises(ConfigError, match=r"is not UTF-16 text .*save it as UTF-8"):
        load_config(run_file)


def test_settings_nested_hundreds_of_levels_deep_are_refused(tmp_path: Path) -> None:
    """900 nested lists parse (libyaml stops near 1000) and then exhausted Python's
    recursion limit when the settings were walked: a ``RecursionError`` traceback. Also
    a ``--set`` key of thousands of parts, and nested values given from Python."""
    deep = "[" * 900 + "]" * 900
    run_file = tmp_path / "run.yaml"
    run_file.write_text(f"gagebench:\n  output: o\n  storage_options:\n    x: {deep}\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="more than 64 levels deep"):
        load_config(run_file)
    with pytest.raises(ConfigError, match="more than 64 levels deep"):
        parse_override(f"storage_options.x={deep}")
    with pytest.raises(ConfigError, match="has 2001 parts"):
        load_config(overrides={"storage_options." + ".".join(["a"] * 2000): 1})
    nested: dict[str, object] = {}
    node = nested
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"keyword settings.*more than 64 levels deep"):
        load_config(output="o", storage_options=nested)
    assert time.perf_counter() - t0 < 1
    # what settings need still loads (kubernetes pod overrides nest a dozen levels)
    ok = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": [[1]]}}}}}}}}}}}
    assert load_config(output="o", storage_options=ok).storage_options["a"]["b"]["c"]


@pytest.mark.parametrize(
    ("setting", "value"), [("run_id", "nightly\n"), ("model", "nwm\n"), ("model", "n\nwm")]
)
def test_a_name_with_a_newline_is_refused(setting: str, value: str) -> None:
    """``$`` in the name rule matched before a final newline: a run id or model name
    ``"nwm\\n"`` (quoted YAML) passed and named a folder with a newline in it."""
    models = {value if setting == "model" else "nwm": "/stores/nwm.zarr"}
    run_id = value if setting == "run_id" else "r1"
    with pytest.raises(
        ConfigError, match=f"gagebench.{'run_id' if setting == 'run_id' else 'models'}"
    ):
        load_config(output="/out", run_id=run_id, observed="/stores/o.zarr", models=models)


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ("models: {null: m.zarr}", "model name None was read as NoneType"),
        ("models: {yes: m.zarr}", "model name True was read as bool"),
        ("models: {010: m.zarr}", "model name 8 was read as int"),
        ("run_id: 2026-12-07", "run id datetime.date(2026, 12, 7) was read as date"),
    ],
)
def test_names_yaml_reads_as_other_types_are_refused_not_renamed(
    tmp_path: Path, entry: str, shown: str
) -> None:
    """An unquoted ``null``, ``yes`` or ``010`` model name became the folder and column
    ``None``, ``True`` or ``8``: a silent rename. ``--set run_id=010`` stays ``010``."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(f"output: out\nobserved: o.zarr\n{entry}\n")
    with pytest.raises(ConfigError, match=re.escape(shown)):
        load_config(run_file)
    assert parse_override("run_id=010") == ("run_id", "010")
    cfg = load_config(output="o", overrides=dict([parse_override("run_id=010")]))
    assert cfg.run_id == "010"
