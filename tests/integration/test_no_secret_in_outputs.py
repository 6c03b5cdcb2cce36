"""No secret given in the configuration or the environment reaches an output: every object
of the run folder (manifest, results, suite CSVs, report, figures) and the run's log lines
are searched for each secret, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml

pytestmark = pytest.mark.integration


def test_no_secret_from_config_or_environment_reaches_an_output(
    daily_stores: Any, bucket_url: str, s3: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:12]
    url_password = f"url-pa55-{tag}"  # in user:pass@ of a URL
    config_token = f"cfg-token-{tag}"  # a token-like setting of the run file
    env_secret = f"env-s3cr3t-{tag}"  # in the environment only
    run_url = f"{bucket_url}/secrets"
    settings = daily_stores.to_config_dict()
    settings.update(
        {
            "output": run_url,
            "run_id": "secrets",
            # the server's real key and secret: the run needs them to read and write
            "storage_options": s3.storage_options,
            "report": True,
            "log_format": "json",
            "cluster": {
                "backend": "local",
                "local": {"n_workers": 1, "memory_limit": "1GiB"},
                "gateway": {
                    "address": f"https://alice:{url_password}@hub.example.org/gateway",
                    "env": {"HUB_API_TOKEN": config_token},
                },
                "kubernetes": {"env": {"SERVICE_PASSWORD": config_token}},
            },
        }
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))

    env = {
        **os.environ,
        "AWS_SECRET_ACCESS_KEY": s3.secret,
        "GAGEBENCH_API_TOKEN": env_secret,
        "HUB_PASSWORD": env_secret,
    }
    done = subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "run", "--config", str(run_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    objects = fs.find(run_url.removeprefix("s3://"))
    names = {o.rsplit("/", 1)[-1] for o in objects}
    assert {"manifest.json", "results.parquet", "report.html"} <= names, names
    assert any(o.endswith(".png") for o in objects)
    outputs = {o: fs.cat_file(o) for o in objects}
    outputs["stdout"] = done.stdout.encode()
    outputs["stderr (log lines)"] = done.stderr.encode()
    assert outputs["stderr (log lines)"].strip(), "the run logged nothing: nothing was checked"

    secrets = {
        "storage_options.secret": s3.secret,
        "user:pass@ in a URL": url_password,
        "a token in the run file": config_token,
        "a secret in the environment": env_secret,
    }
    leaks = [
        f"{what} in {name}"
        for name, data in outputs.items()
        for what, secret in secrets.items()
        if secret.encode() in data
    ]
    assert not leaks, leaks
    # the settings are recorded, masked (so the search above looked where they would be)
    (manifest_key,) = [o for o in objects if o.endswith("/manifest.json")]
    manifest = json.loads(outputs[manifest_key])
    assert manifest["config"]["storage_options"]["secret"] == "***"
    assert manifest["config"]["storage_options"]["endpoint_url"] == s3.endpoint


# --- every stage failing: no secret in any byte of any output, stdout or stderr ----------


class _Garbage:
    """An HTTP server on 127.0.0.1 that answers every GET/HEAD with ``not json`` (200),
    and ``*.csv`` with 500: a store whose metadata does not parse, a list that fails."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                broken = self.path.split("?", 1)[0].endswith(".csv")
                body = b"server error" if broken else b"not json"
                self.send_response(500 if broken else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def garbage() -> Any:
    server = _Garbage()
    yield server
    server.close()


def _secrets(tag: str) -> dict[str, str]:
    return {
        "Authorization header": f"Bearer auth-{tag}",
        "Proxy-Authorization header": f"Basic proxyauth-{tag}",
        "Cookie header": f"session=cookie-{tag}",
        "X-Amz-Security-Token header": f"hdrtoken-{tag}",
        "X-Api-Key header": f"apikey-{tag}",
        "URL password": f"urlpw-{tag}",
        "X-Amz-Signature": f"sig4-{tag}",
        "X-Amz-Credential": f"AKIAQUERY{tag}/20261207/us-east-1/s3/aws4_request",
        "X-Amz-Security-Token query": f"qtoken-{tag}",
        "SAS sig": f"sas-{tag}",
        "access_token": f"oauth-{tag}",
        "env AWS_SESSION_TOKEN": f"envsession-{tag}",
        "env GAGEBENCH_API_TOKEN": f"envapi-{tag}",
    }


def _query(s: dict[str, str]) -> str:
    from urllib.parse import quote

    return (
        f"X-Amz-Signature={quote(s['X-Amz-Signature'])}"
        f"&X-Amz-Credential={quote(s['X-Amz-Credential'], safe='')}"
        f"&X-Amz-Security-Token={quote(s['X-Amz-Security-Token query'])}"
        f"&sig={quote(s['SAS sig'])}&access_token={quote(s['access_token'])}"
    )


def _headers(s: dict[str, str], with_authorization: bool = True) -> dict[str, str]:
    headers = {
        "Cookie": s["Cookie header"],
        "X-Amz-Security-Token": s["X-Amz-Security-Token header"],
        "X-Api-Key": s["X-Api-Key header"],
        "Proxy-Authorization": s["Proxy-Authorization header"],
    }
    if with_authorization:
        headers["Authorization"] = s["Authorization header"]
    return headers


@pytest.mark.parametrize("stage", ["open", "gages", "read", "write", "report"])
def test_no_secret_when_a_run_fails_at_any_stage(
    stage: str, daily_stores: Any, bucket_url: str, s3: Any, tmp_path: Path, garbage: Any
) -> None:
    """The run fails at opening a store, reading the gage list, reading chunks, writing a
    part, or writing the report (which leaves a warning in the manifest). Secrets are in
    the store options' headers, URL user information, URL queries, the settings and the
    environment; none may appear in any byte of the run folder, stdout or stderr."""
    import sys as _sys

    sys.path.insert(0, str(Path(__file__).parent))
    from faultproxy import PASS, FaultProxy, Status

    tag = uuid.uuid4().hex[:12]
    s = _secrets(tag)
    run_url = f"{bucket_url}/{stage}"
    settings = daily_stores.to_config_dict()
    password = s["URL password"]
    # s3fs takes no headers: on S3 stages the header values sit in settings that the
    # manifest records (an unused backend's), HTTP stores get them as headers
    gateway = {
        "address": f"https://alice:{password}@hub.example.org/gateway?{_query(s)}",
        "env": {f"HUB_{k.upper().replace('-', '_')}": v for k, v in _headers(s).items()},
    }
    rules = {
        "read": lambda m, p, n: Status(403) if m == "GET" and "/streamflow/" in p else PASS,
        "write": lambda m, p, n: Status(403) if m == "PUT" and "/_parts/batch-" in p else PASS,
        "report": lambda m, p, n: (
            Status(403) if m == "PUT" and ("report.html" in p or "/figures/" in p) else PASS
        ),
    }
    if stage == "open":
        settings["observed"] = {
            "url": f"{garbage.url}/observed.zarr?{_query(s)}",
            "storage_options": {"headers": _headers(s)},
        }
    if stage == "gages":
        settings["gages"] = f"http://alice:{password}@{garbage.url[7:]}/gages.csv?{_query(s)}"
    with FaultProxy(s3.endpoint) as proxy:
        proxy.rule = rules.get(stage, lambda m, p, n: PASS)
        for spec in (settings["observed"], *settings["models"].values()):
            if isinstance(spec.get("storage_options"), dict):  # S3 stores: through the proxy
                spec["storage_options"] = {**spec["storage_options"], "endpoint_url": proxy.url}
        settings.update(
            {
                "output": run_url,
                "run_id": "secrets",
                "storage_options": {**s3.storage_options, "endpoint_url": proxy.url},
                "report": True,
                "batch_size": 8,
                "retries": {"max_attempts": 2, "max_wait_s": 2, "batch_attempts": 1},
                "cluster": {
                    "backend": "local",
                    "local": {"n_workers": 1, "memory_limit": "1GiB"},
                    "gateway": gateway,
                },
            }
        )
        run_file = tmp_path / "run.yaml"
        run_file.write_text(yaml.safe_dump({"gagebench": settings}))
        env = {
            **os.environ,
            "AWS_SECRET_ACCESS_KEY": s3.secret,
            "AWS_SESSION_TOKEN": s["env AWS_SESSION_TOKEN"],
            "GAGEBENCH_API_TOKEN": s["env GAGEBENCH_API_TOKEN"],
        }
        done = subprocess.run(
            [_sys.executable, "-m", "gagebench.cli", "run", "--config", str(run_file)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
    if stage == "report":
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert done.returncode in (1, 2), done.stderr[-3000:]
        # it failed where it was meant to
        where = {
            "open": "observed store",
            "gages": "gage",
            "read": "cannot read 5 gages from the observed store",
            "write": "_parts/batch-",
        }[stage]
        assert where in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip(), "nothing was said: nothing was checked"

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    objects = fs.find(run_url.removeprefix("s3://"))
    outputs = {o: fs.cat_file(o) for o in objects}
    outputs["stdout"] = done.stdout.encode()
    outputs["stderr"] = done.stderr.encode()
    secrets = {**s, "storage_options.secret": s3.secret}
    leaks = [
        f"{what} in {name}"
        for name, data in outputs.items()
        for what, secret in secrets.items()
        for form in {secret, secret.split(" ", 1)[-1], secret.split("=", 1)[-1]}
        if form.encode() in data
    ]
    assert not leaks, (leaks, done.stderr[-3000:])
    if stage == "report":
        manifest = json.loads(outputs[f"{run_url.removeprefix('s3://')}/secrets/manifest.json"])
        assert manifest["report"]["status"] == "failed"
        env = manifest["config"]["cluster"]["options"]["gateway"]["env"]
        assert env["HUB_AUTHORIZATION"] == "***"
        assert env["HUB_COOKIE"] == "***"
        assert "report.html" not in manifest["outputs"]


_WORKER_SCRIPT = """
import logging
import sys
import warnings

from distributed import Client, LocalCluster

from gagebench.batches import batch_or_failure


def batch(element):
    # what a store library on the worker may say about a URL it reads
    url = "http://reader:{pw}@127.0.0.1:9/obs.zarr?X-Amz-Signature={sig}"
    logging.getLogger("fsspec.demo").warning("retrying %s", url)
    warnings.warn(f"slow read of {{url}}", stacklevel=1)
    return element[0], "done"


if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(client.submit(batch_or_failure, batch, (0, ("01104200",))).result())
"""


def test_no_secret_in_what_a_worker_process_logs(tmp_path: Path) -> None:
    """A batch's worker process masks its own log records and warnings: they reach the
    terminal through the worker's inherited stderr, not through the client's masker."""
    password, signature = "W0rkerPassw0rd", "WorkerSig0123456789abcdef"
    script = tmp_path / "worker_logs.py"
    script.write_text(_WORKER_SCRIPT.format(pw=password, sig=signature))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(0, 'done')" in done.stdout
    assert "retrying http://" in done.stderr, done.stderr[-3000:]  # the line is there...
    for secret in (password, signature):
        assert secret not in done.stdout + done.stderr  # ...masked
