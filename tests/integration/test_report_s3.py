"""The report and the comparison on a real S3 API (moto's server on 127.0.0.1).

The run folder is uploaded to the server with s3fs; the report is then read from and
written to ``s3://`` with explicit storage options, as a Kubernetes run would do.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gagebench.report.comparison import compare
from gagebench.report.html import write_report
from report_fixtures import synthetic_results, write_run

pytestmark = pytest.mark.integration

BUCKET = "gagebench-report"


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, Any]]:
    """A moto S3 server on a free port of 127.0.0.1 with one bucket; its fsspec options.

    Moto's IAM check is process-wide: another suite's server may have switched it on, so
    it is off while this module runs (its own key is a dummy) and restored afterwards.
    """
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    old_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        yield {"key": "testing", "secret": "testing", "endpoint_url": endpoint}
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = old_count
        server.stop()


def test_report_reads_and_writes_s3(tmp_path: Path, s3_options: dict[str, Any]) -> None:
    import s3fs

    results = synthetic_results(40, models=("nwm", "nhm"), seed=2)
    local = write_run(tmp_path / "run-s3", results)
    fs = s3fs.S3FileSystem(**s3_options)
    fs.put(str(local), f"{BUCKET}/runs/run-s3", recursive=True)
    url = f"s3://{BUCKET}/runs/run-s3"

    written = write_report(url, storage_options=s3_options)

    assert written == f"{url}/report.html"
    fs.invalidate_cache()
    page = fs.cat(f"{BUCKET}/runs/run-s3/report.html").decode()
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="data:image/png;base64,' in page
    assert "testing" not in page  # no credential from the storage options
    figures = {p.rsplit("/", 1)[1] for p in fs.ls(f"{BUCKET}/runs/run-s3/figures")}
    assert {"cdf.png", "map_kge.png", "scorecard.png", "compare_nwm_vs_nhm.png"} <= figures
    comparison = compare(url, storage_options=s3_options)
    assert comparison.summary.set_index("metric").loc["KGE", "n_paired"] == 40


def test_report_names_an_unreachable_run(s3_options: dict[str, Any]) -> None:
    from gagebench.errors import InputError

    with pytest.raises(InputError, match=r"neither results\.parquet"):
        write_report(f"s3://{BUCKET}/runs/absent", storage_options=s3_options)
