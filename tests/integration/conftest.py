"""Fixtures of the integration suite: a real S3 API server and a real Dask cluster.

Scopes:
- ``s3`` (session): moto's S3 server (server mode, in a thread of this process) on a free
  port of 127.0.0.1, with IAM authentication switched on after setup, so only the access
  key created here is accepted (bad credentials are really refused). Dummy credentials
  in the environment and ``AWS_EC2_METADATA_DISABLED=true`` keep anything from probing a
  metadata address. One bucket, created without a LocationConstraint.
- ``dask_client`` (session): a LocalCluster with 2 worker processes (``processes=True``):
  the in-process moto mock would not reach them, the server does.
- ``daily_stores`` (session): synthetic daily stores for 24 gages on the server.
- ``bucket_url`` (function): a fresh ``s3://`` prefix per test.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

BUCKET = "gagebench-it"
N_GAGES = 24


def free_port() -> int:
    """A TCP port nobody listens on right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    """The running server: its endpoint and the storage options that can use it."""

    endpoint: str
    key: str
    secret: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint}


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    import boto3
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    old_env = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    boto3.client("s3", **kw).create_bucket(Bucket=BUCKET)
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="gagebench")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="gagebench", PolicyName="all", PolicyDocument=json.dumps(policy))
    access = iam.create_access_key(UserName="gagebench")["AccessKey"]
    # From here on every request needs the key made above (moto's IAM simulation).
    old_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    os.environ["AWS_ACCESS_KEY_ID"] = access["AccessKeyId"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = access["SecretAccessKey"]
    try:
        yield S3Server(endpoint, access["AccessKeyId"], access["SecretAccessKey"])
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = old_count
        server.stop()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens (an unreachable endpoint)."""
    return free_port()


@pytest.fixture
def bucket_url(s3: S3Server) -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def dask_client(s3: S3Server) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="2GiB",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def daily_stores(s3: S3Server) -> Any:
    """Daily observed + nwm/nhm stores for 24 gages on S3 (2001-2006), ~12% of the gages
    left out of each store so runs meet not_in_observed / not_in_model."""
    from gagebench.synth import synthesize

    return synthesize(
        f"s3://{BUCKET}/stores/daily",
        n_gages=N_GAGES,
        seed=3,
        missing_fraction=0.12,
        storage_options=s3.storage_options,
        start="2001-01-01",
        end="2006-12-31",
    )
