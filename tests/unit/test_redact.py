"""One secret rule for the manifest and the report: credential keys and URL user
information never reach ``manifest.json`` or the report's provenance, and both show the
same thing."""

from __future__ import annotations

from gagebench.config import load_config
from gagebench.redact import MASK, is_secret_key, redact, redact_urls
from gagebench.report.html import provenance_table

OPTIONS = {
    "key": "AKIA",
    "secret": "s3cr3t",
    "token": "t0k3n-v4lue",
    "credentials": {"user": "u", "pw": "hidden"},
    "aws_secret_access_key": "sak",
    "api_key": "k",
    "anon": False,
    "client_kwargs": {"endpoint_url": "https://alice:pa55@minio.example.org"},
}
LEAKS = ("AKIA", "s3cr3t", "t0k3n-v4lue", "hidden", "sak", "pa55")


def test_the_configs_view_masks_credential_keys_and_url_passwords() -> None:
    cfg = load_config(
        storage_options=OPTIONS,
        overrides={"observed": {"url": "s3://bob:hunter2@bucket/obs.zarr"}},
    )
    shown = cfg.to_dict()
    text = repr(shown)
    for secret in (*LEAKS, "hunter2"):
        assert secret not in text, secret
    assert shown["storage_options"]["credentials"] == MASK  # a whole mapping, not its keys
    assert shown["storage_options"]["anon"] is False
    assert shown["observed"]["url"] == "s3://***@bucket/obs.zarr"


def test_the_reports_provenance_agrees_with_the_manifest() -> None:
    manifest = redact_urls(
        {
            "run_url": "s3://carol:pw9@bucket/run",
            "config": redact({"storage_options": OPTIONS}),
            "inputs": {"observed": "https://dave:xyz@host/obs.zarr"},
        }
    )
    table = provenance_table(manifest, "s3://carol:pw9@bucket/run")
    text = " ".join(table["value"].astype(str))
    for secret in (*LEAKS, "pw9", "xyz"):
        assert secret not in text, secret
        assert secret not in repr(manifest), secret
    rows = dict(zip(table["key"], table["value"], strict=True))
    assert rows["run URL"] == "s3://***@bucket/run"
    assert rows["config.storage_options.anon"] == "False"


def test_names_of_a_kubernetes_secret_are_not_secrets() -> None:
    settings = {"secret_env": {"secret_name": "s3-creds", "keys": {"AWS_REGION": "region"}}}
    assert redact(settings) == settings
    assert not is_secret_key("secret_name")
    assert is_secret_key("private_key")
    assert is_secret_key("Password")


def test_empty_secrets_still_show_as_not_set() -> None:
    assert redact({"token": None, "secret": ""}) == {"token": None, "secret": ""}
