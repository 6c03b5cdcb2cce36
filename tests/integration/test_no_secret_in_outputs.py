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
