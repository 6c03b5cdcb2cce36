"""Backends from outside gagebench: ``module:Class`` settings and the entry-point group
``gagebench.backends``, found for real (a module and a ``*.dist-info`` folder on
``sys.path``, read by importlib.metadata; no mocks), and the errors when they are wrong."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gagebench.clusters import backend_class, check_settings, cluster_client, get_backend
from gagebench.clusters.base import ClusterBackend
from gagebench.clusters.registry import available
from gagebench.config import load_config
from gagebench.errors import ClusterError, ConfigError

#: A plugin backend: an in-process LocalCluster with its own settings section ``tiny``.
PLUGIN = """
import contextlib
from pydantic import Field
from gagebench.clusters import ClusterBackend
from gagebench.clusters.local import LocalBackend
from gagebench.schema import Section


class TinyBackend(ClusterBackend):
    name = "tiny"
    started_here = True
    memory_key = "memory"
    defaults = {"workers": 1, "memory": "1GiB"}

    @contextlib.contextmanager
    def client(self):
        from distributed import Client, LocalCluster

        with LocalCluster(
            n_workers=self.options["workers"], processes=False, dashboard_address=":0",
            memory_limit=self.options["memory"],
        ) as cluster, Client(cluster) as client:
            yield client


class TypedSettings(Section):
    workers: int = Field(1, ge=1, description="worker threads")


class TypedBackend(TinyBackend):
    # the documented form: a Settings model, so types and bounds are checked too

    name = "typed"
    Settings = TypedSettings


class NotABackend:
    name = "nope"


class Nameless(ClusterBackend):
    pass


class Clashing(TinyBackend):
    name = "local"  # a built-in's section, with settings of its own


