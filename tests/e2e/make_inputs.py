"""Write the kind run's inputs: the bucket and synthetic stores for 20 gages, 5 years.

Used by .github/workflows/kind.yaml with AWS_ENDPOINT_URL pointing at the in-cluster S3
server (port-forwarded); the URLs match helm/gagebench/ci/kind-values.yaml.
"""

from __future__ import annotations

import os

import boto3

from gagebench.synth import synthesize

BUCKET = "gagebench-e2e"


def main() -> None:
    """Create the bucket, then the observed and nwm stores under s3://gagebench-e2e/synth."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    stores = synthesize(
        f"s3://{BUCKET}/synth",
        n_gages=20,
        start="2010-01-01",
        end="2014-12-31",
        models=("nwm",),
        storage_options={"endpoint_url": endpoint},
    )
    print("synthetic stores:", stores.observed_url, stores.model_urls)


if __name__ == "__main__":
    main()
