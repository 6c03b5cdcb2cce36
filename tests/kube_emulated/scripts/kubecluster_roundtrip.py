"""A user's process: a dask-kubernetes KubeCluster, create -> compute -> delete.

The class is the KubeCluster subclass gagebench's kubernetes backend uses: dask-kubernetes'
own, plus a start-up watch that names why pods cannot run and sets the phase of a
DaskCluster that dask-kubernetes <= 2026.3.0 leaves Pending although its scheduler is up
(dask/dask-kubernetes#968; a plain KubeCluster then times out - about one run in three
here). Run by test_operator_roundtrip.py against the emulated API; prints one JSON line.
Usage: python kubecluster_roundtrip.py NAME NAMESPACE N_WORKERS
"""

from __future__ import annotations

import json
import os
import sys
import time

from distributed import Client

from gagebench.clusters.kubernetes import _kubecluster_type


def main() -> None:
    name, namespace, n_workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.monotonic()
    kube_cluster = _kubecluster_type()
    cluster = kube_cluster(
        name=name,
        namespace=namespace,
        n_workers=n_workers,
        resource_timeout=60,
        wait_timeout=60,
        quiet=True,
    )
    t_up = time.monotonic() - t0
    try:
        with Client(cluster) as client:
            client.wait_for_workers(n_workers, timeout=60)
            workers = client.scheduler_info()["workers"].values()
            answer = client.submit(lambda x: x + 1, 41, pure=False).result(timeout=60)
            pids = client.run(os.getpid)
            report = {
                "scheduler": cluster.scheduler_address,
                "worker_names": sorted(w["name"] for w in workers),
                "answer": answer,
                "worker_pids": sorted(pids.values()),
                "startup_s": round(t_up, 2),
            }
    finally:
        t1 = time.monotonic()
        cluster.close()
    report["close_s"] = round(time.monotonic() - t1, 2)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
