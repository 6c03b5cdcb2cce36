"""One masker for everything that leaves the process: credential keys, URL user
information, secret query parameters and headers, and known secret values never reach
``manifest.json``, the report, log records, warnings or tracebacks."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gagebench.config import load_config
from gagebench.redact import (
    MASK,
    MaskedStream,
    is_secret_key,
    mask_record,
    redact,
    redact_text,
    redact_urls,
    remember,
    remember_environment,
    remember_settings,
    secrets_in,
)
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


# --- the one masker: text, known values, the environment, and the edges ----------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://h/obs.zarr?X-Amz-Signature=abc123def&X-Amz-Date=1", "abc123def"),
        ("https://h/o.zarr?X-Amz-Credential=AKIA%2F2026%2Fs3&x=1", "AKIA%2F2026%2Fs3"),
        ("https://h/o.zarr?a=1&X-Amz-Security-Token=FwoGZX", "FwoGZX"),
        ("https://acct.blob.core.windows.net/c/o.zarr?sv=2022&sig=Zm9vYmFy%3D", "Zm9vYmFy%3D"),
        ("https://h/x?token=tok-1&access_token=at-2", "tok-1"),
        ("https://h/x?token=tok-1&access_token=at-2", "at-2"),
        ("<a href='https://h/x?a=1&amp;sig=htmlsig'>", "htmlsig"),
        ("http://alice:pa55word@host/x", "pa55word"),
        ("headers: {'Authorization': 'Bearer eyJhbGci', 'Accept': '*/*'}", "eyJhbGci"),
        ('{"Cookie": "session=c00kie"}', "c00kie"),
        ("Proxy-Authorization: Basic YWxhZGRpbg==", "YWxhZGRpbg=="),
        ("x-api-key=k3y-value", "k3y-value"),
        # an Azure connection string: AccountKey after AccountName (was swallowed into it)
        ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=azk3y==;E=x", "azk3y=="),
        ("https://h/x?AWSAccessKeyId=AKIAOLD&Expires=1&Signature=oldsig%3D", "oldsig%3D"),
        ("https://h/x?AWSAccessKeyId=AKIAOLD&Expires=1&Signature=oldsig%3D", "AKIAOLD"),
        ("https://h/x?X-Goog-Signature=goog5ig&X-Goog-Credential=gc%40p", "goog5ig"),
        ("https://ghp_t0kenAsUser@github.com/o/r.zarr", "ghp_t0kenAsUser"),
        # a raw "@" in the password: URL parsers split the host at the last one
        ("cannot open http://alice:p@ss-w0rd@host/x.zarr", "ss-w0rd"),
    ],
)
def test_secrets_in_text_are_masked(text: str, secret: str) -> None:
    masked = redact_text(text)
    assert secret not in masked, masked
    assert MASK in masked


def test_more_credential_option_names_are_masked() -> None:
    """adlfs' ``connection_string``, an ``Authentication`` header, a key ``passphrase``."""
    options = {
        "connection_string": "AccountName=a;AccountKey=k",
        "headers": {"Authentication": "Basic abc", "Accept": "*/*"},
        "passphrase": "pp",
    }
    assert redact({"storage_options": options}) == {
        "storage_options": {
            "connection_string": MASK,
            "headers": {"Authentication": MASK, "Accept": "*/*"},
            "passphrase": MASK,
        }
    }


def test_a_password_with_a_raw_at_sign_is_remembered_whole() -> None:
    assert secrets_in({"observed": "http://alice:p@ss-w0rd@host/x.zarr"}) == ["p@ss-w0rd"]
    text = "s3://bucket/path/with@sign/x s3://b/k?x=a@b"
    assert redact_text(text) == text  # an "@" in a path or a query is no password


def test_ordinary_text_and_query_parameters_are_kept() -> None:
    text = "s3://bucket/obs.zarr?versionId=3&X-Amz-Date=20261207 cookies: 2 authorization"
    assert redact_text(text) == text
    assert redact_text("cannot read 5 gages from the observed store") == (
        "cannot read 5 gages from the observed store"
    )


def test_known_secrets_are_masked_anywhere_in_every_written_form() -> None:
    secret = f"wJal/rXUtn+FEMI{uuid.uuid4().hex[:8]}"
    remember_settings({"storage_options": {"secret": secret, "anon": False}})
    for written in (secret, secret.replace("/", "%2F").replace("+", "%2B"), f'"{secret}"'):
        assert secret not in redact_text(f"error: signature with {written} failed")
    remember("short")  # too short to mask wherever it appears
    assert redact_text("a short text") == "a short text"


def test_secret_environment_variables_are_masked_but_not_paths() -> None:
    value = f"env-secret-{uuid.uuid4().hex[:8]}"
    path = f"/home/u/{uuid.uuid4().hex[:8]}/credentials"
    remember_environment(
        {
            "AWS_SECRET_ACCESS_KEY": value,
            "AWS_SHARED_CREDENTIALS_FILE": path,
            "GOOGLE_APPLICATION_CREDENTIALS": path,
            "HOME": "/home/u",
        }
    )
    assert value not in redact_text(f"boto said {value}")
    assert path in redact_text(f"read {path}")


@pytest.mark.parametrize(
    "name",
    ["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING"],
)
def test_azure_storage_keys_in_the_environment_are_masked(name: str) -> None:
    """adlfs reads the account key and connection string from these variables."""
    value = f"azure-{uuid.uuid4().hex[:12]}=="
    remember_environment({name: value})
    assert value not in redact_text(f"adlfs said {value}")


