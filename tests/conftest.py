"""Shared pytest fixtures.

Scopes: fixtures here are cheap and function-scoped unless named otherwise. Suites that
need services (the moto S3 server, a LocalCluster) start them in their own folder's
conftest, so ``tests/unit`` never needs a network, a cluster or Docker.
"""

from __future__ import annotations

import os

# Nothing may probe a cloud metadata address or real credentials during tests.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