class MyLocal(LocalBackend):
    # the built-in local backend, its client() changed: its settings are cluster.local
    pass
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path with the module ``tinyplug`` and a distribution ``tinyplug``
    whose entry points register it (``tiny``) and a broken one (``broken``)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "tinyplug.py").write_text(PLUGIN)
    dist = root / "tinyplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [gagebench.backends]
            tiny = tinyplug:TinyBackend
            broken = tinyplug_missing.sub:Gone
            misnamed = tinyplug:TinyBackend
            """
        )
    )
    monkeypatch.syspath_prepend(str(root))
    return root


def _cfg(tmp_path: Path, **overrides: object):
    return load_config(output=str(tmp_path / "out"), overrides=overrides)


def test_a_module_class_backend_runs_with_its_own_section(plugin_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, **{"cluster.backend": "tinyplug:TinyBackend", "cluster.tiny.workers": 2})
    check_settings(cfg)
    backend = get_backend(cfg)
    assert backend.options == {"workers": 2, "memory": "1GiB"}
    assert type(backend).memory_setting() == "gagebench.cluster.tiny.memory"
    with cluster_client(cfg) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.submit(pow, 2, 10).result() == 1024


def test_an_entry_point_backend_is_found_by_name(plugin_dir: Path, tmp_path: Path) -> None:
    cls = backend_class("tiny")
    assert cls.__module__ == "tinyplug"
    assert issubclass(cls, ClusterBackend)
    assert "tiny" in available().split(", ")
    cfg = _cfg(tmp_path, **{"cluster.backend": "tiny"})
    with cluster_client(cfg) as client:
        assert client.submit(sum, [1, 2]).result() == 3
    # unknown keys of a plugin's section are refused like a built-in's
    bad = _cfg(tmp_path, **{"cluster.backend": "tiny", "cluster.tiny.wokers": 2})
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.tiny\.wokers.*memory, workers"):
        check_settings(bad)
    # ... also when another backend is in use
    bad = _cfg(tmp_path, **{"cluster.backend": "local", "cluster.tiny.wokers": 2})
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.tiny\.wokers"):
        check_settings(bad, cluster=False)


def test_a_plugin_settings_model_checks_types_and_bounds(plugin_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, **{"cluster.backend": "tinyplug:TypedBackend", "cluster.typed.workers": 2})
    assert get_backend(cfg).options == {"workers": 2}
    for bad, shown in (("2", "'2'"), (0, "0")):
        wrong = _cfg(
            tmp_path, **{"cluster.backend": "tinyplug:TypedBackend", "cluster.typed.workers": bad}
        )
        with pytest.raises(
            ConfigError, match=rf"gagebench\.cluster\.typed\.workers: expected .*, got {shown}"
        ):
            check_settings(wrong)


def test_an_unknown_backend_lists_the_available_ones(plugin_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(tmp_path, **{"cluster.backend": "pbs"})
    message = str(info.value)
    assert message.startswith("gagebench.cluster.backend: unknown backend 'pbs'")
    for name in ("address, auto", "local", "slurm", "tiny"):  # built-ins and entry points
        assert name in message
    assert "module:Class" in message
    assert "gagebench.backends" in message
    for malformed in ("tinyplug:", ":TinyBackend", "tiny plug:X", "a:b:c"):
        with pytest.raises(ConfigError, match="unknown backend"):
            backend_class(malformed)


def test_a_module_class_that_cannot_be_imported_names_the_module_and_the_fix(
    plugin_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        backend_class("mylab.dask_backends:PBSBackend")
    message = str(info.value)
    assert "'mylab.dask_backends:PBSBackend' cannot be imported" in message
    assert "module 'mylab.dask_backends' failed to import" in message
    assert "PYTHONPATH" in message
    assert "install the package" in message
    with pytest.raises(ConfigError, match=r"module 'tinyplug' has no attribute 'Missing'"):
        backend_class("tinyplug:Missing")


def test_a_class_that_is_not_a_backend_is_refused(plugin_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"tinyplug:NotABackend is not a ClusterBackend"):
        backend_class("tinyplug:NotABackend")
    with pytest.raises(ConfigError, match=r"sets no `name`"):
        backend_class("tinyplug:Nameless")


def test_a_module_class_named_like_a_built_in_with_other_settings_is_refused(
    plugin_dir: Path, tmp_path: Path
) -> None:
    """A class named ``local`` would get gagebench.yaml's cluster.local (n_workers, ...),
    which its settings refuse: say that its name is taken, not that the user wrote keys
    they never wrote. A subclass of the built-in (its settings) keeps the name."""
    cfg = _cfg(tmp_path, **{"cluster.backend": "tinyplug:Clashing"})
    with pytest.raises(ConfigError) as info:
        check_settings(cfg)
    message = str(info.value)
    assert message.startswith("gagebench.cluster.backend: 'tinyplug:Clashing' is named 'local'")
    assert "built-in backend" in message
    assert "give the class another `name`" in message
    assert "unknown setting" not in message
    mine = _cfg(tmp_path, **{"cluster.backend": "tinyplug:MyLocal", "cluster.local.n_workers": 1})
    check_settings(mine)
    assert get_backend(mine).options["n_workers"] == 1


def test_a_broken_entry_point_names_its_distribution(plugin_dir: Path) -> None:
    with pytest.raises(ClusterError) as info:
        backend_class("broken")
    message = str(info.value)
    assert "entry point gagebench.backends:broken of tinyplug" in message
    assert "'tinyplug_missing.sub'" in message
    assert "reinstall tinyplug" in message
    with pytest.raises(ClusterError, match=r"its class tinyplug:TinyBackend is named 'tiny'"):
        backend_class("misnamed")  # its section would be cluster.tiny, not cluster.misnamed


def test_a_section_no_backend_owns_is_refused(plugin_dir: Path, tmp_path: Path) -> None:
    # a module:Class backend's section is only known once its class is imported
    cfg = _cfg(tmp_path, **{"cluster.backend": "tinyplug:TinyBackend", "cluster.tinny.workers": 1})
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.tinny: no backend has a section"):
        check_settings(cfg, cluster=False)


def test_the_cli_says_what_is_wrong_with_a_backend_in_one_line(
    plugin_dir: Path, tmp_path: Path
) -> None:
    """Through the real command: an unknown backend (listing the entry point's too) and a
    module that does not import are one line each (exit 2), with no traceback."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    for backend, expected in (
        ("pbs", "unknown backend 'pbs'; choose one of address, auto, broken"),
        ("mylab.nothere:X", "module 'mylab.nothere' failed to import"),
    ):
        settings = {
            "cluster.backend": backend,
            "observed.url": str(tmp_path / "observed.zarr"),
            "models.nwm.url": str(tmp_path / "nwm.zarr"),
            "output": str(tmp_path / "out"),
        }
        sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
        proc = subprocess.run(
            [sys.executable, "-m", "gagebench.cli", "run", *sets],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()  # refused before anything is written
