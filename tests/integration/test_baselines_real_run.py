"""A real run (CLI, LocalCluster, stores on disk) with the uncertainty suite, compared with
a published table in HyTEST's layout through ``gagebench compare --baseline``: the
verdict counts "beyond sampling noise" equal a pandas computation written here from the
run's own ``KGE_p05``/``KGE_p95`` and the published scores (with ``-inf`` and an empty
cell among them, counted and named, not silently dropped)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]
NWM = Path(__file__).parents[1] / "data" / "published" / "NWM_v2.1_streamflow_example.csv"


def test_verdicts_of_a_real_run_against_a_published_table_equal_pandas(tmp_path: Path) -> None:
    from gagebench.synth import synthesize

    stores = synthesize(
        str(tmp_path / "stores"),
        n_gages=12,
        models=("nwm",),
        seed=5,
        start="2001-01-01",
        end="2010-12-31",
    )
    settings = {
        **stores.to_config_dict(),
        "run_id": "vs-published",
        "output": str(tmp_path / "out"),
        "report": False,
        "suites": ["standard", "uncertainty"],
        "uncertainty": {"n_samples": 300, "seed": 1},
        "cluster": {"backend": "local", "local": {"n_workers": 2, "memory_limit": "1GiB"}},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"gagebench": settings}))
    done = subprocess.run(
        [*GAGEBENCH, "run", "-c", "run.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run = tmp_path / "out" / "vs-published"
    results = pd.read_parquet(run / "results.parquet")
    ok = results[np.isfinite(results["KGE_p05"])].reset_index(drop=True)
    assert len(ok) >= 4
    # HyTEST's published NWM scores, given to the run's gages (sites in HyTEST's form)
    pub = pd.read_csv(NWM, dtype={"site_no": str}).head(len(ok)).copy()
    pub["site_no"] = ["USGS-" + str(s).removeprefix("USGS-") for s in ok["site_no"]]
    pub.loc[0, "KGE"] = -np.inf
    pub.loc[1, "KGE"] = np.nan
    table = tmp_path / "published.csv"
    pub.to_csv(table, index=False)
    out = tmp_path / "vs.csv"
    done = subprocess.run(
        [*GAGEBENCH, "compare", str(run), "--baseline", f"nwm={table}", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    ref = ok.assign(site_no=pub["site_no"]).merge(pub, on="site_no", suffixes=("_a", "_b"))
    known = np.isfinite(ref["KGE_a"]) & np.isfinite(ref["KGE_b"])
    a_better = int((known & (ref["KGE_p05"] > ref["KGE_b"])).sum())
    b_better = int((known & (ref["KGE_p95"] < ref["KGE_b"])).sum())
    per_gage = pd.read_csv(out, dtype={"site_no": str})
    beyond = per_gage.set_index("site_no")["KGE_beyond"]
    model = str(ok["model"].iloc[0])
    assert int((beyond == model).sum()) == a_better
    published = "nwm (published)" if model == "nwm" else "nwm"  # the run's model is nwm too
    assert int((beyond == published).sum()) == b_better
    assert int((beyond == "within").sum()) == int(known.sum()) - a_better - b_better
    odd = ", ".join(str(s) for s in pub["site_no"][:2])
    assert f"KGE: gages in both not paired (a value empty or infinite): 2: {odd}" in done.stdout
