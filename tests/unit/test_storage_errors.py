"""The one storage-error translator: each kind of failure names the URL and its fix; a bug
is never translated."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from gagebench.errors import InputError, StorageError
from gagebench.storage.errors import is_storage_exception, storage_error, translating
from gagebench.storage.retry import StoreUnavailable

URL = "s3://bucket/runs/r1/results.parquet"


def _client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "hint"),
    [
        (NoCredentialsError(), "no valid credentials: check key/secret/token"),
        (PermissionError(13, "Forbidden"), "access denied"),
        (_client_error("AccessDenied", 403), "access denied"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "check endpoint_url"),
        (ConnectionRefusedError(111, "Connection refused"), "the endpoint cannot be reached"),
        (FileNotFoundError(2, "No such file", URL), "it does not exist: check the URL"),
        (_client_error("NoSuchBucket", 404), "it does not exist: check the URL"),
        (
            TypeError("__init__() got an unexpected keyword argument 'endpoint'"),
            "a storage option is not accepted",
        ),
        (_client_error("SlowDown", 503), "run again with the same run_id to resume"),
        (IsADirectoryError(21, "Is a directory"), "check the URL, the credentials"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_each_kind_of_failure_names_the_url_the_cause_and_the_fix(
    exc: BaseException, hint: str
) -> None:
    with pytest.raises(StorageError) as info, translating(URL, "read"):
        raise exc
    text = str(info.value)
    assert text.startswith(f"cannot read {URL}: "), text
    assert hint in text, text
    assert type(exc).__name__ in text, text  # the cause
    assert info.value.__cause__ is exc


def test_what_and_key_name_the_setting() -> None:
    error = storage_error(
        FileNotFoundError("x.csv"), "/x.csv", "read", "the crosswalk", "crosswalk.url"
    )
    assert str(error).startswith(
        "cannot read the crosswalk '/x.csv': it does not exist: check crosswalk.url"
    )


def test_a_store_unavailable_keeps_its_own_words_and_gains_the_url() -> None:
    down = StoreUnavailable("the object store x kept failing for 3.0 s and 4 attempts: an outage")
    said = rf"^cannot write {URL}: the object store x kept failing"
    with pytest.raises(StorageError, match=said), translating(URL, "write"):
        raise down


def test_a_real_missing_file_and_a_real_unknown_protocol(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.parquet")
    said = r"none\.parquet: it does not exist: check the URL"
    with pytest.raises(StorageError, match=said), translating(missing, "read"):
        fsspec.filesystem("file").cat_file(missing)
    said = r"cannot open nosuch://x: unknown or unavailable protocol"
    opening = translating("nosuch://x", "open", also=(ImportError, ValueError))
    with pytest.raises(StorageError, match=said), opening:
        fsspec.core.url_to_fs("nosuch://x")


@pytest.mark.parametrize(
    "bug",
    [
        TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
        ValueError("cannot reshape array of size 3 into shape (2,)"),
        KeyError("figure"),
        ZeroDivisionError("float division by zero"),
        InputError("the observed store: not daily"),
        StorageError("cannot commit: 2 batch part(s) are missing"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_bug_or_our_own_error_is_never_translated(bug: Exception) -> None:
    with pytest.raises(type(bug)) as info, translating(URL, "read"):
        raise bug
    assert info.value is bug


def test_a_caller_names_what_counts_as_storage_in_its_block() -> None:
    assert not is_storage_exception(KeyError("zarr.json"))
    assert is_storage_exception(KeyError("zarr.json"), also=(KeyError,))
    assert not is_storage_exception(InputError("bad"), also=(ValueError,))
    said = r"the observed store 's3://b/o\.zarr': it does not exist"
    opening = translating("s3://b/o.zarr", "open", "the observed store", also=(KeyError,))
    with pytest.raises(StorageError, match=said), opening:
        raise KeyError("zarr.json")


def test_the_synthetic_stores_writer_uses_the_translator(tmp_path: Path) -> None:
    """A real write under a path that is a file: the store's URL, the hint and the cause."""
    from gagebench.synth import synthesize

    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    said = (
        r"cannot write the synthetic store '.*blocker/out/observed\.zarr': "
        "a part of the path is a file, not a folder: check the URL"
    )
    with pytest.raises(StorageError, match=said) as info:
        synthesize(str(blocker / "out"), n_gages=3, start="2000-01-01", end="2000-03-01")
    assert "NotADirectoryError" in str(info.value)


def _has(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


@pytest.mark.parametrize(
    ("url", "package"),
    [("gs://bucket/x.zarr", "gcsfs"), ("az://container/x.zarr", "adlfs")],
)
def test_a_protocol_whose_package_is_missing_names_what_to_install(url: str, package: str) -> None:
    if _has(package):
        pytest.skip(f"{package} is installed here: fsspec raises no ImportError")
    said = rf"{url.split(':')[0]}:// URLs need the {package} package.*pip install {package}"
    with pytest.raises(StorageError, match=said), translating(url, "open", "the observed store"):
        fsspec.core.url_to_fs(url)  # the real ImportError of fsspec's registry


@pytest.mark.parametrize("url", ["s3://", "s3:///x.zarr", "gs:///runs"])
def test_an_object_store_url_without_a_bucket_says_so(url: str) -> None:
    said = r"the URL names no bucket: write \w+://<bucket>/"
    with pytest.raises(StorageError, match=said), translating(url, "open", "the observed store"):
        raise AssertionError("refused before the block runs")
