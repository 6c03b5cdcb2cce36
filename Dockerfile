# The one runtime image of gagebench: the controller (`gagebench run`), the Dask scheduler
# and the Dask workers all run it, so client and cluster versions always match.
# No ENTRYPOINT: the dask-kubernetes operator starts pods with `args: [dask-scheduler, ...]`
# / `[dask-worker, ...]` and the Helm chart with `gagebench run ...`.
#
#   docker build -t ghcr.io/gagebench/gagebench:0.1.0 .
#   docker build --build-arg BASE_IMAGE=localhost/my-python311 .   # any image with python3 >= 3.11 + venv
ARG BASE_IMAGE=python:3.11-slim

# ---- build: a virtual environment with gagebench[kubernetes], every version pinned ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/requirements/constraints.txt
WORKDIR /src
RUN python3 -m venv /opt/gagebench
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY src ./src
# distributed >= 2025 ships only `dask scheduler` / `dask worker`, but the dask-kubernetes
# operator still starts pods with `dask-scheduler` / `dask-worker`: provide both names.
RUN /opt/gagebench/bin/pip install ".[kubernetes]" \
    && /opt/gagebench/bin/pip check \
    && for role in scheduler worker; do \
         printf '#!/bin/sh\nexec /opt/gagebench/bin/dask %s "$@"\n' "$role" > "/opt/gagebench/bin/dask-$role" \
         && chmod 0755 "/opt/gagebench/bin/dask-$role"; \
       done \
    && /opt/gagebench/bin/gagebench --version \
    && /opt/gagebench/bin/dask-scheduler --version \
    && /opt/gagebench/bin/dask-worker --version

# ---- runtime: the base image + the venv, non-root, nothing else ----
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="gagebench" \
      org.opencontainers.image.description="HyTEST streamflow benchmark statistics on Dask: controller, scheduler and worker image" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/gagebench/gagebench" \
      org.opencontainers.image.licenses="MIT"
# A passwd entry for the numeric uid, so getpass/pwd lookups work for the non-root user.
RUN echo "gagebench:x:10001:10001:gagebench:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "gagebench:x:10001:" >> /etc/group
COPY --from=build /opt/gagebench /opt/gagebench
# HOME=/tmp: the chart runs with a read-only root filesystem and a writable /tmp.
ENV PATH=/opt/gagebench/bin:${PATH} \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba-cache
WORKDIR /tmp
USER 10001:10001
CMD ["gagebench", "--help"]
