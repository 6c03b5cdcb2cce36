"""A controller stand-in: open gagebench's configured cluster backend, compute, close.

Used by the error and scaling scenarios of the rehearsal, where no run (stores, S3) is
needed: it goes through ``gagebench.clusters.cluster_client`` exactly as ``gagebench run``
does, and reports a GagebenchError the way the CLI does (one line, exit status 2).
Usage: python cluster_probe.py SETTINGS_JSON [N_TASKS TASK_SECONDS]
"""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import partial

from gagebench.clusters import cluster_client
from gagebench.config import load_config
from gagebench.errors import GagebenchError

log = logging.getLogger("gagebench")


def _slow_square(seconds: float, i: int) -> int:
    """One task: sleep ``seconds`` (to keep workers busy), then return i * i."""
    time.sleep(seconds)
    return i * i


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = json.loads(sys.argv[1])
    n_tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    cfg = load_config(overrides=settings)
    try:
        with cluster_client(cfg) as client:
            futures = client.map(partial(_slow_square, seconds), range(n_tasks))
            squares = client.gather(futures)
            workers = client.scheduler_info()["workers"].values()
            print(json.dumps({"sum": sum(squares), "workers": sorted(w["name"] for w in workers)}))
    except GagebenchError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