def test_a_secret_key_that_starts_with_a_slash_is_masked() -> None:
    """AWS secret keys are base64-like: one in 64 starts with "/", and was taken for a path."""
    value = f"/{uuid.uuid4().hex[:20]}+Xy/Zz"
    path = f"/home/u/{uuid.uuid4().hex[:8]}/key.json"
    remember_environment({"AWS_SECRET_ACCESS_KEY": value, "GOOGLE_APPLICATION_CREDENTIALS": path})
    assert value not in redact_text(f"boto said {value}")
    assert path in redact_text(f"read {path}")


def test_a_log_record_is_masked_with_its_arguments_and_traceback() -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex[:8]}"
    remember(secret)
    try:
        raise ValueError(f"cannot open https://h/x?sig={secret}")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "url %s failed", (f"http://u:{secret}@h",), None
        )
        record.exc_info = sys.exc_info()
    mask_record(record)
    text = logging.Formatter().format(record)
    assert secret not in text
    assert "ValueError" in text
    assert "Traceback" in text
    from gagebench.logs import JsonFormatter

    assert secret not in JsonFormatter().format(record)


def test_masked_stream_masks_what_is_written() -> None:
    buffer = io.StringIO()
    stream = MaskedStream(buffer)
    print("results: http://u:topsecret1@host/run", file=stream)
    assert "topsecret1" not in buffer.getvalue()
    assert stream.getvalue() == buffer.getvalue()  # everything else is the stream's


def test_installed_edges_mask_logs_warnings_and_uncaught_tracebacks() -> None:
    """In a fresh interpreter: a log record of any logger, a warning and a bug's
    traceback, after ``install()``."""
    code = """
import logging, warnings
from gagebench.redact import install
install()
logging.basicConfig()
logging.getLogger("distributed.worker").error("https://h/x?X-Amz-Signature=SIGSECRET1")
warnings.warn("open https://u:PWSECRET2@h/x")
raise RuntimeError("https://h/x?token=TOKSECRET3")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "RuntimeError" in done.stderr
    assert "Traceback" in done.stderr
    for secret in ("SIGSECRET1", "PWSECRET2", "TOKSECRET3"):
        assert secret not in done.stderr, done.stderr


def test_names_of_a_kubernetes_secret_are_not_masked_as_known_secrets() -> None:
    remember_settings(
        {"secret_env": {"secret_name": "s3-credentials", "keys": {"AWS_ACCESS_KEY_ID": "id-key"}}}
    )
    assert redact_text("mount the Secret s3-credentials") == "mount the Secret s3-credentials"


def test_the_token_of_a_header_value_is_masked_on_its_own() -> None:
    token = f"eyJ{uuid.uuid4().hex}"
    remember_settings({"storage_options": {"headers": {"Authorization": f"Bearer {token}"}}})
    assert token not in redact_text(f"401 for token {token}")
    assert redact_text("Bearer of good news") == "Bearer of good news"


def test_a_bare_key_is_a_secret_only_in_storage_options() -> None:
    access = f"AKIA{uuid.uuid4().hex[:12].upper()}"
    remember_settings(
        {
            "storage_options": {"key": access},
            "cluster": {"kubernetes": {"tolerations": [{"key": "dedicated-nodes"}]}},
        }
    )
    assert access not in redact_text(f"key {access}")
    assert redact_text("key: dedicated-nodes") == "key: dedicated-nodes"


def test_a_run_configs_repr_holds_no_secret() -> None:
    """A notebook shows a RunConfig by its repr: URL passwords, query tokens, headers and
    storage options (also short ones, never remembered as known values) are masked."""
    tag = uuid.uuid4().hex[:10]
    cfg = load_config(
        output="/tmp/out",
        observed=f"http://alice:pw-{tag}@127.0.0.1:1/o.zarr?X-Amz-Signature=sig-{tag}",
        models={
            "nwm": {
                "url": "s3://bucket/nwm.zarr",
                "storage_options": {"headers": {"Authorization": f"Bearer hdr-{tag}"}},
                "crosswalk": {
                    "url": f"https://h/x.csv?sig=sas-{tag}",
                    "gage": "g",
                    "feature": "f",
                    "storage_options": {"token": f"cw-{tag}"},
                },
            }
        },
        storage_options={"key": "AK", "secret": "s3c"},  # too short to be a known value
        cluster={"gateway": {"env": {"HUB_API_TOKEN": f"hub-{tag}"}}},
    )
    shown = repr(cfg)
    assert "StoreConfig(" in shown  # the structure still shows
    assert "Crosswalk(" in shown
    for secret in (f"pw-{tag}", f"sig-{tag}", f"hdr-{tag}", f"sas-{tag}", f"cw-{tag}",
                   f"hub-{tag}", "'s3c'", "'AK'"):  # fmt: skip
        assert secret not in shown, (secret, shown)


def test_a_failed_run_raises_no_secret_to_a_python_caller(tmp_path: Path) -> None:
    """``gagebench.run()`` from a script or notebook: the exception, its repr and the whole
    chained traceback (fsspec's ``FileNotFoundError(url)`` below it) hold no password or
    token of the store URL, though no CLI stream masks them."""
    import traceback

    import gagebench

    tag = uuid.uuid4().hex[:10]
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = load_config(
        output=str(tmp_path / "out"),
        gage_limit=2,
        observed=f"http://alice:pw-{tag}@127.0.0.1:{port}/o.zarr?X-Amz-Signature=sig-{tag}",
        models={"nwm": f"http://127.0.0.1:{port}/nwm.zarr?access_token=tok-{tag}"},
    )
    with pytest.raises(gagebench.StorageError) as caught:
        gagebench.run(cfg)
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert "cannot open the observed store" in shown
    for secret in (f"pw-{tag}", f"sig-{tag}", f"tok-{tag}"):
        assert secret not in shown, (secret, shown)
    assert not (tmp_path / "out").exists()
