"""Helpers and fixtures of the container suite (conftest.py registers the fixtures): the
runtime image built with podman from the repository's Dockerfile on a Debian base image
made by debootstrap, and a moto S3 server on the host's 127.0.0.1 that containers reach
through host networking.

Scopes (all session: each is minutes from scratch):
- ``base_image``: ``localhost/gagebench-base:bookworm``: Debian bookworm minbase with
  python3 (3.11), venv and pip, made by debootstrap and ``podman import``ed. Registry pulls
  do not work on our machines, so this stands in for ``python:3.11-slim``. Cached in
  podman's storage (and the rootfs tarball under /var/tmp) between runs.
- ``image``: ``podman build --build-arg BASE_IMAGE=<base_image>``; podman's layer cache
  makes rebuilds fast when nothing changed.
- ``s3``: a moto server (``ThreadedMotoServer``) on 127.0.0.1, with a bucket.

These machines need ``--runtime runc`` and explicit ulimits for podman, and the host's CA
bundle mounted for pip to reach the package index through the TLS proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/gagebench-base:bookworm"
IMAGE = "localhost/gagebench:container-test"
CACHE = Path(os.environ.get("GAGEBENCH_CONTAINER_CACHE", "/var/tmp/gagebench-container-cache"))
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PODMAN_RUN = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network",
    "host",
]
DEBIAN_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not installed: apt-get install podman buildah debootstrap runc")
    return path


def podman(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run podman; on failure the assertion shows its output."""
    result = subprocess.run(
        [_need("podman"), *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, (
            f"podman {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def podman_run(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` with this machine's flags and the chart's pod restrictions:
    read-only root filesystem, a writable /tmp, the image's non-root user."""
    return podman(
        "run", "--rm", *PODMAN_RUN, "--read-only", "--tmpfs", "/tmp:rw,size=1g",
        *args, timeout=timeout, check=check,
    )  # fmt: skip


def _image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


@pytest.fixture(scope="session")
def base_image() -> str:
    """A Debian bookworm image with python3.11 + venv, made by debootstrap (cached)."""
    if _image_exists(BASE_IMAGE):
        return BASE_IMAGE
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / "bookworm-python3.tar"
    if not tarball.is_file():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        result = subprocess.run(
            [
                _need("debootstrap"), "--variant=minbase", f"--include={DEBIAN_PACKAGES}",
                "bookworm", str(rootfs), "http://deb.debian.org/debian",
            ],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert result.returncode == 0, f"debootstrap failed:\n{result.stdout[-3000:]}"
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE)
    return BASE_IMAGE


@dataclass(frozen=True)
class Image:
    name: str
    build_seconds: float
    size_bytes: int


@pytest.fixture(scope="session")
def image(base_image: str) -> Image:
    """The runtime image from the repository's Dockerfile, on the debootstrap base."""
    ca = (
        ["--volume", f"{CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
        if CA_BUNDLE.is_file()
        else []
    )
    start = time.monotonic()
    podman(
        "build", *PODMAN_RUN, *ca,
        "--build-arg", f"BASE_IMAGE={base_image}",
        "--build-arg", "REVISION=container-test",
        "--tag", IMAGE, "--file", str(ROOT / "Dockerfile"), str(ROOT),
        timeout=1500,
    )  # fmt: skip
    took = time.monotonic() - start
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB, built in {took:.0f} s")
    return Image(IMAGE, took, size)


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """A moto S3 server on the host's loopback, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="gagebench")
    try:
        yield S3(endpoint, "gagebench")
    finally:
        server.stop()
